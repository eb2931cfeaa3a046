/**
 * SPEC §8 encrypted channels (`private-encrypted-…`): authorized as private
 * channels, the auth answer carries the `shared_secret` the official SDKs
 * derive from the master key, payloads are relayed and stored as the
 * ciphertext they are, and client events are refused.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { decodeMasterKey, InvalidMasterKeyError } from "../../server/auth/pusher-encryption";
import { call, tokenFor } from "./helpers";
import { trigger } from "./pusher-api-signer";
import { PusherTestSocket, pusherSign, settleHubs } from "./pusher-support";
import { get, uniqueRoom } from "./support";

afterAll(settleHubs);

/**
 * The SDKs' derivation, written from pusher-http-node's
 * `channelSharedSecret`: SHA-256 over the channel name's bytes followed by
 * the master key's 32 bytes, sent base64.
 */
async function sdkSharedSecret(channel: string): Promise<string> {
  const key = Uint8Array.from(atob(env.PUSHER_ENCRYPTION_MASTER_KEY!), (c) => c.charCodeAt(0));
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array([...new TextEncoder().encode(channel), ...key]));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** What the SDK's trigger sends for an encrypted channel: `data` is the JSON of {nonce, ciphertext}. */
const ciphertext = { nonce: "bm9uY2Utbm9uY2Utbm9uY2Utbm9uY2Ut", ciphertext: "c2VhbGVkLWJveC1vZi10aGUtcGF5bG9hZA==" };

describe("private-encrypted- channels", () => {
  it("POST /pusher/auth answers the private signature and the SDKs' shared_secret", async () => {
    const channel = uniqueRoom("private-encrypted-orders");
    const response = await call("/pusher/auth", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${await tokenFor("alice", { rooms: [channel] })}` },
      body: new URLSearchParams({ socket_id: "1234.5678", channel_name: channel }).toString(),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(["auth", "shared_secret"]);
    expect(body.auth).toBe(await pusherSign("1234.5678", channel));
    expect(body.shared_secret).toBe(await sdkSharedSecret(channel));
    expect(atob(body.shared_secret!)).toHaveLength(32);
  });

  it("subscribes with a private signature, relays the ciphertext as sent and stores it as the ciphertext object", async () => {
    const channel = uniqueRoom("private-encrypted-orders");
    const socket = await PusherTestSocket.open();
    expect(await socket.subscribe(channel)).toMatchObject({ event: "pusher_internal:subscription_succeeded" });
    expect((await trigger({ name: "shipped", data: JSON.stringify(ciphertext), channels: [channel] })).status).toBe(200);
    expect((await socket.nextOn(channel, "shipped")).rawData).toBe(JSON.stringify(ciphertext));
    // Native readers (history, WebSocket, SSE) see the ciphertext object, never a plaintext.
    const history = (await (await get(`/rooms/${channel}/messages?after=0`, await tokenFor("reader", { rooms: [channel] }))).json()) as { messages: { data: unknown }[] };
    expect(history.messages.map((m) => m.data)).toEqual([ciphertext]);
    socket.close();
  });

  it("refuses a subscription without a valid signature", async () => {
    const channel = uniqueRoom("private-encrypted-orders");
    const socket = await PusherTestSocket.open();
    expect(await socket.subscribe(channel, { auth: `${env.PUSHER_KEY}:${"0".repeat(64)}` })).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 401 } });
    socket.close();
  });

  it("refuses client events with pusher:error on the channel and relays nothing", async () => {
    const channel = uniqueRoom("private-encrypted-chat");
    const [a, b] = await Promise.all([PusherTestSocket.open(), PusherTestSocket.open()]);
    await a.subscribe(channel);
    await b.subscribe(channel);
    a.trigger(channel, "client-typing", ciphertext);
    const refusal = await a.next((f) => f.event === "pusher:error");
    expect(refusal).toMatchObject({ channel, data: { code: null } });
    expect(refusal.data.message).toMatch(/encrypted/);
    expect((await trigger({ name: "marker", data: "{}", channels: [channel] })).status).toBe(200);
    await b.nextOn(channel, "marker");
    expect(b.frames.filter((f) => f.event === "client-typing")).toEqual([]);
    a.close();
    b.close();
  });

  it("a master key that is not base64 of 32 bytes is a configuration error", () => {
    expect(() => decodeMasterKey("too-short")).toThrow(InvalidMasterKeyError);
    expect(() => decodeMasterKey(btoa("x".repeat(31)))).toThrow(InvalidMasterKeyError);
    expect(decodeMasterKey(env.PUSHER_ENCRYPTION_MASTER_KEY!)).toHaveLength(32);
  });
});
