/**
 * A room handle: one live subscription to a room, whatever carries it.
 *
 * The Room owns everything that must survive a change of connection:
 *   - the cursor (the last seq it emitted): every (re)connect, on any
 *     transport, resumes after it, and every envelope at or below it is a
 *     repeat and is dropped, so listeners see each event once, in order;
 *   - the outbox of unacknowledged sends (see outbox.ts);
 *   - the transport plan: which transport to try, when to fall back, and the
 *     background try of a better one once it has fallen back;
 *   - the backoff between attempts, and the status the UI shows.
 * Transports are single attempts (transports/transport.ts); when one ends,
 * `#recover` decides what is next. Browsers hide why a WebSocket or
 * EventSource failed, so a connection that failed early is followed by one
 * HTTP request that tells a refused token or room (stop, or refresh the
 * token) from a server that is down (retry, same transport) from a
 * transport that is blocked on the way (count it, then fall back).
 */
import type { Envelope, EventData, UserRef } from "../../protocol/envelope.js";
import type { PresenceMember, ServerFrame, SignalFrame } from "../../protocol/frames.js";
import { Backoff } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { RoomError, toRoomError } from "./errors.js";
import type { RoomEvents, RoomStatus } from "./events.js";
import { HttpApi } from "./http-api.js";
import type { ResolvedOptions } from "./options.js";
import { Outbox, type Ack } from "./outbox.js";
import { PresenceList } from "./presence-list.js";
import { TokenKeeper } from "./token.js";
import { TransportPlan } from "./transport-plan.js";
import { LongPollTransport } from "./transports/long-poll.js";
import { SseTransport } from "./transports/sse.js";
import type { CloseInfo, OpenInfo, Transport, TransportEvents, TransportKind } from "./transports/transport.js";
import { WebSocketTransport } from "./transports/websocket.js";

export interface HistoryOptions {
  /** Messages older than this seq. Default: the newest messages. */
  before?: number;
  /** At most this many (the server allows up to 1000). Default 50. */
  limit?: number;
}

export interface HistoryPage {
  /** Oldest first. */
  messages: Envelope[];
  /** The room's last seq when the page was read. */
  seq: number;
  /** Whether older messages exist (ask again with `before: messages[0].seq`). */
  hasMore: boolean;
}

export interface SendOptions {
  /** Your own idempotency key (1–128 characters), e.g. one you persisted with an unsent draft. Default: a random one. */
  clientId?: string;
}

/** Gaps in a row after which the Room stops resubscribing and takes the log as it comes. */
const MAX_GAP_RESYNCS = 3;

type Timer = ReturnType<typeof setTimeout>;

export class Room extends Emitter<RoomEvents> {
  readonly #options: ResolvedOptions;
  readonly #tokens: TokenKeeper;
  readonly #api: HttpApi;
  readonly #plan: TransportPlan;
  readonly #backoff: Backoff;
  readonly #outbox: Outbox;
  readonly #presence = new PresenceList();
  readonly #events: TransportEvents = {
    opened: (transport, info) => this.#onOpened(transport, info),
    envelope: (transport, envelope) => this.#onEnvelope(transport, envelope),
    signal: (transport, frame) => this.#onSignal(transport, frame),
    reply: (transport, frame) => this.#onReply(transport, frame),
    closed: (transport, info) => this.#onClosed(transport, info),
  };

  #cursor: number | undefined;
  #status: RoomStatus;
  #user?: UserRef;
  /** The connection in use (opening or open). */
  #active?: Transport;
  #openedAt?: number;
  /** A better transport being tried in the background, after a fallback. */
  #probe?: Transport;
  #upgradeDelay: number;
  #everOpened = false;
  #attempting = false;
  #closed = false;
  /** The error that took the room offline for good (until `reconnect()`). */
  #fatal?: RoomError;
  #gapResyncs = 0;
  #lastTypingAt = -Infinity;
  #readWanted = 0;
  #readSent = 0;
  #retryTimer?: Timer;
  #connectTimer?: Timer;
  #probeTimer?: Timer;
  #upgradeTimer?: Timer;
  #presenceTimer?: ReturnType<typeof setInterval>;
  #unlisten?: () => void;

  /** Use `connect()`. */
  constructor(
    readonly name: string,
    options: ResolvedOptions,
  ) {
    super();
    this.#options = options;
    this.#tokens = new TokenKeeper(options.token, options.refreshToken);
    this.#api = new HttpApi(options.url, name, this.#tokens, options.fetch);
    this.#plan = new TransportPlan(options.transports, options.maxTransportFailures);
    this.#backoff = new Backoff(options.backoff);
    this.#upgradeDelay = options.upgradeAfterMs;
    this.#cursor = options.after;
    this.#status = { state: "connecting", transport: this.#plan.current };
    this.#outbox = new Outbox(
      {
        ready: () => !!this.#active?.isOpen,
        frameTransport: () => (this.#active?.isOpen && this.#active.kind === "websocket" ? this.#active : undefined),
        sendHttp: (data, clientId) => this.#api.send(data, clientId),
        stale: (transport) => this.#giveUp(transport, new RoomError("timeout", "a send was not acknowledged in time")),
      },
      options.ackTimeoutMs,
    );
  }

  // ---- state ----

  /** The seq of the last event emitted (the resume cursor), or undefined before the first connection. */
  get seq(): number | undefined {
    return this.#cursor;
  }

  get status(): RoomStatus {
    return this.#status;
  }

  /** The transport carrying the room right now, if it is connected. */
  get transport(): TransportKind | undefined {
    return this.#active?.isOpen ? this.#active.kind : undefined;
  }

  /** Who is in the room, as last known. */
  get members(): PresenceMember[] {
    return this.#presence.list();
  }

  /** Who we are: from the server's welcome, or else read from the token. */
  get user(): UserRef | undefined {
    return this.#user ?? this.#tokens.user();
  }

  /** Sends made and not acknowledged yet. */
  get pendingSends(): number {
    return this.#outbox.size;
  }

  /** Resolves when the room is connected (at once if it is); rejects if it goes offline for good first. */
  whenConnected(): Promise<void> {
    if (this.#status.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on("status", (status) => {
        if (status.state === "connected") {
          off();
          resolve();
        } else if (status.state === "offline" && status.reason !== "network") {
          off();
          reject(status.error ?? new RoomError("closed", "the room was closed"));
        }
      });
    });
  }

  // ---- actions ----

  /**
   * Sends a chat message (`data` must carry a non-empty `text`; a string is
   * shorthand for `{ text }`). Resolves with its seq once the server has
   * stored it, exactly once, however many reconnects that takes. Rejects
   * only when the server refuses it (too large, rate limits aside) or the
   * room is closed.
   */
  send(data: EventData | string, options: SendOptions = {}): Promise<Ack> {
    if (this.#closed) return Promise.reject(new RoomError("closed", "the room was closed"));
    if (this.#fatal) return Promise.reject(this.#fatal);
    const payload = typeof data === "string" ? { text: data } : data;
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      return Promise.reject(new RoomError("invalid_body", "data: must be a JSON object"));
    }
    return this.#outbox.add(payload, options.clientId);
  }

  /** Tells the others you are typing. Cheap to call on every keystroke: it is throttled. Dropped while disconnected. */
  typing(): void {
    const now = Date.now();
    const transport = this.#active;
    if (!transport?.isOpen || now - this.#lastTypingAt < this.#options.typingThrottleMs) return;
    this.#lastTypingAt = now;
    if (transport.sendFrame({ type: "typing" })) return;
    this.#api.typing().catch((error) => this.#report(error));
  }

  /** Marks the room read up to `seq`. Only moves forward; sent when connected (the latest one, once). */
  read(seq: number): void {
    if (!Number.isInteger(seq) || seq < 0) throw new RangeError("read: seq must be a non-negative integer");
    if (seq <= this.#readWanted) return;
    this.#readWanted = seq;
    this.#flushRead();
  }

  /** A page of history over HTTP (works whatever the connection is doing). */
  async history(options: HistoryOptions = {}): Promise<HistoryPage> {
    const limit = options.limit ?? 50;
    const page = await this.#api.messages({ before: options.before, limit });
    const first = page.messages[0];
    return { messages: page.messages, seq: page.seq, hasMore: !!first && page.messages.length >= limit && first.seq > 1 };
  }

  /** Uses a new token from now on (the current connection keeps going; the next one uses it). */
  setToken(token: string): void {
    this.#tokens.set(token);
  }

  /** Drops the connection and connects again now: after `setToken`, or from `offline`. */
  reconnect(): void {
    if (this.#closed) return;
    this.#fatal = undefined;
    this.#closeProbe();
    const active = this.#active;
    if (active) {
      this.#active = undefined;
      active.close();
      this.#outbox.transportDown(active);
    }
    this.#clearConnectionTimers();
    this.#backoff.reset();
    this.#connectSoon(0);
  }

  /** Leaves the room: closes the connection, rejects unsent messages, stops every timer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten?.();
    this.#closeProbe();
    this.#active?.close();
    this.#active = undefined;
    this.#clearConnectionTimers();
    clearTimeout(this.#retryTimer);
    this.#outbox.failAll(new RoomError("closed", "the room was closed"));
    this.#setStatus({ state: "offline", reason: "closed" });
  }

  /** Called once by `connect()`. */
  start(): void {
    this.#listenToNetwork();
    void this.#attempt();
  }

  // ---- connecting ----

  async #attempt(): Promise<void> {
    if (this.#closed || this.#fatal || this.#active || this.#attempting) return;
    if (isOffline()) {
      this.#setStatus({ state: "offline", reason: "network" });
      return; // the `online` event brings us back
    }
    const kind = this.#plan.current;
    this.#setStatus(this.#everOpened ? { state: "reconnecting", transport: kind, attempt: this.#backoff.attempt } : { state: "connecting", transport: kind });
    if (this.#cursor === undefined && kind !== "websocket") {
      // SSE and long-poll have no welcome frame: learn where the room is, then go live from there.
      this.#attempting = true;
      try {
        const seq = await this.#api.lastSeq();
        this.#cursor ??= seq;
      } catch (error) {
        this.#attempting = false;
        return this.#recover({ wasOpen: false, error: toRoomError(error) }, 0);
      }
      this.#attempting = false;
      if (this.#closed || this.#fatal || this.#active) return;
    }
    const transport = this.#createTransport(kind);
    this.#active = transport;
    this.#openedAt = undefined;
    this.#connectTimer = setTimeout(
      () => this.#giveUp(transport, new RoomError("timeout", `${kind} did not open within ${this.#options.connectTimeoutMs} ms`)),
      this.#options.connectTimeoutMs,
    );
    transport.open(this.#cursor);
  }

  #createTransport(kind: TransportKind): Transport {
    const o = this.#options;
    switch (kind) {
      case "websocket":
        return new WebSocketTransport((after) => this.#api.streamUrl("/ws", after), o.WebSocket!, this.#events, {
          pingIntervalMs: o.pingIntervalMs,
          pongTimeoutMs: o.pongTimeoutMs,
        });
      case "sse":
        return new SseTransport((after) => this.#api.streamUrl("/events", after), o.EventSource!, this.#events);
      case "longpoll":
        return new LongPollTransport(this.#api, () => this.#cursor, this.#events, { waitSeconds: o.pollWaitSeconds, limit: o.pollLimit });
    }
  }

  #connectSoon(delayMs: number): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#attempt();
    }, delayMs);
  }

  /** Ends a transport from our side for a reason (a timeout), and recovers as if it had failed. */
  #giveUp(transport: Transport, error: RoomError): void {
    const wasOpen = transport.isOpen;
    transport.close();
    this.#onClosed(transport, { wasOpen, error });
  }

  /**
   * After the active transport ended: find out why if it failed early,
   * then stop (an error retrying cannot fix), refresh the token, or count
   * the failure against the transport and try again after a backoff delay.
   */
  async #recover(info: CloseInfo, livedMs: number): Promise<void> {
    // A socket the server closed for falling behind (1013) worked: resume at once from the cursor, on the same
    // transport, however short it lived (a client far behind may be cut again during a catch-up).
    const held = (info.wasOpen && livedMs >= this.#options.stableAfterMs) || info.error?.code === "too_far_behind";
    let error = info.error;
    const tokenVersion = this.#tokens.version;
    let serverFine = false;
    if (!held && (!error || error.code === "timeout")) {
      const found = await this.#diagnose();
      if (found) error = found;
      else serverFine = true;
    }
    if (this.#closed || this.#fatal || this.#active || this.#attempting) return;
    if (error?.permanent) return this.#fail(error);
    if (this.#tokens.version !== tokenVersion) {
      // The diagnosis found the token refused and refreshed it: that was the cause, not the transport.
      this.#connectSoon(0);
      return;
    }
    if (held) {
      this.#plan.held();
      this.#backoff.reset();
      this.#upgradeDelay = this.#options.upgradeAfterMs;
    } else if (serverFine && this.#plan.failed()) {
      // The server answers HTTP but this transport keeps failing: something on the way blocks it.
      this.#backoff.reset();
    }
    let delay = this.#backoff.next();
    if (error?.retryAfter !== undefined) delay = Math.max(delay, error.retryAfter * 1000);
    const transport = this.#plan.current;
    const shownError = serverFine ? undefined : error;
    this.#setStatus(
      this.#everOpened
        ? { state: "reconnecting", transport, attempt: this.#backoff.attempt, retryInMs: delay, ...(shownError ? { error: shownError } : {}) }
        : { state: "connecting", transport, retryInMs: delay, ...(shownError ? { error: shownError } : {}) },
    );
    this.#connectSoon(delay);
  }

  /** One HTTP request to learn why a stream failed: undefined when the server answers and accepts us. */
  async #diagnose(): Promise<RoomError | undefined> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#options.connectTimeoutMs);
    try {
      await this.#api.lastSeq(abort.signal);
      return undefined;
    } catch (error) {
      return toRoomError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  #fail(error: RoomError): void {
    this.#fatal = error;
    this.#closeProbe();
    this.#active?.close();
    this.#active = undefined;
    this.#clearConnectionTimers();
    clearTimeout(this.#retryTimer);
    this.#outbox.failAll(error);
    this.#setStatus({ state: "offline", reason: "error", error });
    this.emit("error", error);
  }

  // ---- transport events ----

  #onOpened(transport: Transport, info: OpenInfo): void {
    if (transport === this.#probe) this.#promote(transport);
    if (transport !== this.#active) return transport.close();
    clearTimeout(this.#connectTimer);
    this.#openedAt = Date.now();
    this.#everOpened = true;
    this.#tokens.accepted();
    // A room whose log is behind our cursor was reset (local state wiped): follow it rather than wait forever.
    if (info.seq !== undefined && (this.#cursor === undefined || info.seq < this.#cursor)) this.#cursor = info.seq;
    if (info.user) this.#user = info.user;
    this.#setStatus({ state: "connected", transport: transport.kind });
    if (info.presence) this.#syncPresence(info.presence);
    else void this.#refreshPresence();
    if (transport.kind === "longpoll") {
      // Long-poll carries no presence signals: look now and then.
      this.#presenceTimer = setInterval(() => void this.#refreshPresence(), this.#options.presenceRefreshMs);
    }
    this.#flushRead();
    this.#outbox.pump();
    if (transport.kind !== this.#plan.best) this.#scheduleUpgrade();
  }

  #onEnvelope(transport: Transport, envelope: Envelope): void {
    if (transport !== this.#active && transport !== this.#probe) return;
    const cursor = this.#cursor;
    if (cursor !== undefined) {
      if (envelope.seq <= cursor) return; // a repeat (replay overlap, two transports, a retried poll)
      if (envelope.seq > cursor + 1 && this.#gapResyncs < MAX_GAP_RESYNCS) {
        // Seqs have no gaps: this connection missed something. Resubscribe from the cursor.
        this.#gapResyncs++;
        return this.#resync(transport);
      }
    }
    this.#gapResyncs = 0;
    this.#cursor = envelope.seq;
    this.emit("message", envelope);
  }

  #onSignal(transport: Transport, frame: SignalFrame): void {
    if (transport !== this.#active) return;
    switch (frame.type) {
      case "presence": {
        const changed = frame.action === "join" ? this.#presence.join(frame.user) : this.#presence.leave(frame.user);
        if (changed) this.emit("presence", { action: frame.action, user: frame.user, members: this.#presence.list() });
        return;
      }
      case "typing":
        this.emit("typing", { user: frame.user });
        return;
      case "read":
        this.emit("read", { user: frame.user, seq: frame.seq });
        return;
    }
  }

  #onReply(transport: Transport, frame: Extract<ServerFrame, { type: "ack" | "error" }>): void {
    if (this.#outbox.reply(transport, frame) || frame.type !== "error") return;
    this.#report(new RoomError(frame.code, frame.message, undefined, frame.retryAfter));
  }

  #onClosed(transport: Transport, info: CloseInfo): void {
    if (transport === this.#probe) return this.#probeFailed();
    if (transport !== this.#active) return;
    this.#active = undefined;
    this.#closeProbe();
    this.#clearConnectionTimers();
    this.#outbox.transportDown(transport);
    const livedMs = this.#openedAt === undefined ? 0 : Date.now() - this.#openedAt;
    this.#openedAt = undefined;
    if (this.#closed || this.#fatal) return;
    void this.#recover(info, livedMs);
  }

  /** The connection skipped a seq: drop it and resume from the cursor at once. */
  #resync(transport: Transport): void {
    if (transport === this.#probe) {
      transport.close();
      return this.#probeFailed();
    }
    this.#active = undefined;
    transport.close();
    this.#clearConnectionTimers();
    this.#outbox.transportDown(transport);
    this.#connectSoon(0);
  }

  // ---- going back to a better transport ----

  #scheduleUpgrade(): void {
    if (this.#upgradeTimer || this.#probe || this.#closed) return;
    this.#upgradeTimer = setTimeout(() => {
      this.#upgradeTimer = undefined;
      this.#tryUpgrade(0);
    }, this.#upgradeDelay);
  }

  /** Opens `order[index]` beside the active transport; if it opens, it takes over (see #promote). */
  #tryUpgrade(index: number): void {
    const active = this.#active;
    const order = this.#plan.order;
    const activeIndex = active ? order.indexOf(active.kind) : -1;
    if (!active?.isOpen || this.#probe || this.#closed || index >= activeIndex) return;
    const probe = this.#createTransport(order[index]!);
    this.#probe = probe;
    this.#probeTimer = setTimeout(() => {
      if (this.#probe !== probe) return;
      probe.close();
      this.#probeFailed();
    }, this.#options.connectTimeoutMs);
    probe.open(this.#cursor);
  }

  #probeFailed(): void {
    const probe = this.#probe;
    if (!probe) return;
    this.#probe = undefined;
    clearTimeout(this.#probeTimer);
    const next = this.#plan.order.indexOf(probe.kind) + 1;
    const active = this.#active;
    if (active?.isOpen && next < this.#plan.order.indexOf(active.kind)) return this.#tryUpgrade(next);
    this.#upgradeDelay = Math.min(this.#upgradeDelay * 2, this.#options.maxUpgradeAfterMs);
    if (active?.isOpen) this.#scheduleUpgrade();
  }

  /** The background transport opened: it becomes the active one, and the old one is closed. */
  #promote(probe: Transport): void {
    const old = this.#active;
    this.#probe = undefined;
    clearTimeout(this.#probeTimer);
    this.#active = probe;
    this.#clearConnectionTimers();
    clearTimeout(this.#retryTimer);
    if (old) {
      old.close();
      this.#outbox.transportDown(old);
    }
    this.#plan.promote(probe.kind);
    this.#backoff.reset();
    // The upgrade delay starts over only once the promoted transport has held (see #recover),
    // so a transport that opens and then keeps dying is not promoted again every 30 s.
  }

  #closeProbe(): void {
    clearTimeout(this.#probeTimer);
    this.#probe?.close();
    this.#probe = undefined;
  }

  // ---- presence, read receipts ----

  #syncPresence(members: PresenceMember[]): void {
    this.#presence.sync(members);
    this.emit("presence", { action: "sync", members: this.#presence.list() });
  }

  async #refreshPresence(): Promise<void> {
    const transport = this.#active;
    try {
      const members = await this.#api.presence();
      if (this.#active === transport && transport?.isOpen) this.#syncPresence(members);
    } catch {
      // the transport will notice trouble by itself
    }
  }

  #flushRead(): void {
    const seq = this.#readWanted;
    const transport = this.#active;
    if (seq <= this.#readSent || !transport?.isOpen) return;
    const previous = this.#readSent;
    this.#readSent = seq;
    if (transport.sendFrame({ type: "read", seq })) return;
    this.#api.read(seq).catch((error: unknown) => {
      const roomError = toRoomError(error);
      if (roomError.transient && this.#readSent === seq) this.#readSent = previous; // again on the next connection
      this.#report(roomError);
    });
  }

  // ---- plumbing ----

  #report(error: unknown): void {
    this.emit("error", toRoomError(error));
  }

  #setStatus(status: RoomStatus): void {
    if (statusKey(status) === statusKey(this.#status)) return;
    this.#status = status;
    this.emit("status", status);
  }

  #clearConnectionTimers(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#upgradeTimer);
    this.#upgradeTimer = undefined;
    clearInterval(this.#presenceTimer);
  }

  /** In a browser: go offline with the network, and come back at once when it returns. */
  #listenToNetwork(): void {
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void; removeEventListener?: (type: string, listener: () => void) => void };
    if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") return;
    const online = () => {
      if (this.#closed || this.#fatal || this.#active) return;
      this.#backoff.reset();
      this.#connectSoon(0);
    };
    const offline = () => {
      const active = this.#active;
      if (active) this.#giveUp(active, new RoomError("network_error", "the browser went offline"));
    };
    target.addEventListener("online", online);
    target.addEventListener("offline", offline);
    this.#unlisten = () => {
      target.removeEventListener?.("online", online);
      target.removeEventListener?.("offline", offline);
    };
  }
}

function isOffline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine === false;
}

function statusKey(status: RoomStatus): string {
  return JSON.stringify({ ...status, error: "error" in status ? status.error?.code : undefined });
}
