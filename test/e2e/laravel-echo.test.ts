/**
 * Laravel Echo (`laravel-echo` with `pusher-js`, `broadcaster: "pusher"`),
 * unmodified, against `wrangler dev`, with the backend side played by the
 * `pusher` server SDK making the calls Laravel's Pusher broadcaster makes:
 * `trigger([channels], <broadcastAs() or the class name>, <payload>,
 * {socket_id})`. Private channel auth goes to the service's `/pusher/auth`
 * with our JWT as Echo's `bearerToken`. Configuration as in
 * docs/moving-from-pusher.md.
 */
import Echo from "laravel-echo";
import Pusher from "pusher-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import { serverSdk } from "./pusher-server-sdk-clients";
import { DEFAULT_SECRETS } from "./server";
import { Api, uniqueRoom, within } from "./transports";

const base = inject("serverUrl");
const api = new Api(base);
const sdk = serverSdk(base);
const WAIT_MS = 10_000;

const opened: Echo<"pusher">[] = [];
afterEach(() => {
  for (const echo of opened.splice(0)) echo.disconnect();
});

/** Echo configured as a Laravel app's resources/js/echo.js is, pointed at the service. */
function echoFor(jwt?: string): Echo<"pusher"> {
  const url = new URL(base);
  const echo = new Echo({
    broadcaster: "pusher",
    key: DEFAULT_SECRETS.PUSHER_KEY,
    cluster: "mt1",
    wsHost: url.hostname,
    wsPort: Number(url.port),
    wssPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ["ws", "wss"],
    authEndpoint: `${base}/pusher/auth`,
    ...(jwt ? { bearerToken: jwt } : {}),
    Pusher,
  });
  opened.push(echo);
  return echo;
}

/** Resolves when Echo's channel is subscribed, rejects on its subscription error. */
function subscribed(channel: { subscribed(cb: CallableFunction): unknown; error(cb: CallableFunction): unknown }, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) => {
      channel.subscribed(() => resolve());
      channel.error((error: unknown) => reject(Object.assign(new Error(`${what}: subscription error ${JSON.stringify(error)}`), { detail: error })));
    }),
    WAIT_MS,
    what,
  );
}

/** The first payload `listen` hands the callback. */
function firstEvent<T>(listen: (callback: (payload: T) => void) => unknown, what: string): Promise<T> {
  return within(new Promise<T>((resolve) => listen(resolve)), WAIT_MS, what);
}

describe("Laravel Echo against wrangler dev", () => {
  it("echo.private('orders.N').listen('.OrderShipped') gets what Laravel broadcasts on private-orders.N", async () => {
    const id = uniqueRoom("42");
    const echo = echoFor(await tokenFor("alice", { rooms: [`private-orders.${id}`] }));
    const channel = echo.private(`orders.${id}`);
    const received = firstEvent<any>((cb) => channel.listen(".OrderShipped", cb), "OrderShipped on the private channel");
    await subscribed(channel, `private-orders.${id}`);
    // Laravel: broadcastOn() = new PrivateChannel("orders.$id"), broadcastAs() = "OrderShipped".
    await sdk.trigger([`private-orders.${id}`], "OrderShipped", { order: { id, status: "shipped" } }, { socket_id: "1234.5678" });
    expect(await received).toEqual({ order: { id, status: "shipped" } });
    // The same event is in the room's log, with a seq, for the native transports.
    const [stored] = await api.history(`private-orders.${id}`, await tokenFor("reader"));
    expect(stored).toMatchObject({ seq: 1, event: "OrderShipped", data: { order: { id, status: "shipped" } } });
  });

  it("listen('OrderShipped') without the dot matches Laravel's default name, the class App\\Events\\OrderShipped", async () => {
    const id = uniqueRoom("7");
    const echo = echoFor(await tokenFor("alice"));
    const channel = echo.private(`orders.${id}`);
    const received = firstEvent<any>((cb) => channel.listen("OrderShipped", cb), "App\\Events\\OrderShipped");
    await subscribed(channel, `private-orders.${id}`);
    await sdk.trigger([`private-orders.${id}`], "App\\Events\\OrderShipped", { order: { id } });
    expect(await received).toEqual({ order: { id } });
  });

  it("echo.channel('news').listen(...) gets public broadcasts without any auth", async () => {
    const news = uniqueRoom("news");
    const echo = echoFor();
    const channel = echo.channel(news);
    const received = firstEvent<any>((cb) => channel.listen(".Headline", cb), "Headline on the public channel");
    await subscribed(channel, news);
    await sdk.trigger(news, "Headline", { title: "Rooms speak Pusher" });
    expect(await received).toEqual({ title: "Rooms speak Pusher" });
  });

  it("a private channel the JWT does not grant fails to subscribe, with the status /pusher/auth gave", async () => {
    const id = uniqueRoom("99");
    const echo = echoFor(await tokenFor("mallory", { rooms: ["somewhere-else"] }));
    const error: any = await subscribed(echo.private(`orders.${id}`), "a refused subscription").then(
      () => undefined,
      (e) => e,
    );
    expect(error?.detail).toMatchObject({ type: "AuthError", status: 403 });
  });

  it("a Laravel toOthers() broadcast (socket_id = echo.socketId()) skips the sender's own Echo", async () => {
    const id = uniqueRoom("5");
    const sender = echoFor(await tokenFor("alice"));
    const other = echoFor(await tokenFor("bob"));
    const senderChannel = sender.private(`orders.${id}`);
    const otherChannel = other.private(`orders.${id}`);
    const senderGot: any[] = [];
    senderChannel.listen(".StatusChanged", (payload: any) => senderGot.push(payload));
    const otherGot: any[] = [];
    const otherSecond = within(
      new Promise<void>((resolve) => otherChannel.listen(".StatusChanged", (payload: any) => otherGot.push(payload) === 2 && resolve())),
      WAIT_MS,
      "both events at the other Echo",
    );
    const senderFirst = firstEvent<any>((cb) => senderChannel.listen(".StatusChanged", cb), "the second event at the sender");
    await Promise.all([subscribed(senderChannel, "sender"), subscribed(otherChannel, "other")]);
    // X-Socket-ID from the sender's page → Laravel passes it as socket_id.
    await sdk.trigger([`private-orders.${id}`], "StatusChanged", { step: 1 }, { socket_id: sender.socketId()! });
    await sdk.trigger([`private-orders.${id}`], "StatusChanged", { step: 2 });
    await otherSecond;
    expect(otherGot).toEqual([{ step: 1 }, { step: 2 }]);
    // In-order delivery: had the sender got step 1, it would have come first.
    expect(await senderFirst).toEqual({ step: 2 });
    expect(senderGot).toEqual([{ step: 2 }]);
  });
});
