/**
 * The real Pusher packages pointed at a running `wrangler dev`: the `pusher`
 * server SDK (as a Node or Laravel backend uses it) and `pusher-js` clients
 * configured exactly as docs/moving-from-pusher.md tells an app to. Every
 * wait is on an event (connected, subscription_succeeded, an event arriving)
 * and bounded with a message naming what was awaited.
 */
import PusherServer from "pusher";
import Pusher, { type Channel } from "pusher-js";
import { DEFAULT_SECRETS } from "./server";
import { within } from "./transports";

const WAIT_MS = 10_000;

/** The server SDK as an app configures it for this service: host, port, no TLS, and the encrypted channels' master key. */
export function serverSdk(base: string, secret = DEFAULT_SECRETS.PUSHER_SECRET): PusherServer {
  const url = new URL(base);
  return new PusherServer({
    appId: DEFAULT_SECRETS.PUSHER_APP_ID,
    key: DEFAULT_SECRETS.PUSHER_KEY,
    secret,
    host: url.hostname,
    port: url.port,
    useTLS: false,
    encryptionMasterKeyBase64: DEFAULT_SECRETS.PUSHER_ENCRYPTION_MASTER_KEY,
  });
}

/** What pusher-js (and Echo, which passes its options through) is given; `pusher.signin()` uses /pusher/user-auth. */
export function pusherJsOptions(base: string, jwt?: string) {
  const url = new URL(base);
  const headers = jwt ? { Authorization: `Bearer ${jwt}` } : {};
  return {
    cluster: "mt1", // required by the type; wsHost wins
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ["ws" as const],
    channelAuthorization: { endpoint: `${base}/pusher/auth`, transport: "ajax" as const, headers },
    userAuthentication: { endpoint: `${base}/pusher/user-auth`, transport: "ajax" as const, headers },
  };
}

/** What Laravel Echo is given for this service (its `authEndpoint` is /pusher/auth, with the JWT as bearer). */
export function echoOptions(base: string, jwt: string) {
  const url = new URL(base);
  return {
    broadcaster: "pusher" as const,
    key: DEFAULT_SECRETS.PUSHER_KEY,
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ["ws" as const],
    cluster: "local",
    Pusher,
    authEndpoint: `${base}/pusher/auth`,
    auth: { headers: { Authorization: `Bearer ${jwt}` } },
  };
}

/** A connected pusher-js client and its socket_id. */
export async function connectPusherJs(base: string, jwt?: string): Promise<{ pusher: Pusher; socketId: string }> {
  const pusher = new Pusher(DEFAULT_SECRETS.PUSHER_KEY, pusherJsOptions(base, jwt));
  const socketId = await within(
    new Promise<string>((resolve, reject) => {
      pusher.connection.bind("connected", () => resolve(pusher.connection.socket_id));
      pusher.connection.bind("failed", () => reject(new Error("pusher-js: connection failed")));
      pusher.connection.bind("unavailable", () => reject(new Error("pusher-js: service unavailable")));
    }),
    WAIT_MS,
    "pusher-js to connect",
  );
  return { pusher, socketId };
}

/** Subscribes and waits for `pusher:subscription_succeeded`. */
export function subscribed(pusher: Pusher, name: string): Promise<Channel> {
  const channel = pusher.subscribe(name);
  return within(
    new Promise<Channel>((resolve, reject) => {
      channel.bind("pusher:subscription_succeeded", () => resolve(channel));
      channel.bind("pusher:subscription_error", (error: unknown) => reject(new Error(`subscription to ${name} failed: ${JSON.stringify(error)}`)));
    }),
    WAIT_MS,
    `subscription to ${name}`,
  );
}

/** Every event of one name a channel receives, awaitable by count. */
export class Received<T = unknown> {
  readonly events: T[] = [];
  #waiters: (() => void)[] = [];

  constructor(channel: { bind(event: string, callback: (data: T) => void): unknown }, event: string) {
    channel.bind(event, (data: T) => {
      this.events.push(data);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  async until(n: number, what = `${n} events`): Promise<T[]> {
    return within(
      (async () => {
        while (this.events.length < n) await new Promise<void>((r) => this.#waiters.push(r));
        return this.events;
      })(),
      WAIT_MS,
      what,
    );
  }
}

/** The HTTP status of an SDK call: its response's, or the one a rejection (`RequestError`) carries. */
export async function sdkStatus(call: Promise<{ status: number }>): Promise<number> {
  try {
    return (await call).status;
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (typeof status !== "number") throw error;
    return status;
  }
}
