/**
 * SPEC §8 user authentication with the real clients against `wrangler dev`:
 * pusher-js `signin()` through `POST /pusher/user-auth` with a JWT, the
 * `pusher` SDK's `sendToUser` reaching exactly that user's connections
 * (whichever hub shard each landed on), and `terminateUserConnections`
 * closing them; with bad input refused as Pusher refuses it.
 */
import type Pusher from "pusher-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import { connectPusherJs, Received, sdkStatus, serverSdk } from "./pusher-server-sdk-clients";
import { within } from "./transports";

const base = inject("serverUrl");
const sdk = serverSdk(base);

const clients: Pusher[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

const uniqueUser = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

/** A pusher-js client holding the user's JWT, signed in, its server-to-user channel live. */
async function signedIn(userId: string): Promise<Pusher> {
  const { pusher } = await connectPusherJs(base, await tokenFor(userId, { rooms: [] }));
  clients.push(pusher);
  pusher.signin();
  await within(pusher.user.signinDonePromise!, 10_000, `${userId} to sign in`);
  expect(pusher.user.user_data).toMatchObject({ id: userId });
  const own = pusher.user.serverToUserChannel!;
  if (!own.subscribed) {
    await within(new Promise<void>((resolve) => own.bind("pusher:subscription_succeeded", () => resolve())), 10_000, `${userId}'s server-to-user channel`);
  }
  return pusher;
}

/** Resolves when pusher-js has been disconnected by the server with this close code. */
function closedWith(pusher: Pusher): Promise<number> {
  return within(
    new Promise<number>((resolve) => {
      pusher.connection.bind("error", (error: { data?: { code?: number } }) => {
        if (error.data?.code !== undefined) resolve(error.data.code);
      });
    }),
    10_000,
    "the connection to be closed by the server",
  );
}

describe("pusher-js signin and the SDK's user API", () => {
  it("sendToUser reaches every connection of that user and no one else", async () => {
    const alice = uniqueUser("alice");
    const bob = uniqueUser("bob");
    const alices = await Promise.all(Array.from({ length: 4 }, () => signedIn(alice)));
    const bobClient = await signedIn(bob);
    const received = alices.map((client) => new Received<{ order: number }>(client.user, "order-shipped"));
    const bobReceived = new Received(bobClient.user, "order-shipped");
    const bobMarker = new Received(bobClient.user, "marker");

    expect((await sdk.sendToUser(alice, "order-shipped", { order: 42 })).status).toBe(200);
    for (const events of received) expect(await events.until(1, "alice's event on each connection")).toEqual([{ order: 42 }]);
    expect((await sdk.sendToUser(bob, "marker", {})).status).toBe(200);
    await bobMarker.until(1, "bob's marker");
    expect(bobReceived.events).toEqual([]);
  });

  it("terminateUserConnections closes the user's connections with 4009 and no others", async () => {
    const carol = uniqueUser("carol");
    const dan = uniqueUser("dan");
    const carols = await Promise.all(Array.from({ length: 3 }, () => signedIn(carol)));
    const danClient = await signedIn(dan);
    const closes = carols.map(closedWith);
    expect((await sdk.terminateUserConnections(carol)).status).toBe(200);
    expect(await Promise.all(closes)).toEqual([4009, 4009, 4009]);
    // pusher-js takes 4009 as "refused": it does not reconnect.
    for (const client of carols) expect(client.connection.state).not.toBe("connected");

    const stillThere = new Received(danClient.user, "still-there");
    expect((await sdk.sendToUser(dan, "still-there", {})).status).toBe(200);
    await stillThere.until(1, "dan's event after carol's termination");
    expect(danClient.connection.state).toBe("connected");
  });

  // Stale timestamps and wrong body_md5 are covered with hand-signed requests in test/worker/pusher-users.test.ts.
  it("refuses a wrong secret and oversized data; an unknown user is answered 200 with nothing to do", async () => {
    const erin = uniqueUser("erin");
    const client = await signedIn(erin);
    const bad = new Received(client.user, "bad");
    const wrongSecret = serverSdk(base, "not-the-secret");
    expect(await sdkStatus(wrongSecret.sendToUser(erin, "bad", {}))).toBe(401);
    expect(await sdkStatus(wrongSecret.terminateUserConnections(erin))).toBe(401);
    expect(await sdkStatus(sdk.sendToUser(erin, "bad", { pad: "x".repeat(10_240) }))).toBe(413);
    expect((await sdk.sendToUser(uniqueUser("nobody"), "hello", {})).status).toBe(200);
    expect((await sdk.terminateUserConnections(uniqueUser("nobody"))).status).toBe(200);

    const marker = new Received(client.user, "marker");
    expect((await sdk.sendToUser(erin, "marker", {})).status).toBe(200);
    await marker.until(1, "erin's marker");
    expect(bad.events).toEqual([]);
    expect(client.connection.state).toBe("connected");
  });

  it("a signin without a JWT fails at the user-auth endpoint and the connection stays usable", async () => {
    const { pusher } = await connectPusherJs(base);
    clients.push(pusher);
    const failed = within(new Promise<{ status?: number }>((resolve) => pusher.user.bind("pusher:signin_error", resolve)), 10_000, "pusher:signin_error");
    pusher.signin();
    expect(await failed).toMatchObject({ type: "AuthError", status: 401 });
    expect(pusher.connection.state).toBe("connected");
  });
});
