/**
 * SPEC §8 `POST /pusher/auth`: a JWT holder gets Pusher's channel signature
 * for the rooms their token grants, in the form pusher-js posts and reads;
 * and a signature from it opens the channel on a real Pusher socket.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { handle } from "../../worker/router";
import { BASE, call, tokenFor } from "./helpers";
import { PusherTestSocket, pusherSign, settleHubs } from "./pusher-support";
import { expectError, uniqueRoom } from "./support";

afterAll(settleHubs);

const SOCKET_ID = "1234.5678";

/** What pusher-js's ajax authorizer sends: a form body, headers from channelAuthorization.headers. */
function authRequest(fields: Record<string, string>, token?: string, contentType = "application/x-www-form-urlencoded"): RequestInit {
  const headers: Record<string, string> = { "content-type": contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const body = contentType.startsWith("application/json") ? JSON.stringify(fields) : new URLSearchParams(fields).toString();
  return { method: "POST", headers, body };
}

function postAuth(fields: Record<string, string>, token?: string, contentType?: string): Promise<Response> {
  return call("/pusher/auth", authRequest(fields, token, contentType));
}

describe("signing", () => {
  it("signs a private channel the token grants, exactly as Pusher's docs compute it", async () => {
    const channel = uniqueRoom("private-orders");
    const response = await postAuth({ socket_id: SOCKET_ID, channel_name: channel }, await tokenFor("alice", { rooms: [channel] }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, string>;
    expect(Object.keys(body)).toEqual(["auth"]);
    expect(body.auth).toBe(await pusherSign(SOCKET_ID, channel));
    expect(body.auth!.startsWith(`${env.PUSHER_KEY}:`)).toBe(true);
  });

  it("signs a presence channel with channel_data naming the JWT's sub and name", async () => {
    const channel = uniqueRoom("presence-team");
    const response = await postAuth({ socket_id: SOCKET_ID, channel_name: channel }, await tokenFor("alice", { rooms: ["presence-*"], name: "Alice Liddell" }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, string>;
    expect(JSON.parse(body.channel_data!)).toEqual({ user_id: "alice", user_info: { name: "Alice Liddell" } });
    expect(body.auth).toBe(await pusherSign(SOCKET_ID, channel, body.channel_data));
  });

  it("takes the token as a form field, and JSON bodies", async () => {
    const channel = uniqueRoom("private-x");
    const token = await tokenFor("alice", { rooms: [channel] });
    const asField = await postAuth({ socket_id: SOCKET_ID, channel_name: channel, token });
    expect(((await asField.json()) as any).auth).toBe(await pusherSign(SOCKET_ID, channel));
    const asJson = await postAuth({ socket_id: SOCKET_ID, channel_name: channel }, token, "application/json");
    expect(((await asJson.json()) as any).auth).toBe(await pusherSign(SOCKET_ID, channel));
  });

  it("a signature it gives opens the channel on a real connection, with the JWT's user as presence member", async () => {
    const channel = uniqueRoom("presence-live");
    const socket = await PusherTestSocket.open();
    const response = await postAuth({ socket_id: socket.socketId, channel_name: channel }, await tokenFor("alice", { rooms: [channel], name: "Alice" }));
    const { auth, channel_data } = (await response.json()) as { auth: string; channel_data: string };
    socket.send({ event: "pusher:subscribe", data: { channel, auth, channel_data } });
    const succeeded = await socket.nextOn(channel, "pusher_internal:subscription_succeeded");
    expect(succeeded.data.presence).toEqual({ ids: ["alice"], hash: { alice: { name: "Alice" } }, count: 1 });
    // The same signature does not work for another connection.
    const other = await PusherTestSocket.open();
    other.send({ event: "pusher:subscribe", data: { channel, auth, channel_data } });
    expect(await other.next((f) => f.channel === channel)).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 401 } });
  });
});

describe("refusals", () => {
  it("401 without a token or with a bad one; 403 for a channel the token does not grant", async () => {
    const channel = uniqueRoom("private-orders");
    const fields = { socket_id: SOCKET_ID, channel_name: channel };
    await expectError(await postAuth(fields), 401, "missing_token");
    await expectError(await postAuth(fields, "not.a.jwt"), 401, "invalid_token");
    await expectError(await postAuth(fields, await tokenFor("alice", { rooms: [channel] }, "another-secret")), 401, "invalid_token");
    const message = await expectError(await postAuth(fields, await tokenFor("alice", { rooms: ["private-other"] })), 403, "forbidden_room");
    expect(message).toContain(channel);
    // Prefix grants work as for every room route.
    expect((await postAuth(fields, await tokenFor("alice", { rooms: ["private-orders-*"] }))).status).toBe(200);
  });

  it("400 for a bad socket_id, a bad channel name, missing fields, public channels", async () => {
    const token = await tokenFor("alice", { rooms: ["*"] });
    expect(await expectError(await postAuth({ socket_id: "abc", channel_name: "private-x" }, token), 400, "invalid_body")).toMatch(/socket_id/);
    expect(await expectError(await postAuth({ socket_id: "1.2; drop", channel_name: "private-x" }, token), 400, "invalid_body")).toMatch(/socket_id/);
    await expectError(await postAuth({ socket_id: SOCKET_ID, channel_name: "private x!" }, token), 400, "invalid_room");
    await expectError(await postAuth({ socket_id: SOCKET_ID, channel_name: "private-a:b" }, token), 400, "invalid_room"); // a room id, not a Pusher channel
    expect(await expectError(await postAuth({ socket_id: SOCKET_ID }, token), 400, "invalid_body")).toMatch(/channel_name/);
    expect(await expectError(await postAuth({ socket_id: SOCKET_ID, channel_name: "lobby" }, token), 400, "invalid_body")).toMatch(/public/);
  });

  it("415 for other content types, 413 for large bodies", async () => {
    const token = await tokenFor("alice");
    await expectError(await postAuth({ socket_id: SOCKET_ID, channel_name: "private-x" }, token, "text/plain"), 415, "unsupported_media_type");
    await expectError(await postAuth({ socket_id: SOCKET_ID, channel_name: "private-x", pad: "x".repeat(10_000) }, token), 413, "payload_too_large");
  });

  it("500 server_misconfigured when the Pusher credentials are not set, for auth and for connections", async () => {
    const unset = { ...env, PUSHER_KEY: undefined, PUSHER_SECRET: undefined };
    const token = await tokenFor("alice");
    const auth = await handle(new Request(`${BASE}/pusher/auth`, authRequest({ socket_id: SOCKET_ID, channel_name: "private-x" }, token)), unset, createExecutionContext());
    expect(await expectError(auth, 500, "server_misconfigured")).toMatch(/PUSHER_KEY/);
    const socket = await handle(new Request(`${BASE}/app/${env.PUSHER_KEY}?protocol=7`, { headers: { Upgrade: "websocket" } }), unset, createExecutionContext());
    expect(await expectError(socket, 500, "server_misconfigured")).toMatch(/PUSHER_KEY/);
  });
});
