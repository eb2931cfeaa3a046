/**
 * SPEC §8 encrypted channels, cache channels and subscription counts with
 * the real clients against `wrangler dev`: the `pusher` SDK encrypting with
 * `encryptionMasterKeyBase64`, pusher-js (whose Node build decrypts) and
 * Laravel Echo's `encryptedPrivate`; native readers seeing the ciphertext.
 */
import Echo from "laravel-echo";
import type Pusher from "pusher-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import { connectPusherJs, echoOptions, Received, serverSdk, subscribed } from "./pusher-server-sdk-clients";
import { Api, uniqueRoom, within } from "./transports";

const base = inject("serverUrl");
const api = new Api(base);
const sdk = serverSdk(base);

const clients: { disconnect(): void }[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

async function client(jwt?: string): Promise<Pusher> {
  const { pusher } = await connectPusherJs(base, jwt);
  clients.push(pusher);
  return pusher;
}

describe("encrypted channels", () => {
  it("the SDK encrypts, pusher-js decrypts with the shared_secret from /pusher/auth; the room holds only ciphertext", async () => {
    const channel = uniqueRoom("private-encrypted-orders");
    const jwt = await tokenFor("alice", { rooms: [channel] });
    const pusher = await client(jwt);
    const subscription = await subscribed(pusher, channel);
    const shipped = new Received<{ order: number; secret: string }>(subscription, "shipped");
    expect((await sdk.trigger(channel, "shipped", { order: 42, secret: "plaintext-marker" })).status).toBe(200);
    expect(await shipped.until(1, "the decrypted event")).toEqual([{ order: 42, secret: "plaintext-marker" }]);

    const history = await api.messages(channel, jwt, { after: 0 });
    expect(history.status).toBe(200);
    const data = history.body.messages[0]!.data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["ciphertext", "nonce"]);
    expect(JSON.stringify(history.body)).not.toContain("plaintext-marker");
  });

  it("client events are refused: pusher-js will not send them, and the service refuses a client that does", async () => {
    const channel = uniqueRoom("private-encrypted-chat");
    const pusher = await client(await tokenFor("bob", { rooms: [channel] }));
    const subscription = await subscribed(pusher, channel);
    expect(() => subscription.trigger("client-typing", {})).toThrow(/not currently supported/);
    const refused = within(new Promise<{ data: { message: string } }>((resolve) => pusher.connection.bind("error", resolve)), 10_000, "pusher:error");
    pusher.send_event("client-typing", {}, channel); // what a client that does not refuse would send
    expect((await refused).data.message).toMatch(/encrypted/);
    expect(pusher.connection.state).toBe("connected");
  });

  it("Laravel Echo's encryptedPrivate(...).listen receives the SDK's event decrypted", async () => {
    const suffix = uniqueRoom("payments");
    const echo = new Echo(echoOptions(base, await tokenFor("carol", { rooms: [`private-encrypted-${suffix}`] })));
    clients.push(echo);
    const paid = new Promise<unknown>((resolve) => echo.encryptedPrivate(suffix).listen(".paid", resolve));
    await subscribed(echo.connector.pusher, `private-encrypted-${suffix}`);
    expect((await sdk.trigger(`private-encrypted-${suffix}`, "paid", { amount: 12 })).status).toBe(200);
    expect(await within(paid, 10_000, "Echo's decrypted event")).toEqual({ amount: 12 });
  });
});

describe("cache channels", () => {
  it("a subscriber gets pusher:cache_miss on an empty channel, and the last event once there is one", async () => {
    const channel = uniqueRoom("cache-location");
    const first = await client();
    const firstChannel = first.subscribe(channel);
    const miss = within(new Promise<void>((resolve) => firstChannel.bind("pusher:cache_miss", () => resolve())), 10_000, "pusher:cache_miss");
    await miss;
    expect((await sdk.trigger(channel, "moved", { lat: 1 })).status).toBe(200);
    expect((await sdk.trigger(channel, "moved", { lat: 2 })).status).toBe(200);

    const late = await client();
    const lateChannel = late.subscribe(channel);
    const moved = new Received<{ lat: number }>(lateChannel, "moved");
    const lateMiss = new Received(lateChannel, "pusher:cache_miss");
    expect(await moved.until(1, "the cached event")).toEqual([{ lat: 2 }]);
    expect(lateMiss.events).toEqual([]);
  });

  it("works on private cache channels with the same authorization", async () => {
    const channel = uniqueRoom("private-cache-scores");
    expect((await sdk.trigger(channel, "score", { home: 3 })).status).toBe(200);
    const pusher = await client(await tokenFor("fan", { rooms: [channel] }));
    const subscription = pusher.subscribe(channel);
    expect(await new Received<{ home: number }>(subscription, "score").until(1, "the cached score")).toEqual([{ home: 3 }]);
  });
});

describe("subscription_count", () => {
  type Count = { subscription_count: number };

  /** Waits until the latest count a client got is n (counts are throttled: intermediate ones may be skipped). */
  async function countReaches(counts: Received<Count>, n: number): Promise<void> {
    while (counts.events.at(-1)?.subscription_count !== n) await counts.until(counts.events.length + 1, `subscription_count ${n}`);
  }

  it("channel.subscriptionCount follows joins and leaves, on every subscriber", async () => {
    const channel = uniqueRoom("counted-viewers");
    const all = await Promise.all([client(), client(), client(), client()]);
    const channels = all.map((pusher) => pusher.subscribe(channel));
    const counts = channels.map((subscription) => new Received<Count>(subscription, "pusher:subscription_count"));
    for (const received of counts) await countReaches(received, 4);
    expect(channels.map((subscription) => subscription.subscriptionCount)).toEqual([4, 4, 4, 4]);

    all[0]!.unsubscribe(channel);
    all[1]!.disconnect();
    for (const received of counts.slice(2)) await countReaches(received, 2);
    expect(channels.slice(2).map((subscription) => subscription.subscriptionCount)).toEqual([2, 2]);
  });
});
