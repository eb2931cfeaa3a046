/**
 * ChatRoom: one conversation, one Durable Object.
 *
 * The room is a sequencer with a log. Every event that enters it (a user's
 * message, a server notification) gets the next seq and is written to the
 * object's own SQLite storage before anyone hears of it; the output gate holds
 * every response and frame until that write is durable. From there:
 *
 *   - the Hub fans the event out to every subscriber, whatever its
 *     transport (WebSocket, SSE, long-poll), serialized once;
 *   - the D1Outbox copies it to D1 in batches, behind the response;
 *   - RoomHistory serves resumes and history from the local tail or D1.
 *
 * WebSockets are hibernatable: when the room is idle the runtime may evict
 * this instance while keeping the sockets open. Everything in memory here is
 * therefore rebuilt in the constructor: the seq counter from storage, and
 * each socket's identity from its attachment.
 *
 * Lifecycle, in the order a newcomer meets it: constructor (wake) → fetch
 * (WebSocket, SSE, GET messages) and the RPC methods (send, notify, typing,
 * read, presence) → webSocketMessage / webSocketClose → alarm (D1 flush).
 */
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { CHAT_MESSAGE_EVENT, type Envelope, type EventData, type UserRef } from "../protocol/envelope";
import type { PresenceMember, WelcomeFrame } from "../protocol/frames";
import { PUSHER_MAX_EVENT_BYTES, pusherDataToEventData, type PusherTrigger } from "../protocol/pusher";
import { channelEventFrame } from "../protocol/pusher-socket";
import { matchesGrants } from "../server/auth/grants";
import { pusherConfigFrom } from "../server/pusher-config";
import { clientFrameSchema, describeIssues, type NotifyBody, type PushOption, type SendBody } from "../protocol/schemas";
import { configFrom, type RoomConfig } from "../server/config";
import type { Env } from "../server/env";
import { PushStore } from "../server/push/store";
import { D1Outbox, type OutboxStatus } from "./room/d1-outbox";
import { D1Store } from "./room/d1-store";
import type { EncodedEvent } from "./room/encoded-event";
import { EncodedSignal } from "./room/encoded-signal";
import { FrameBatch } from "./room/frame-batch";
import { Hub } from "./room/hub";
import { LongPollSubscriber } from "./room/long-poll-subscriber";
import type { PusherMember } from "./pusher/hub-api";
import { PusherBridge, type HubLink } from "./room/pusher-bridge";
import { Presence } from "./room/presence";
import { PushQueue, type PushQueueStatus } from "./room/push-queue";
import { RateLimiter } from "./room/rate-limiter";
import { RoomMembers } from "./room/room-members";
import { fail, ok, ROOM_CONTEXT_HEADER, type Caller, type RoomResult, type StreamCall } from "./room/room-api";
import { RoomHistory } from "./room/room-history";
import { RoomLog, type NewEvent } from "./room/room-log";
import { SseSubscriber } from "./room/sse-subscriber";
import { StreamFlush } from "./room/stream-flush";
import { WebSocketSubscriber, type SocketAttachment, type SocketPolicy } from "./room/websocket-subscriber";
import { websocketUpgrade } from "./room/websocket-upgrade";
import { RoomOccupancy } from "./room/room-occupancy";
import { WebhookQueue, type WebhookQueueStatus } from "./room/webhook-queue";

/** The room's way to its Pusher hub shards (RPC on the PusherHub objects). */
function hubLink(env: Env): HubLink {
  const hub = (name: string) => env.PUSHER_HUBS.get(env.PUSHER_HUBS.idFromName(name));
  return {
    deliver: (hubName, channel, deliveries, options) => hub(hubName).deliver(channel, deliveries, options),
    socketsOn: (hubName, channel) => hub(hubName).socketsOn(channel),
    terminate: (hubName, socketIds) => hub(hubName).terminate(socketIds),
  };
}

/** Pusher's limit on an event's data string (10 KB), as the HTTP API answers it. */
function pusherDataTooLarge(trigger: PusherTrigger): ReturnType<typeof fail> | undefined {
  const bytes = new TextEncoder().encode(trigger.data).byteLength;
  if (bytes > PUSHER_MAX_EVENT_BYTES) return fail("payload_too_large", `data is ${bytes} bytes; Pusher events are limited to ${PUSHER_MAX_EVENT_BYTES}`);
  return undefined;
}

/** How long a cache channel's last event stays cached (Pusher's TTL, "up to 30 minutes"). */
const PUSHER_CACHE_TTL_MS = 30 * 60 * 1000;

/** What EventSource waits before reconnecting. */
const SSE_RETRY_MS = 2000;
/** One typing signal per user per this many ms reaches the room. */
const TYPING_THROTTLE_MS = 1000;
/** WebSocket close code for a server error. */
const CLOSE_INTERNAL_ERROR = 1011;

/** A frame as it arrived, waiting for its batch's turn. */
interface InboundFrame {
  subscriber: WebSocketSubscriber;
  raw: string | ArrayBuffer;
}

export interface AcceptedMessage {
  /** false when this was a retry of an already accepted clientId / idempotencyKey. */
  created: boolean;
  message: Envelope;
}

export interface AcceptedMessages {
  /** false when every item was a retry of an already accepted idempotencyKey. */
  created: boolean;
  /** One envelope per item, in the order given. */
  messages: Envelope[];
}

export class ChatRoom extends DurableObject<Env> {
  private readonly config: RoomConfig;
  private readonly log: RoomLog;
  private readonly history: RoomHistory;
  private readonly outbox: D1Outbox;
  private readonly presence: Presence;
  private readonly hub: Hub;
  private readonly sendLimiter: RateLimiter;
  private readonly members: RoomMembers;
  private readonly pushQueue: PushQueue;
  /** Webhooks to the app's backend, queued here and delivered by the alarm. */
  private readonly webhooks: WebhookQueue;
  /** channel_occupied / vacated and member_added / removed, persisted across eviction. */
  private readonly occupancy: RoomOccupancy;
  /** Pusher connections (on PusherHub shards) subscribed to this room's channel. */
  private readonly pusher: PusherBridge;
  /** Socket → subscriber, rebuilt once per wake (never parse attachments per event). */
  private readonly sockets = new Map<WebSocket, WebSocketSubscriber>();
  /** Client frames, handled a turn after they arrive so that a burst shares one storage commit. */
  private readonly frames = new FrameBatch<InboundFrame>(
    (frame) => this.handleFrame(frame),
    (frame, error) => {
      console.error(`room ${this.log.room}: a frame from ${frame.subscriber.user.id} failed:`, error);
      frame.subscriber.sendFrame({ type: "error", code: "internal_error", message: "something went wrong on our side; it has been logged" });
    },
  );
  /** Flow control shared by every socket (the cap on unacknowledged bytes). */
  private readonly socketPolicy: SocketPolicy;
  private readonly streams = new Set<SseSubscriber>();
  /** Hands out the Hub's accepted events and writes what the SSE streams were given, once per moment. */
  private readonly streamFlush = new StreamFlush();
  private readonly lastTyping = new Map<string, number>();
  private heartbeat?: ReturnType<typeof setInterval>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = configFrom(env);
    this.log = new RoomLog(ctx.storage);
    this.members = new RoomMembers(ctx.storage.sql);
    const d1 = new D1Store(env.DB);
    this.history = new RoomHistory(this.log, d1);
    this.outbox = new D1Outbox(ctx.storage, this.log, this.members, d1, this.config);
    this.webhooks = new WebhookQueue(ctx.storage, env, () => this.log.room);
    this.presence = new Presence((signal) => {
      this.hub.signal(signal);
      this.occupancy?.presence(signal); // (undefined only while the constructor restores sockets, which announces nothing)
    }, this.config.presenceGraceMs);
    this.hub = new Hub(this.log, this.history, this.presence, this.streamFlush, () => this.occupancy?.changed());
    this.socketPolicy = {
      maxUnackedBytes: this.config.wsMaxUnackedBytes,
      dropped: (subscriber, unacked) => this.dropSlowSocket(subscriber, unacked),
      atNextFanOut: (task) => this.hub.beforeNextFlush(task),
    };
    this.sendLimiter = new RateLimiter(this.config.sendRatePerSecond, this.config.sendBurst);
    this.pushQueue = new PushQueue(ctx.storage, env, this.members, new PushStore(env.DB), (userId, now) => this.presence.isPresent(userId, now));
    // The text ping is answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    for (const socket of ctx.getWebSockets()) this.restoreSocket(socket);
    this.pusher = new PusherBridge(ctx.storage.sql, this.hub, this.presence, hubLink(env), () => this.log.room, {
      cachedEvent: () => this.log.lastSince(Date.now() - PUSHER_CACHE_TTL_MS),
      cacheMiss: (channel) => this.onCacheMiss(channel),
      // Read when a Pusher subscription changes, never in the constructor: a malformed Pusher var must not break native rooms.
      countsSubscriptions: (channel) => matchesGrants(pusherConfigFrom(env).subscriptionCountChannels, channel),
    });
    this.pusher.restore();
    this.occupancy = new RoomOccupancy(ctx.storage.sql, this.webhooks, {
      hasSubscribers: () => this.hub.size > 0,
      presentUntil: (now) => this.presence.presentUntil(now),
      knows: (userId) => this.presence.knows(userId),
    }, this.config.presenceGraceMs, () => this.log.room);
    this.occupancy.restored();
    void ctx.blockConcurrencyWhile(async () => {
      await this.outbox.load();
      await this.pushQueue.load();
      await this.webhooks.load();
    });
  }

  // ---- RPC: called by the Worker after authentication and validation ----

  /** A user's chat message (HTTP). Idempotent by (user, clientId). */
  async send(caller: Caller, body: SendBody): Promise<RoomResult<AcceptedMessage>> {
    this.enter(caller.room);
    const result = this.acceptUserMessage(caller.user, caller.role, body.data, body.clientId);
    if (!result.ok) return result;
    return ok({ created: result.value.created, message: result.value.event.envelope });
  }

  /** A server-side trigger's event. Idempotent by idempotencyKey; not rate limited. */
  async notify(room: string, body: NotifyBody): Promise<RoomResult<AcceptedMessage>> {
    this.enter(room);
    const result = this.acceptNotifications(room, [body], () => "");
    return result.ok ? ok({ created: result.value.created, message: result.value.messages[0]! }) : result;
  }

  /**
   * Many events of a server-side trigger into this room (SPEC §5), all
   * accepted or none, with consecutive seqs, in one SQLite transaction and
   * one fan-out. Each item is idempotent by its own key; a key repeated
   * within the batch stands for the same event as its first use.
   */
  async notifyMany(room: string, items: NotifyBody[]): Promise<RoomResult<AcceptedMessages>> {
    this.enter(room);
    return this.acceptNotifications(room, items, (i) => `events.${i}.`);
  }

  /**
   * An event triggered through the Pusher HTTP API (SPEC §8). The same path
   * as notify: stored with a seq, copied to D1, fanned out to every
   * transport. It differs in what Pusher gives: a name and a data string
   * (mapped by `pusherDataToEventData`), Pusher's 10 KB limit on that
   * string, no sender, no idempotency key, and no Web Push (Pusher apps
   * send their own notifications). `socketId` is Pusher's "exclude a
   * recipient": that Pusher connection does not get the event live.
   */
  async pusherTrigger(channel: string, trigger: PusherTrigger): Promise<RoomResult<AcceptedMessage>> {
    const result = await this.pusherTriggerMany(channel, [trigger]);
    return result.ok ? ok({ created: true, message: result.value.messages[0]! }) : result;
  }

  /** Several Pusher HTTP API events for this channel (`batch_events`), in order, all stored or none, like notifyMany. */
  async pusherTriggerMany(channel: string, triggers: PusherTrigger[]): Promise<RoomResult<AcceptedMessages>> {
    this.enter(channel);
    const now = Date.now();
    for (const trigger of triggers) {
      const tooLarge = pusherDataTooLarge(trigger);
      if (tooLarge) return tooLarge;
    }
    const full = this.outbox.refuseWhenFull(now);
    if (full) return full;
    const inputs = triggers.map((trigger) => ({ event: trigger.event, data: pusherDataToEventData(trigger.data), exceptSocketId: trigger.socketId }));
    const events = this.appendAll(inputs, now, inputs.map(() => false as const));
    return ok({ created: true, messages: events.map((event) => event.envelope) });
  }

  /**
   * An event for a signed-in user (`sendToUser`: a trigger to
   * `#server-to-user-<id>`). This room is the user's index of connections;
   * the event goes to each of them, on whichever hub shard, and is not
   * stored: Pusher keeps no history of user events, and they name a person,
   * not a conversation.
   */
  async pusherUserEvent(channel: string, trigger: PusherTrigger): Promise<RoomResult<{ connections: number }>> {
    this.enter(channel);
    const tooLarge = pusherDataTooLarge(trigger);
    if (tooLarge) return tooLarge;
    this.pusher.relay(channelEventFrame(channel, trigger.event, trigger.data), trigger.socketId);
    return ok({ connections: this.pusher.subscriptionCount });
  }

  /** `terminate_connections`: closes every connection signed in as this channel's user. */
  async pusherTerminate(channel: string): Promise<number> {
    this.enter(channel);
    return this.pusher.terminate();
  }

  // ---- RPC: the Pusher bridge, called by PusherHub shards (docs/pusher.md) ----

  /** A Pusher connection subscribes to this room's channel; its subscription_succeeded follows through the shard's stream. */
  async pusherSubscribe(channel: string, hubName: string, socketId: string, member?: PusherMember): Promise<void> {
    this.enter(channel);
    this.pusher.subscribe(hubName, socketId, member);
  }

  /** Pusher connections of a shard left the channel (unsubscribed or closed). */
  async pusherUnsubscribe(channel: string, hubName: string, socketIds: string[]): Promise<void> {
    this.enter(channel);
    this.pusher.unsubscribe(hubName, socketIds);
  }

  /** A client event (`client-*`), already checked by the hub: to the channel's other Pusher connections, not stored. */
  async pusherClientEvent(channel: string, senderSocketId: string, frame: string): Promise<void> {
    this.enter(channel);
    this.pusher.relay(frame, senderSocketId);
    this.webhooks.clientEvent(channel, senderSocketId, frame);
  }

  /** Presence members of the channel as pusher-js sees them (Pusher and native). */
  async pusherMemberIds(channel: string): Promise<string[]> {
    this.enter(channel);
    return this.pusher.memberIds();
  }

  /** Someone is typing: tell the others, at most once a second per user. */
  async typing(caller: Caller): Promise<void> {
    this.enter(caller.room);
    this.signalTyping(caller.user, Date.now());
  }

  /** A read receipt: stored (monotonic) and broadcast. */
  async read(caller: Caller, seq: number): Promise<RoomResult<null>> {
    this.enter(caller.room);
    return this.markRead(caller.user, seq);
  }

  async presenceMembers(room: string): Promise<PresenceMember[]> {
    this.enter(room);
    return this.presence.members(Date.now());
  }

  /** The room's counters, for health checks and tests. */
  async status(room: string): Promise<{ seq: number; trimmedSeq: number; subscribers: number; outbox: OutboxStatus; push: PushQueueStatus; webhooks: WebhookQueueStatus }> {
    this.enter(room);
    return {
      seq: this.log.lastSeq,
      trimmedSeq: this.log.trimmedSeq,
      subscribers: this.hub.size,
      outbox: this.outbox.status(),
      push: this.pushQueue.status(),
      webhooks: this.webhooks.status(),
    };
  }

  // ---- fetch: the streaming transports ----

  override async fetch(request: Request): Promise<Response> {
    const call = JSON.parse(request.headers.get(ROOM_CONTEXT_HEADER) ?? "null") as StreamCall | null;
    if (!call) return new Response("room calls come through the Worker", { status: 400 });
    this.enter(call.room);
    switch (new URL(request.url).pathname) {
      case "/ws":
        return this.openWebSocket(call);
      case "/events":
        return this.openEventStream(call, request.signal);
      case "/messages":
        return this.readMessages(call, request.signal);
      default:
        return new Response("unknown room call", { status: 404 });
    }
  }

  /** WebSocket: welcome, then the missed events after `after`, then live. */
  private openWebSocket(call: StreamCall): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    const attachment: SocketAttachment = { user: call.user };
    if (call.role !== undefined) attachment.role = call.role;
    if (call.batch) attachment.batch = true;
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment(attachment);
    const subscriber = new WebSocketSubscriber(server, attachment, this.socketPolicy);
    this.sockets.set(server, subscriber);
    this.hub
      .attach(subscriber, call.after ?? this.log.lastSeq, () => subscriber.sendFrame(this.welcome(call.user)))
      .catch((error) => this.failSubscriber(subscriber, error));
    return websocketUpgrade(client);
  }

  /** SSE: `retry:`, the missed events after the resume point, then live, with heartbeats. */
  private openEventStream(call: StreamCall, signal: AbortSignal): Response {
    const subscriber = new SseSubscriber(
      call.user,
      (closed) => {
        this.hub.detach(closed);
        this.streams.delete(closed);
        this.stopHeartbeatIfIdle();
      },
      this.streamFlush,
    );
    this.streams.add(subscriber);
    // A cancelled body already errors the writer; the signal covers a client that goes before any byte is read.
    signal.addEventListener("abort", () => subscriber.close(), { once: true });
    this.startHeartbeat();
    this.hub
      .attach(subscriber, call.after ?? this.log.lastSeq, () => subscriber.start(SSE_RETRY_MS))
      .catch((error) => this.failSubscriber(subscriber, error));
    return new Response(subscriber.body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  }

  /**
   * GET messages: a history page, a poll, or (with waitMs) a long-poll that
   * is held until the next event and answered within the same fan-out.
   */
  private async readMessages(call: StreamCall, signal: AbortSignal): Promise<Response> {
    const limit = call.limit ?? this.config.defaultPageLimit;
    let events: EncodedEvent[];
    if (call.before !== undefined) {
      events = await this.history.before(call.before, limit, call.after ?? 0);
    } else if (call.after === undefined) {
      events = await this.history.before(this.log.lastSeq + 1, limit); // no cursor: the newest page
    } else {
      const waitMs = call.waitMs ?? 0;
      this.presence.polled(call.user, Date.now(), waitMs);
      this.occupancy.changed();
      events = await this.history.after(call.after, limit);
      if (events.length === 0 && waitMs > 0) {
        const poll = new LongPollSubscriber(call.user, limit, waitMs, (done) => this.hub.detach(done), signal);
        await this.hub.attach(poll, call.after);
        events = await poll.answer;
        this.presence.polled(call.user, Date.now());
        this.occupancy.changed();
      }
    }
    let body = `{"messages":[${events.map((e) => e.json).join(",")}],"seq":${this.log.lastSeq}`;
    if (call.withSenderRoles) {
      body += `,"senderRoles":${JSON.stringify(events.map((e) => e.senderRole))},"lastRead":${this.members.lastRead(call.user.id)}`;
    }
    body += "}";
    return new Response(body, { headers: { "content-type": "application/json; charset=utf-8" } });
  }

  // ---- WebSocket events (delivered even after hibernation) ----

  override async webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    // The subscriber is taken now: by the batch's turn the socket may have closed, and its sends still count.
    const subscriber = this.sockets.get(socket) ?? this.restoreSocket(socket);
    this.frames.add({ subscriber, raw });
  }

  /** One client frame, handled in its batch's turn (FrameBatch: one storage commit for the frames of a moment). */
  private handleFrame({ subscriber, raw }: InboundFrame): void {
    const socket = subscriber.socket;
    if (typeof raw !== "string") {
      subscriber.sendFrame({ type: "error", code: "invalid_body", message: "frames are JSON text" });
      return;
    }
    if (raw === "ping") return void socket.send("pong");
    // A coarse cap before parsing; the exact data limit is checked with the send (and answers with its clientId).
    if (raw.length > 4 * this.config.maxMessageBytes + 4096) {
      subscriber.sendFrame({ type: "error", code: "payload_too_large", message: `frames are limited to ${this.config.maxMessageBytes} bytes of data` });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      subscriber.sendFrame({ type: "error", code: "invalid_body", message: "frame is not valid JSON" });
      return;
    }
    const parsed = v.safeParse(clientFrameSchema, json);
    if (!parsed.success) {
      const clientId = typeof (json as { clientId?: unknown })?.clientId === "string" ? (json as { clientId: string }).clientId : undefined;
      subscriber.sendFrame({ type: "error", code: "invalid_body", message: describeIssues(parsed.issues), ...(clientId ? { clientId } : {}) });
      return;
    }
    const frame = parsed.output;
    const now = Date.now();
    switch (frame.type) {
      case "send": {
        const result = this.acceptUserMessage(subscriber.user, subscriber.attachment.role, frame.data, frame.clientId);
        if (!result.ok) {
          const { code, message, retryAfter } = result.error;
          subscriber.sendFrame({ type: "error", code, message, ...(frame.clientId ? { clientId: frame.clientId } : {}), ...(retryAfter ? { retryAfter } : {}) });
          return;
        }
        // The Hub has the event already (published on append); its fan-out follows this turn's acks.
        const { event } = result.value;
        subscriber.accepted({ ...(frame.clientId ? { clientId: frame.clientId } : {}), seq: event.seq, id: event.envelope.id });
        return;
      }
      case "typing":
        return this.signalTyping(subscriber.user, now);
      case "read": {
        const result = this.markRead(subscriber.user, frame.seq);
        if (!result.ok) subscriber.sendFrame({ type: "error", code: result.error.code, message: result.error.message });
        return;
      }
      case "ping":
        subscriber.sendFrame({ type: "pong" });
        return;
      case "ack":
        subscriber.acknowledge(frame.seq);
        return;
    }
  }

  override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
    this.dropSocket(socket);
    try {
      socket.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // the runtime already completed the close handshake
    }
  }

  override async webSocketError(socket: WebSocket): Promise<void> {
    this.dropSocket(socket);
  }

  // ---- alarm: persistence behind the response ----

  override async alarm(): Promise<void> {
    await this.outbox.flush();
    this.log.pruneIdempotency(this.idempotencyFloor(Date.now()));
    if (this.log.room) await this.pushQueue.run(this.log.room);
    this.occupancy.check();
    await this.webhooks.run();
  }

  // ---- internals ----

  /** Every call names its room; the first one teaches the object its name. */
  private enter(room: string): void {
    this.log.setRoom(room);
  }

  /**
   * A cache channel had nothing cached for a new subscriber (who was sent
   * `pusher:cache_miss`). The one place the room learns of it: the
   * `cache_miss` webhook (SPEC §11) is queued from here.
   */
  private onCacheMiss(channel: string): void {
    this.webhooks.cacheMiss(channel);
  }

  /**
   * Stores the events (one transaction), schedules their D1 flush, queues
   * their Web Push and `message` webhooks (off the send path: the alarm
   * delivers them) and hands them to the Hub, which fans them out together.
   */
  private appendAll(inputs: NewEvent[], now: number, push: (PushOption | undefined)[] = []): EncodedEvent[] {
    const events = this.log.appendAll(inputs, now);
    this.outbox.schedule(now);
    events.forEach((event, i) => {
      this.pushQueue.enqueue(event.envelope, inputs[i]!.from?.id, push[i], now);
      this.webhooks.message(event.envelope, now);
      this.hub.publish(event);
    });
    return events;
  }

  /**
   * notify and notifyMany: every item checked (idempotency, size) before any
   * is stored. `where(i)` prefixes an item's errors (`events.3.`).
   */
  private acceptNotifications(room: string, items: NotifyBody[], where: (i: number) => string): RoomResult<AcceptedMessages> {
    const now = Date.now();
    const floor = this.idempotencyFloor(now);
    /** Per item: an event accepted before, or the index of its new event. */
    const answers: (Envelope | number)[] = [];
    const fresh: NotifyBody[] = [];
    const keysInBatch = new Map<string, number>();
    for (const [i, item] of items.entries()) {
      const key = item.idempotencyKey === undefined ? undefined : `notify:${item.idempotencyKey}`;
      const earlier = key && this.log.findIdempotent(key, floor);
      if (earlier) {
        answers.push(earlier.envelope);
        continue;
      }
      const sameBatch = key === undefined ? undefined : keysInBatch.get(key);
      if (sameBatch !== undefined) {
        answers.push(sameBatch);
        continue;
      }
      const tooLarge = this.checkSize(item.data);
      if (tooLarge) return fail(tooLarge.error.code, `${where(i)}${tooLarge.error.message}`);
      if (key) keysInBatch.set(key, fresh.length);
      answers.push(fresh.length);
      fresh.push(item);
    }
    if (fresh.length === 0) return ok({ created: false, messages: answers as Envelope[] });
    const full = this.outbox.refuseWhenFull(now);
    if (full) return full;
    // Being notified in your own inbox makes you its member (it shows in GET /me/unread, and you get its pushes).
    if (room.startsWith("user:")) this.members.join(room.slice("user:".length));
    const inputs: NewEvent[] = fresh.map((item) => ({
      event: item.event,
      from: item.from,
      data: item.data,
      idempotencyKey: item.idempotencyKey === undefined ? undefined : `notify:${item.idempotencyKey}`,
    }));
    const events = this.appendAll(inputs, now, fresh.map((item) => item.push));
    return ok({ created: true, messages: answers.map((answer) => (typeof answer === "number" ? events[answer]!.envelope : answer)) });
  }

  /** Size, idempotency and rate checks shared by HTTP and WebSocket sends. The caller publishes. */
  private acceptUserMessage(user: UserRef, role: string | undefined, data: EventData, clientId: string | undefined): RoomResult<{ created: boolean; event: EncodedEvent }> {
    const now = Date.now();
    const key = clientId === undefined ? undefined : `client:${user.id}:${clientId}`;
    const earlier = key && this.log.findIdempotent(key, this.idempotencyFloor(now));
    if (earlier) return ok({ created: false, event: earlier });
    const tooLarge = this.checkSize(data);
    if (tooLarge) return tooLarge;
    const full = this.outbox.refuseWhenFull(now);
    if (full) return full;
    const retryAfter = this.sendLimiter.take(user.id, now);
    if (retryAfter > 0) return fail("rate_limited", `at most ${this.config.sendRatePerSecond} messages per second (burst ${this.config.sendBurst}); retry in ${retryAfter} s`, retryAfter);
    this.members.join(user.id);
    return ok({ created: true, event: this.appendAll([{ event: CHAT_MESSAGE_EVENT, from: user, data, clientId, senderRole: role, idempotencyKey: key }], now)[0]! });
  }

  private checkSize(data: EventData): { ok: false; error: { code: "payload_too_large"; message: string } } | undefined {
    const bytes = new TextEncoder().encode(JSON.stringify(data)).byteLength;
    if (bytes <= this.config.maxMessageBytes) return undefined;
    return { ok: false, error: { code: "payload_too_large", message: `data is ${bytes} bytes; the limit is ${this.config.maxMessageBytes}` } };
  }

  private signalTyping(user: UserRef, now: number): void {
    if (now - (this.lastTyping.get(user.id) ?? 0) < TYPING_THROTTLE_MS) return;
    this.lastTyping.set(user.id, now);
    this.hub.signal(new EncodedSignal({ type: "typing", user }, user.id));
  }

  private markRead(user: UserRef, seq: number): RoomResult<null> {
    if (seq > this.log.lastSeq) return fail("invalid_body", `seq: ${seq} is beyond the room's last seq (${this.log.lastSeq})`);
    const now = Date.now();
    if (this.members.markRead(user.id, seq)) {
      this.outbox.schedule(now);
      this.hub.signal(new EncodedSignal({ type: "read", user, seq }));
    }
    return ok(null);
  }

  private welcome(user: UserRef): WelcomeFrame {
    return { type: "welcome", room: this.log.room!, seq: this.log.lastSeq, user, presence: this.presence.members(Date.now()) };
  }

  private idempotencyFloor(now: number): number {
    return now - this.config.idempotencyWindowSeconds * 1000;
  }

  /** Rebuilds a socket's subscriber from its attachment after hibernation. */
  private restoreSocket(socket: WebSocket): WebSocketSubscriber {
    const attachment = socket.deserializeAttachment() as SocketAttachment;
    const subscriber = new WebSocketSubscriber(socket, attachment, this.socketPolicy);
    this.sockets.set(socket, subscriber);
    // A socket the room closed (too far behind) stays listed until its client answers the close: not live.
    if (socket.readyState === WebSocket.OPEN) this.hub.restore(subscriber);
    else subscriber.ended();
    return subscriber;
  }

  private dropSocket(socket: WebSocket): void {
    const subscriber = this.sockets.get(socket);
    if (!subscriber) return;
    this.sockets.delete(socket);
    subscriber.ended();
    this.hub.detach(subscriber);
  }

  /**
   * A socket closed with 1013 for being too far behind its acks. It stays in
   * `sockets` until the client answers the close (which a client that stopped
   * reading may never do), but leaves the fan-out now.
   */
  private dropSlowSocket(subscriber: WebSocketSubscriber, unackedBytes: number): void {
    this.hub.detach(subscriber);
    console.info(
      `room ${this.log.room}: closed ${subscriber.user.id}'s WebSocket with 1013, ${unackedBytes} bytes unacknowledged (WS_MAX_UNACKED_BYTES ${this.config.wsMaxUnackedBytes})`,
    );
  }

  private failSubscriber(subscriber: WebSocketSubscriber | SseSubscriber, error: unknown): void {
    console.error(`room ${this.log.room}: replay for ${subscriber.kind} subscriber ${subscriber.user.id} failed:`, error);
    subscriber.close(CLOSE_INTERNAL_ERROR, "history unavailable, reconnect to resume");
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) stream.heartbeat();
    }, this.config.sseHeartbeatSeconds * 1000);
  }

  private stopHeartbeatIfIdle(): void {
    if (this.streams.size > 0 || !this.heartbeat) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
