/**
 * PusherHub: holds Pusher Channels WebSockets (`/app/:key?protocol=7`) and
 * bridges them to rooms. A channel is the room of the same name; the hub
 * is only the connection end. See docs/pusher.md.
 *
 *   pusher-js ──ws──▶ PusherHub shard ──RPC──▶ ChatRoom (the channel)
 *                         ▲                        │
 *                         └── deliver(channel, frames) ─┘  (one batch per round trip)
 *
 * There are PUSHER_HUB_SHARDS of them (`pusher-hub:<n>`); the Worker puts
 * each new connection on one at random. A room keeps one subscriber per
 * shard that has sockets on its channel, so an event crosses to each shard
 * once and the shard fans it out to its sockets.
 *
 * Sockets are hibernatable. What survives the hub being evicted: each
 * socket's socket_id and activity marks (its attachment) and the
 * subscriptions (this object's SQLite); the constructor rebuilds the
 * channel → sockets map once per wake. pusher-js's own ping is answered by
 * the runtime without waking the hub.
 */
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { isEncryptedChannel, pusherChannelKind, userChannel } from "../protocol/pusher";
import {
  clientEventDataBytes,
  clientEventFrame,
  connectionEstablishedFrame,
  errorFrame,
  newSocketId,
  PONG_FRAME,
  PUSHER_ACTIVITY_TIMEOUT_SECONDS,
  PUSHER_CLIENT_EVENTS_PER_SECOND,
  PUSHER_JS_PING,
  PUSHER_MAX_CHANNELS_PER_SOCKET,
  PUSHER_PONG_TIMEOUT_MS,
  pusherClientEventSchema,
  PusherCode,
  pusherSigninDataSchema,
  pusherSubscribeDataSchema,
  pusherUnsubscribeDataSchema,
  pusherUserDataSchema,
  signinSuccessFrame,
  subscriptionErrorFrame,
} from "../protocol/pusher-socket";
import { PUSHER_MAX_EVENT_BYTES } from "../protocol/pusher";
import { describeIssues } from "../protocol/schemas";
import { verifyUserAuth } from "../server/auth/pusher-channel-auth";
import { requireSecret } from "../server/config";
import type { Env } from "../server/env";
import { pusherConfigFrom, PUSHER_HUB_NAME_PREFIX } from "../server/pusher-config";
import { readClientFrame, type ClientFrame } from "./pusher/client-frame";
import { HUB_NAME_HEADER, type HubChannelState, type HubDeliverOptions, type PusherDelivery, type PusherMember } from "./pusher/hub-api";
import type { HubSocket } from "./pusher/hub-socket";
import { HubSockets } from "./pusher/hub-sockets";
import { checkSubscription } from "./pusher/subscription-check";
import { websocketUpgrade } from "./room/websocket-upgrade";

/** How often the hub looks for silent connections (while it has any). */
const ACTIVITY_SWEEP_MS = 30_000;
/** A room call that failed is tried once more after this long. */
const ROOM_RETRY_MS = 250;

export class PusherHub extends DurableObject<Env> {
  private readonly sockets: HubSockets;
  private name: string | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)");
    const stored = ctx.storage.sql.exec("SELECT value FROM meta WHERE key = 'name'").toArray()[0]?.value;
    this.name = typeof stored === "string" ? stored : undefined;
    // pusher-js's ping, byte for byte; other clients' pings are answered in webSocketMessage.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PUSHER_JS_PING, PONG_FRAME));
    this.sockets = new HubSockets(ctx.storage.sql);
    const { stale, orphans } = this.sockets.restore(ctx.getWebSockets());
    for (const ws of orphans) ws.close(PusherCode.RECONNECT, "connection state lost, reconnect");
    for (const [channel, socketIds] of stale) void this.leaveRoom(channel, socketIds);
  }

  // ---- connections ----

  override async fetch(request: Request): Promise<Response> {
    this.learnName(request.headers.get(HUB_NAME_HEADER));
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("hub connections are WebSocket upgrades", { status: 426 });
    const { 0: client, 1: server } = new WebSocketPair();
    if (this.sockets.size >= pusherConfigFrom(this.env).hubMaxSockets) {
      // Accepted only to say why: pusher-js backs off on 4100 and its next try may land on another shard.
      server.accept();
      server.send(errorFrame(PusherCode.OVER_CAPACITY, "Over capacity"));
      server.close(PusherCode.OVER_CAPACITY, "Over capacity");
      return websocketUpgrade(client);
    }
    this.ctx.acceptWebSocket(server);
    const socket = this.sockets.add(server, newSocketId(), Date.now());
    socket.send(connectionEstablishedFrame(socket.socketId));
    await this.armSweep();
    return websocketUpgrade(client);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const socket = this.sockets.get(ws);
    if (!socket) return; // one the hub has closed (every open one was placed when it arrived or on wake)
    const now = Date.now();
    socket.heard(now);
    const frame = readClientFrame(raw);
    if (typeof frame === "string") return void socket.send(errorFrame(null, frame));
    switch (frame.event) {
      case "pusher:ping":
        return void socket.send(PONG_FRAME);
      case "pusher:pong":
        return;
      case "pusher:subscribe":
        return this.subscribe(socket, frame);
      case "pusher:unsubscribe":
        return this.unsubscribe(socket, frame);
      case "pusher:signin":
        return this.signin(socket, frame);
      default:
        if (frame.event.startsWith("client-")) return this.clientEvent(socket, frame, now);
        socket.send(errorFrame(null, `${frame.event} is not supported (see docs/pusher.md)`));
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.dropSocket(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // the runtime already completed the close handshake
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.dropSocket(ws);
  }

  // ---- RPC: called by rooms and by the Worker (docs/pusher.md) ----

  /**
   * A room's frames for its channel, in the room's order. Returns how many
   * of this hub's sockets are on the channel (live or subscribing), which
   * lets the room forget connections that are gone.
   */
  async deliver(channel: string, deliveries: PusherDelivery[], options: HubDeliverOptions = {}): Promise<number> {
    if (options.gap) {
      // The room dropped frames meant for these sockets: have their clients resubscribe instead of missing them.
      for (const socket of [...this.sockets.on(channel)]) this.closeSocket(socket, PusherCode.RECONNECT, "missed events, reconnect");
    }
    for (const delivery of deliveries) {
      if (delivery.to !== undefined) this.confirm(channel, delivery.to, delivery.frame);
      else if (delivery.only !== undefined) this.sendOnly(channel, delivery.only, delivery.frame);
      else this.fanOut(channel, delivery);
    }
    return this.sockets.on(channel).size;
  }

  /**
   * `terminate_connections`: closes these connections (a user's, as the
   * user's channel room lists them) with 4009, which pusher-js takes as
   * "do not reconnect". Returns how many this hub held.
   */
  async terminate(socketIds: string[]): Promise<number> {
    let closed = 0;
    for (const socketId of socketIds) {
      const socket = this.sockets.byId(socketId);
      if (!socket) continue;
      this.closeSocket(socket, PusherCode.UNAUTHORIZED, "connection terminated by the app (terminate_connections)");
      closed++;
    }
    return closed;
  }

  /** socket_ids of this hub's connections on a channel. */
  async socketsOn(channel: string): Promise<string[]> {
    return [...this.sockets.on(channel)].map((socket) => socket.socketId);
  }

  /** Occupied channels of this hub, optionally those starting with `prefix`. */
  async channels(prefix?: string): Promise<HubChannelState[]> {
    return this.sockets.channelStates(prefix);
  }

  async channel(name: string): Promise<HubChannelState> {
    return this.sockets.channelState(name);
  }

  // ---- alarm: silent connections ----

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sweep(now);
    if (this.sockets.size > 0) await this.ctx.storage.setAlarm(now + ACTIVITY_SWEEP_MS);
  }

  /**
   * Pusher's activity check, from the server side: a connection not heard
   * from for activity_timeout is sent `pusher:ping`; one that has not
   * answered PUSHER_PONG_TIMEOUT_MS later is closed with 4201, which frees
   * its presence membership instead of leaving a ghost.
   */
  sweep(now: number): void {
    for (const socket of [...this.sockets.all()]) {
      const answered = this.ctx.getWebSocketAutoResponseTimestamp(socket.ws);
      if (answered) socket.answered(answered.getTime());
      const pingedAt = socket.pingedAt;
      if (pingedAt !== undefined) {
        if (now - pingedAt >= PUSHER_PONG_TIMEOUT_MS) this.closeSocket(socket, PusherCode.PONG_TIMEOUT, "Pong reply not received");
      } else if (now - socket.lastSeen >= PUSHER_ACTIVITY_TIMEOUT_SECONDS * 1000) {
        socket.ping(now);
      }
    }
  }

  // ---- internals ----

  private async subscribe(socket: HubSocket, frame: ClientFrame): Promise<void> {
    const parsed = v.safeParse(pusherSubscribeDataSchema, frame.data);
    if (!parsed.success) {
      const channel = (frame.data as { channel?: unknown } | undefined)?.channel;
      const message = `pusher:subscribe: ${describeIssues(parsed.issues)}`;
      return void socket.send(typeof channel === "string" ? subscriptionErrorFrame(channel, "InvalidChannel", message, 400) : errorFrame(null, message));
    }
    const data = parsed.output;
    const existing = socket.channels.get(data.channel);
    if (existing && !existing.live) return; // already on its way
    if (!existing && socket.channels.size >= PUSHER_MAX_CHANNELS_PER_SOCKET) {
      return void socket.send(subscriptionErrorFrame(data.channel, "LimitReached", `a connection may be subscribed to at most ${PUSHER_MAX_CHANNELS_PER_SOCKET} channels`, 400));
    }
    let check;
    try {
      check = await checkSubscription(data, socket.socketId, {
        key: requireSecret(this.env, "PUSHER_KEY"),
        secret: requireSecret(this.env, "PUSHER_SECRET"),
        publicChannels: pusherConfigFrom(this.env).publicChannels,
      }, socket.userId);
    } catch (error) {
      console.error("pusher: cannot check a subscription:", error);
      return void socket.send(subscriptionErrorFrame(data.channel, "ServerError", "the server cannot check subscriptions right now", 500));
    }
    if (!check.ok) return void socket.send(check.frame);
    if (this.sockets.get(socket.ws) !== socket || socket.channels.get(data.channel) !== existing) return; // closed or changed meanwhile
    await this.joinRoom(socket, data.channel, check.member);
  }

  /**
   * Records a checked subscription (not live yet) and asks the room; the
   * room's subscription_succeeded makes it live. On failure the socket gets
   * a `pusher:subscription_error` and the room is told it left.
   */
  private async joinRoom(socket: HubSocket, channel: string, member: PusherMember | undefined): Promise<void> {
    const name = this.requireName();
    const subscription = socket.channels.get(channel) ?? this.sockets.subscribe(socket, channel, member);
    const call = this.room(channel).pusherSubscribe(channel, name, socket.socketId, subscription.member);
    subscription.pending = call.catch(() => {});
    try {
      await call;
    } catch (error) {
      console.error(`pusher: subscribing ${socket.socketId} to ${channel} failed:`, error);
      if (this.sockets.unsubscribe(socket, channel)) void this.leaveRoom(channel, [socket.socketId]);
      socket.send(subscriptionErrorFrame(channel, "ServerError", "the channel could not be reached, try again", 503));
    }
  }

  /**
   * `pusher:signin` (user authentication): `auth` must sign
   * `socket_id::user::user_data` with the app secret, and `user_data` must
   * name an `id`. A refusal is Pusher's: `pusher:error` 4009 and the
   * connection closed with 4009. A signed-in socket is put on its user's
   * `#server-to-user-<id>` channel at once (pusher-js also subscribes to it,
   * which is then a no-op), so `sendToUser` reaches it with any client.
   */
  private async signin(socket: HubSocket, frame: ClientFrame): Promise<void> {
    const parsed = v.safeParse(pusherSigninDataSchema, frame.data);
    if (!parsed.success) return void socket.send(errorFrame(null, `pusher:signin: ${describeIssues(parsed.issues)}`));
    const { auth, user_data: userData } = parsed.output;
    let signed: boolean;
    try {
      signed = await verifyUserAuth(requireSecret(this.env, "PUSHER_KEY"), requireSecret(this.env, "PUSHER_SECRET"), auth, socket.socketId, userData);
    } catch (error) {
      console.error("pusher: cannot check a signin:", error);
      return void socket.send(errorFrame(null, "the server cannot check sign-ins right now"));
    }
    if (!signed) return this.closeSocket(socket, PusherCode.UNAUTHORIZED, `pusher:signin: invalid signature for user_data and socket_id ${socket.socketId}`);
    const userId = readUserId(userData);
    if (userId.error !== undefined) return this.closeSocket(socket, PusherCode.UNAUTHORIZED, `pusher:signin: ${userId.error}`);
    if (this.sockets.get(socket.ws) !== socket) return; // closed meanwhile
    if (socket.userId !== undefined && socket.userId !== userId.id) {
      return void socket.send(errorFrame(null, "pusher:signin: this connection is already signed in as another user"));
    }
    socket.signIn(userId.id);
    socket.send(signinSuccessFrame(userData));
    if (!socket.channels.has(userChannel(userId.id))) await this.joinRoom(socket, userChannel(userId.id), undefined);
  }

  private unsubscribe(socket: HubSocket, frame: ClientFrame): void {
    const parsed = v.safeParse(pusherUnsubscribeDataSchema, frame.data);
    if (!parsed.success) return void socket.send(errorFrame(null, `pusher:unsubscribe: ${describeIssues(parsed.issues)}`));
    const subscription = this.sockets.unsubscribe(socket, parsed.output.channel);
    if (subscription) void this.leaveRoom(parsed.output.channel, [socket.socketId], subscription.pending);
  }

  /** `client-*`: checked here, relayed by the room to the channel's other Pusher connections. */
  private async clientEvent(socket: HubSocket, frame: ClientFrame, now: number): Promise<void> {
    const parsed = v.safeParse(pusherClientEventSchema, frame);
    if (!parsed.success) return void socket.send(errorFrame(null, `${frame.event}: ${describeIssues(parsed.issues)}`));
    const { event, channel, data } = parsed.output;
    const subscription = socket.channels.get(channel);
    const kind = pusherChannelKind(channel);
    if (kind === "public") return void socket.send(errorFrame(null, `client events are only for private- and presence- channels, not ${channel}`, channel));
    // As Pusher: the service cannot read an encrypted channel's payloads, so it relays none it did not get from the backend.
    if (isEncryptedChannel(channel)) return void socket.send(errorFrame(null, `client events are not supported on encrypted channels (${channel})`, channel));
    if (!subscription?.live) return void socket.send(errorFrame(null, `subscribe to ${channel} before sending client events on it`, channel));
    const bytes = clientEventDataBytes(data);
    if (bytes > PUSHER_MAX_EVENT_BYTES) return void socket.send(errorFrame(null, `client event data is ${bytes} bytes; the limit is ${PUSHER_MAX_EVENT_BYTES}`, channel));
    if (!socket.takeClientEvent(now)) {
      return void socket.send(errorFrame(PusherCode.CLIENT_EVENT_RATE, `at most ${PUSHER_CLIENT_EVENTS_PER_SECOND} client events per second per connection`, channel));
    }
    const relayed = clientEventFrame(channel, event, data, kind === "presence" ? subscription.member?.id : undefined);
    try {
      await this.room(channel).pusherClientEvent(channel, socket.socketId, relayed);
    } catch (error) {
      console.error(`pusher: relaying ${event} on ${channel} failed:`, error);
      socket.send(errorFrame(null, `${event} could not be delivered, try again`, channel));
    }
  }

  /** The room's subscription_succeeded for one socket: sent, and the socket goes live. */
  private confirm(channel: string, socketId: string, frame: string): void {
    const socket = this.sockets.byId(socketId);
    const subscription = socket?.channels.get(channel);
    if (!socket || !subscription) return; // unsubscribed or gone meanwhile; its unsubscribe reaches the room
    subscription.live = true;
    socket.send(frame);
  }

  /** A frame for one live subscriber of the channel (a cache channel's replay). */
  private sendOnly(channel: string, socketId: string, frame: string): void {
    const socket = this.sockets.byId(socketId);
    if (socket?.channels.get(channel)?.live) socket.send(frame);
  }

  private fanOut(channel: string, delivery: PusherDelivery): void {
    for (const socket of this.sockets.on(channel)) {
      if (socket.socketId === delivery.exceptSocketId) continue;
      const subscription = socket.channels.get(channel)!;
      if (!subscription.live) continue;
      if (delivery.exceptUserId !== undefined && subscription.member?.id === delivery.exceptUserId) continue;
      socket.send(delivery.frame);
    }
  }

  private dropSocket(ws: WebSocket): void {
    const socket = this.sockets.get(ws);
    if (!socket) return;
    for (const [channel, subscription] of this.sockets.remove(socket)) void this.leaveRoom(channel, [socket.socketId], subscription.pending);
  }

  private closeSocket(socket: HubSocket, code: number, reason: string): void {
    socket.send(errorFrame(code, reason));
    socket.close(code, reason);
    this.dropSocket(socket.ws);
  }

  /** Tells a room that sockets left its channel, after their subscribe call (if any) has finished; one retry. */
  private async leaveRoom(channel: string, socketIds: string[], after?: Promise<void>): Promise<void> {
    await after;
    const name = this.name;
    if (!name) return;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.room(channel).pusherUnsubscribe(channel, name, socketIds);
      } catch (error) {
        if (attempt >= 2) {
          // The room learns it anyway: its next delivery here reports fewer sockets and it forgets them.
          console.error(`pusher: could not tell ${channel} that ${socketIds.length} socket(s) left:`, error);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, ROOM_RETRY_MS));
      }
    }
  }

  private room(channel: string) {
    return this.env.ROOMS.get(this.env.ROOMS.idFromName(channel));
  }

  private learnName(name: string | null): void {
    if (!name || name === this.name || !name.startsWith(PUSHER_HUB_NAME_PREFIX)) return;
    this.name = name;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('name', ?)", name);
  }

  private requireName(): string {
    if (!this.name) throw new Error("hub name unknown: connections arrive through the Worker, which names the hub");
    return this.name;
  }

  private async armSweep(): Promise<void> {
    if (this.sockets.size === 0) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + ACTIVITY_SWEEP_MS);
  }
}

/** The `id` of a signin's user_data, or why there is none. */
function readUserId(userData: string): { id: string; error?: undefined } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(userData);
  } catch {
    return { error: "user_data is not valid JSON" };
  }
  const result = v.safeParse(pusherUserDataSchema, json);
  if (!result.success) return { error: `user_data: ${describeIssues(result.issues)}` };
  return { id: result.output.id };
}
