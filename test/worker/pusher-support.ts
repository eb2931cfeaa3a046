/** A Pusher protocol client for tests inside workerd, and Pusher's signature math done independently. */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { call } from "./helpers";

/** A frame as the server sent it, with `data` also parsed when it is a JSON string (as pusher-js does). */
export interface PusherFrame {
  event: string;
  channel?: string;
  data: any;
  /** `data` exactly as it came (a string for most server frames). */
  rawData: unknown;
  user_id?: string;
}

/** Every socket a test opened, so a file can end only once the hubs and rooms are done with them. */
const opened = new Set<PusherTestSocket>();

export class PusherTestSocket {
  readonly frames: PusherFrame[] = [];
  socketId = "";
  closeEvent?: { code: number; reason: string };
  #waiters: { match: (frame: PusherFrame) => boolean; resolve: (frame: PusherFrame) => void }[] = [];
  #closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    opened.add(this);
    ws.accept();
    this.#closed = new Promise((resolve) => {
      ws.addEventListener("close", (event) => {
        this.closeEvent = { code: event.code, reason: event.reason };
        resolve(this.closeEvent);
      });
    });
    ws.addEventListener("message", (event) => {
      const outer = JSON.parse(event.data as string);
      let data = outer.data;
      if (typeof data === "string") {
        try {
          data = JSON.parse(data);
        } catch {
          // a plain string payload
        }
      }
      const frame: PusherFrame = { ...outer, data, rawData: outer.data };
      this.frames.push(frame);
      this.#waiters = this.#waiters.filter((w) => (w.match(frame) ? (this.frames.splice(this.frames.indexOf(frame), 1), w.resolve(frame), false) : true));
    });
  }

  /** Opens `/app/:key?protocol=7` (or another path/query) and returns the socket without waiting. */
  static async connect(path = `/app/${env.PUSHER_KEY}?protocol=7&client=js&version=8.6.0`, headers: Record<string, string> = {}): Promise<PusherTestSocket> {
    const response = await call(path, { headers: { Upgrade: "websocket", ...headers } });
    if (response.status !== 101 || !response.webSocket) throw new Error(`upgrade failed: ${response.status} ${await response.text()}`);
    return new PusherTestSocket(response.webSocket);
  }

  /** Connects and waits for `pusher:connection_established`. */
  static async open(): Promise<PusherTestSocket> {
    const socket = await PusherTestSocket.connect();
    const established = await socket.next((f) => f.event === "pusher:connection_established");
    socket.socketId = established.data.socket_id;
    return socket;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The first frame (received or future) that matches; it is taken off the list. */
  next(match: (frame: PusherFrame) => boolean = () => true): Promise<PusherFrame> {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  nextOn(channel: string, event: string): Promise<PusherFrame> {
    return this.next((f) => f.channel === channel && f.event === event);
  }

  /** Subscribes (signing when the channel needs it) and waits for the outcome. */
  async subscribe(channel: string, options: { channelData?: unknown; auth?: string } = {}): Promise<PusherFrame> {
    const channelData = options.channelData === undefined ? undefined : JSON.stringify(options.channelData);
    let auth = options.auth;
    if (auth === undefined && !isPublic(channel)) auth = await pusherSign(this.socketId, channel, channelData);
    this.send({ event: "pusher:subscribe", data: { channel, ...(auth === undefined ? {} : { auth }), ...(channelData === undefined ? {} : { channel_data: channelData }) } });
    return this.next((f) => f.channel === channel && (f.event === "pusher_internal:subscription_succeeded" || f.event === "pusher:subscription_error"));
  }

  /**
   * Signs in as pusher-js does after its user-auth endpoint answered
   * (`pusher:signin` with `auth` and `user_data`), and waits for
   * `pusher:signin_success` or `pusher:error`.
   */
  async signIn(userId: string, options: { userData?: string; auth?: string } = {}): Promise<PusherFrame> {
    const userData = options.userData ?? JSON.stringify({ id: userId, user_info: { name: userId } });
    const auth = options.auth ?? (await pusherSignUser(this.socketId, userData));
    this.send({ event: "pusher:signin", data: { auth, user_data: userData } });
    return this.next((f) => f.event === "pusher:signin_success" || f.event === "pusher:error");
  }

  /** Sends a client event as pusher-js does (`channel.trigger`). */
  trigger(channel: string, event: string, data: unknown): void {
    this.send({ event, data, channel });
  }

  closed(): Promise<{ code: number; reason: string }> {
    return this.#closed;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

function isPublic(channel: string): boolean {
  return !channel.startsWith("private-") && !channel.startsWith("presence-");
}

/**
 * Pusher's channel signature, written from Pusher's documentation rather
 * than with the server's helper: `<key>:` + hex HMAC-SHA256 of
 * `socket_id:channel[:channel_data]` with the app secret.
 */
export async function pusherSign(socketId: string, channel: string, channelData?: string, secret = env.PUSHER_SECRET!): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
  return `${env.PUSHER_KEY}:${Array.from(signature, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Pusher's user authentication signature, from its docs: `<key>:` + hex HMAC-SHA256 of `socket_id::user::user_data`. */
export async function pusherSignUser(socketId: string, userData: string, secret = env.PUSHER_SECRET!): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${socketId}::user::${userData}`)));
  return `${env.PUSHER_KEY}:${Array.from(signature, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function hubStub(shard: number) {
  return env.PUSHER_HUBS.get(env.PUSHER_HUBS.idFromName(`pusher-hub:${shard}`));
}

/** Every hub shard (8 by default). */
export const HUB_SHARDS = 8;

/** Evicts every running hub shard: their sockets stay open (hibernated), their memory goes. */
export async function evictHubs(): Promise<void> {
  let evicted = 0;
  for (let shard = 0; shard < HUB_SHARDS; shard++) {
    try {
      await evictDurableObject(hubStub(shard));
      evicted++;
    } catch (error) {
      if (!String(error).includes("not currently running")) throw error; // that shard holds nothing
    }
  }
  if (evicted === 0) throw new Error("no hub was running: nothing was evicted");
}

/** Frames received so far that match, without taking them. */
export function framesOf(socket: PusherTestSocket, match: (frame: PusherFrame) => boolean): PusherFrame[] {
  return socket.frames.filter(match);
}

/**
 * For `afterAll`: closes what is still open and lets the work a close sets
 * off (the hub telling rooms, presence leaving after its 200 ms grace, the
 * rooms telling hubs) finish before the test environment is torn down;
 * otherwise it runs into the teardown and Vitest reports it.
 */
export async function settleHubs(): Promise<void> {
  const closing = [...opened].map((socket) => {
    socket.close();
    return Promise.race([socket.closed(), scheduler.wait(2000)]);
  });
  await Promise.all(closing);
  opened.clear();
  await scheduler.wait(600);
}
