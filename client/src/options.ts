/** What `connect()` accepts, and the defaults it fills in. */
import type { BackoffOptions } from "./backoff.js";
import type { FetchLike } from "./http-api.js";
import type { RefreshToken } from "./token.js";
import type { EventSourceConstructor } from "./transports/sse.js";
import type { TransportKind } from "./transports/transport.js";
import type { WebSocketConstructor } from "./transports/websocket.js";

export interface ConnectOptions {
  /** The service's base URL, e.g. `https://chat.example.com`. Defaults to the page's origin in a browser. */
  url?: string;
  /** A client JWT (SPEC §2) that grants the room. */
  token: string;
  /** Called when the server answers `invalid_token`; returns a fresh token. Without it, that error takes the room offline. */
  refreshToken?: RefreshToken;
  /** Transports to use, best first. Default `["websocket", "sse", "longpoll"]`. */
  transports?: TransportKind[];
  /** Resume after this seq (a cursor saved earlier). Default: live from now. */
  after?: number;
  /** WebSocket implementation. Default `globalThis.WebSocket`; `null` disables the transport. */
  WebSocket?: WebSocketConstructor | null;
  /** EventSource implementation (Node has none: pass the `eventsource` package's). Default `globalThis.EventSource`; `null` disables SSE. */
  EventSource?: EventSourceConstructor | null;
  /** fetch implementation. Default `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Reconnect delays. Default 500 ms doubling up to 30 s, jittered. */
  backoff?: BackoffOptions;
  /** Failures in a row (never opened, or died within `stableAfterMs`) before falling back to the next transport. Default 2. */
  maxTransportFailures?: number;
  /** A connection that stayed up this long held: its transport's failures and the backoff start over. Default 5000 ms. */
  stableAfterMs?: number;
  /** A transport that has not opened within this is given up. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** After falling back, try the better transport again in the background after this; doubles after each failed try. Default 30000 ms. */
  upgradeAfterMs?: number;
  /** The longest wait between background tries of the better transport. Default 300000 ms. */
  maxUpgradeAfterMs?: number;
  /** A send over WebSocket not acknowledged within this means the socket is dead. Default 15000 ms. */
  ackTimeoutMs?: number;
  /** WebSocket keepalive interval. Default 25000 ms. */
  pingIntervalMs?: number;
  /** No answer to a keepalive within this drops the socket. Default 10000 ms. */
  pongTimeoutMs?: number;
  /** Seconds a long-poll request may be held. Default 25. */
  pollWaitSeconds?: number;
  /** Messages per long-poll answer. Default 100. */
  pollLimit?: number;
  /** Presence is refreshed over HTTP this often on long-poll (which carries no signals). Default 15000 ms. */
  presenceRefreshMs?: number;
  /** `typing()` sends at most once per this. Default 2000 ms. */
  typingThrottleMs?: number;
}

export type ResolvedOptions = Required<Omit<ConnectOptions, "refreshToken" | "after" | "WebSocket" | "EventSource" | "backoff">> & {
  refreshToken?: RefreshToken;
  after?: number;
  WebSocket?: WebSocketConstructor;
  EventSource?: EventSourceConstructor;
  backoff: BackoffOptions;
};

export const DEFAULT_TRANSPORTS: readonly TransportKind[] = ["websocket", "sse", "longpoll"];

/** Fills in defaults and checks what can be checked before connecting. */
export function resolveOptions(options: ConnectOptions): ResolvedOptions {
  if (typeof options?.token !== "string" || options.token === "") throw new TypeError("connect: `token` must be a non-empty JWT string");
  const g = globalThis as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor; location?: { origin?: string } };
  const rawUrl = options.url ?? g.location?.origin;
  if (!rawUrl) throw new TypeError("connect: `url` is required outside a browser page");
  const url = rawUrl.replace(/\/+$/, "").replace(/^ws(s?):/i, "http$1:");
  if (!/^https?:\/\//i.test(url)) throw new TypeError(`connect: \`url\` must be an http(s) or ws(s) URL, got ${rawUrl}`);
  const WebSocket = options.WebSocket === null ? undefined : (options.WebSocket ?? g.WebSocket);
  const EventSource = options.EventSource === null ? undefined : (options.EventSource ?? g.EventSource);
  const fetchImpl = options.fetch ?? ((input: string, init?: RequestInit) => globalThis.fetch(input, init));
  const available = (kind: TransportKind) => (kind === "websocket" ? !!WebSocket : kind === "sse" ? !!EventSource : true);
  const transports = [...new Set(options.transports ?? DEFAULT_TRANSPORTS)].filter(available);
  if (transports.length === 0) throw new TypeError("connect: none of the requested transports is available here");
  if (options.after !== undefined && !(Number.isInteger(options.after) && options.after >= 0)) throw new TypeError("connect: `after` must be a non-negative integer");
  return {
    url,
    token: options.token,
    refreshToken: options.refreshToken,
    transports,
    after: options.after,
    WebSocket,
    EventSource,
    fetch: fetchImpl,
    backoff: options.backoff ?? {},
    maxTransportFailures: options.maxTransportFailures ?? 2,
    stableAfterMs: options.stableAfterMs ?? 5_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    upgradeAfterMs: options.upgradeAfterMs ?? 30_000,
    maxUpgradeAfterMs: options.maxUpgradeAfterMs ?? 300_000,
    ackTimeoutMs: options.ackTimeoutMs ?? 15_000,
    pingIntervalMs: options.pingIntervalMs ?? 25_000,
    pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
    pollWaitSeconds: options.pollWaitSeconds ?? 25,
    pollLimit: options.pollLimit ?? 100,
    presenceRefreshMs: options.presenceRefreshMs ?? 15_000,
    typingThrottleMs: options.typingThrottleMs ?? 2_000,
  };
}
