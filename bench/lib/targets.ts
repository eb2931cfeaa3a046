/**
 * The three systems every WebSocket scenario runs against, behind one small
 * interface, so a scenario is written once:
 *
 *   - ours:     `npm run serve` (or wrangler dev with --target dev); WebSocket /rooms/:room/ws?token=…, POST /rooms/:room/notify
 *               (NOTIFY_SECRET), GET /rooms/:room/status;
 *   - socketio: bench/baselines/socketio-server.ts (Socket.io 4, in-memory room broadcast);
 *   - ws:       bench/baselines/ws-server.ts (raw `ws` broadcast, the ceiling for a Node process);
 *   - floor:    bench/floor under serve: the same wire shapes, with only the runtime's least work per event.
 *
 * Every client socket is a `ws` WebSocket (no compression), whichever the
 * server, so the client's cost per frame is the same for all three (see
 * socketio-wire.ts for Socket.io's protocol). Each delivered event carries
 * a seq (ours from the room, the baselines from their own per-room counter),
 * so order is checked the same way everywhere.
 */
import WebSocket from "ws";
import { tokenFor } from "../../test/e2e/clients.ts";
import type { Baseline } from "./baseline.ts";
import { getJson, postJson, type TimedResponse } from "./http.ts";
import type { BenchContext } from "./scenario.ts";
import { devProcesses } from "./direct.ts";
import { processCpuMs, residentMiB } from "./machine.ts";
import { sampleMemory } from "./server-memory.ts";
import { CONNECT_PACKET, decodeSocketIo, encodeEventWithAck, PONG_PACKET, socketIoPath } from "./socketio-wire.ts";

export type TargetKey = "ours" | "floor" | "socketio" | "ws";

/** A WebSocket must be open and welcomed within this. */
const OPEN_TIMEOUT_MS = 30_000;

export interface Delivery {
  seq: number;
  data: Record<string, unknown>;
}

export interface Ack {
  clientId?: string;
  seq: number;
}

export interface ConnectionHandlers {
  /** An event reached this socket; `at` is performance.now() when its frame was read. */
  onMessage?(delivery: Delivery, at: number): void;
  onAck?(ack: Ack, at: number): void;
  /** An error frame (ours: rate limited, too large …). */
  onError?(message: string): void;
}

export interface Connection {
  /** Sends a user message with a clientId (the throughput scenario's publisher). */
  send(data: Record<string, unknown>, clientId: string): void;
  /** The room's last seq when this socket was welcomed. */
  readonly welcomeSeq: number;
  readonly isOpen: boolean;
  /** Starts the close handshake; `closed` resolves when the socket is closed (or after 10 s). */
  close(): void;
  readonly closed: Promise<void>;
}

export interface ServerMemory {
  /** The process that holds the room: workerd running the Worker and its objects, or the baseline's Node. */
  serverMiB: number;
  /** ours only: the workerd that wrangler dev puts in front (dev-only, not part of a deployment). */
  proxyMiB?: number;
}

/** CPU time used so far, ms, by the server that holds the room (and, for ours, by the dev tooling around it). */
export interface ServerCpu {
  serverMs: number;
  /** ours only: wrangler dev's proxy workerd, wrangler's Node process and esbuild. */
  toolingMs?: number;
}

export interface Target {
  key: TargetKey;
  open(room: string, user: string, handlers: ConnectionHandlers): Promise<Connection>;
  notify(room: string, event: string, data: Record<string, unknown>): Promise<TimedResponse<{ message?: { seq: number } }>>;
  /** ours only: many events into one room in one request (`{"events":[…]}`). */
  notifyMany?(room: string, events: { event: string; data: Record<string, unknown> }[]): Promise<TimedResponse<{ messages?: { seq: number }[] }>>;
  /** Connections the server holds in the room (ours: live subscribers of every transport). */
  held(room: string): Promise<number>;
  memory(): ServerMemory | undefined;
  cpu(): ServerCpu | undefined;
}

/**
 * The three targets. `direct`: ours without wrangler dev's proxy, on the
 * workerd that runs the rooms (see direct.ts), for sockets, notifies and
 * status alike. `batch`: ours' sockets connect with `batch=1` and take
 * coalesced `messages` / `acks` frames.
 */
export function targetsFor(ctx: BenchContext, options: { direct?: boolean; batch?: boolean } = {}): Record<TargetKey, Target> {
  // Under serve, ours has no proxy in front: direct is what it always is.
  const direct = options.direct && ctx.serverKind === "dev";
  if (direct && !ctx.directUrl) throw new Error("the workerd behind wrangler dev's proxy was not found; run without direct=1");
  return {
    ours: ours(ctx, direct ? ctx.directUrl! : ctx.url, options.batch === true),
    get floor(): Target {
      if (!ctx.floor) throw new Error("the floor runs in a full bench only");
      return roomsApi("floor", ctx, ctx.floor.url, processFigures(ctx.floor.pid));
    },
    socketio: socketio(ctx.baselines.socketio),
    ws: rawWs(ctx.baselines.ws),
  };
}

/** The systems a scenario runs in this bench: the floor in a full run only (quick checks delivery, not cost). */
export function systemsIn<K extends string>(ctx: BenchContext, keys: readonly K[]): K[] {
  return ctx.floor ? [...keys] : keys.filter((key) => key !== "floor");
}

const tokens = new Map<string, Promise<string>>();
const tokenOf = (user: string): Promise<string> => {
  let token = tokens.get(user);
  if (!token) tokens.set(user, (token = tokenFor(user, { rooms: ["bench-*"] })));
  return token;
};

/** ours: under serve, its workerd by pid; under wrangler dev, the rooms' workerd and the dev tooling around it. */
function ours(ctx: BenchContext, base: string, batch: boolean): Target {
  if (ctx.serverPid !== undefined) return roomsApi("ours", ctx, base, processFigures(ctx.serverPid), batch);
  return roomsApi("ours", ctx, base, {
    memory() {
      const sample = sampleMemory(0);
      return sample ? { serverMiB: sample.roomsMiB, proxyMiB: sample.proxyMiB } : undefined;
    },
    cpu() {
      const { rooms, tooling } = devProcesses();
      const serverMs = rooms === undefined ? undefined : processCpuMs(rooms);
      if (serverMs === undefined) return undefined;
      return { serverMs, toolingMs: tooling.reduce((sum, pid) => sum + (processCpuMs(pid) ?? 0), 0) };
    },
  }, batch);
}

/** The rooms' routes (ours' and the floor's, which speaks the same shapes), measured by `figures`. */
function roomsApi(key: "ours" | "floor", ctx: BenchContext, base: string, figures: Pick<Target, "memory" | "cpu">, batch = false): Target {
  const wsBase = base.replace(/^http/, "ws");
  const auth = { authorization: `Bearer ${ctx.notifySecret}` };
  return {
    key,
    async open(room, user, handlers) {
      return openJsonFrames(`${wsBase}/rooms/${room}/ws?token=${await tokenOf(user)}${batch ? "&batch=1" : ""}`, handlers);
    },
    notify: (room, event, data) => postJson(`${base}/rooms/${room}/notify`, { event, data }, auth),
    notifyMany: (room, events) => postJson(`${base}/rooms/${room}/notify`, { events }, auth),
    async held(room) {
      return (await roomStatus(ctx, room, base)).subscribers;
    },
    ...figures,
  };
}

/** Memory and CPU of one process (a workerd under serve, a baseline's Node). */
function processFigures(pid: number): Pick<Target, "memory" | "cpu"> {
  return {
    memory() {
      const mib = residentMiB(pid);
      return mib === undefined ? undefined : { serverMiB: mib };
    },
    cpu() {
      const serverMs = processCpuMs(pid);
      return serverMs === undefined ? undefined : { serverMs };
    },
  };
}

function rawWs(baseline: Baseline): Target {
  return {
    key: "ws",
    open: (room, _user, handlers) => openJsonFrames(`${baseline.wsUrl}/ws?room=${encodeURIComponent(room)}`, handlers),
    notify: (room, event, data) => postJson(`${baseline.url}/notify`, { room, event, data }),
    held: (room) => baselineHeld(baseline, room),
    ...processFigures(baseline.pid),
  };
}

function socketio(baseline: Baseline): Target {
  return {
    key: "socketio",
    open: (room, _user, handlers) => openSocketIo(`${baseline.wsUrl}${socketIoPath({ room })}`, handlers),
    notify: (room, event, data) => postJson(`${baseline.url}/notify`, { room, event, data }),
    held: (room) => baselineHeld(baseline, room),
    ...processFigures(baseline.pid),
  };
}

export interface CpuUsed {
  /** ms of CPU used meanwhile by the server holding the room… */
  serverMs: number;
  /** …by wrangler dev's tooling (ours only)… */
  toolingMs?: number;
  /** …and by this process, the load generator and its clients. */
  clientMs: number;
}

/** Starts counting CPU time; the returned function gives what each side used since (undefined off Linux). */
export function measureCpuOf(target: Target): () => CpuUsed | undefined {
  const server = target.cpu();
  const client = process.cpuUsage();
  return () => {
    const now = target.cpu();
    if (!server || !now) return undefined;
    const used = process.cpuUsage(client);
    return {
      serverMs: now.serverMs - server.serverMs,
      ...(now.toolingMs !== undefined && server.toolingMs !== undefined ? { toolingMs: now.toolingMs - server.toolingMs } : {}),
      clientMs: (used.user + used.system) / 1000,
    };
  };
}

/** CPU per unit of work, µs, as side figures (`<prefix>ServerUs`, `<prefix>ToolingUs`, `<prefix>ClientUs`). */
export function cpuFigures(used: CpuUsed | undefined, units: number, prefix: string): Record<string, number> {
  if (!used || units <= 0) return {};
  const per = (ms: number) => (ms * 1000) / units;
  return {
    [`${prefix}ServerUs`]: per(used.serverMs),
    ...(used.toolingMs !== undefined ? { [`${prefix}ToolingUs`]: per(used.toolingMs) } : {}),
    [`${prefix}ClientUs`]: per(used.clientMs),
  };
}

export interface RoomStatus {
  seq: number;
  subscribers: number;
  outbox: { pending: number; flushedSeq: number; d1Batches?: number; d1Statements?: number; d1Events?: number };
}

export async function roomStatus(ctx: BenchContext, room: string, base = ctx.url): Promise<RoomStatus> {
  const response = await getJson<RoomStatus>(`${base}/rooms/${room}/status`, { authorization: `Bearer ${ctx.notifySecret}` });
  if (response.status !== 200) throw new Error(`room status answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

async function baselineHeld(baseline: Baseline, room: string): Promise<number> {
  const { body } = await getJson<{ sockets: number; streams?: number; polls?: number }>(`${baseline.url}/status?room=${encodeURIComponent(room)}`);
  return body.sockets + (body.streams ?? 0) + (body.polls ?? 0);
}

/**
 * The seq and `data.i` of an event frame, read without parsing the whole
 * JSON: the client parses 100,000 frames a second in the fan-out, on cores
 * it shares with the server, and the same shortcut serves every system. The
 * bench's envelopes put `seq` before `data`, and `i` first in `data`; any
 * other frame is parsed in full.
 */
const SEQ = /"seq":(\d+)/;
const INDEX = /"data":\{"i":(\d+)/;

function quickDelivery(text: string, from: number): Delivery | undefined {
  const seq = SEQ.exec(text.length > from ? text.slice(from, from + 400) : text);
  const index = INDEX.exec(text);
  if (!seq || !index) return undefined;
  return { seq: Number(seq[1]), data: { i: Number(index[1]) } };
}

const MESSAGE_FRAME = '{"type":"message","message":';
const SOCKET_IO_MESSAGE = '42["message",';

/** Our frames, and the raw ws baseline's (the same shapes): welcome, message, ack, error; with batch=1 also messages and acks. */
function openJsonFrames(url: string, handlers: ConnectionHandlers): Promise<Connection> {
  return openSocket(url, (text, at, _socket, welcomed) => {
    if (handlers.onMessage && text.startsWith(MESSAGE_FRAME)) {
      const delivery = quickDelivery(text, MESSAGE_FRAME.length);
      if (delivery) return handlers.onMessage(delivery, at);
    }
    const frame = JSON.parse(text) as { type: string; seq?: number; message?: Delivery; messages?: Delivery[]; acks?: Ack[]; clientId?: string; code?: string };
    switch (frame.type) {
      case "message":
        return handlers.onMessage?.(frame.message!, at);
      case "messages":
        for (const message of frame.messages!) handlers.onMessage?.(message, at);
        return;
      case "ack":
        return handlers.onAck?.({ clientId: frame.clientId, seq: frame.seq! }, at);
      case "acks":
        for (const ack of frame.acks!) handlers.onAck?.(ack, at);
        return;
      case "welcome":
        return welcomed(frame.seq ?? 0);
      case "error":
        return handlers.onError?.(`${frame.code}: ${text}`);
    }
  }, (socket, data, clientId) => socket.send(JSON.stringify({ type: "send", data, clientId })));
}

/** Socket.io over its WebSocket transport: connect to the namespace, answer pings, take "welcome", "message" and acks. */
function openSocketIo(url: string, handlers: ConnectionHandlers): Promise<Connection> {
  let nextAck = 0;
  return openSocket(url, (text, at, socket, welcomed) => {
    if (handlers.onMessage && text.startsWith(SOCKET_IO_MESSAGE)) {
      const delivery = quickDelivery(text, SOCKET_IO_MESSAGE.length);
      if (delivery) return handlers.onMessage(delivery, at);
    }
    const packet = decodeSocketIo(text);
    switch (packet.kind) {
      case "open":
        return socket.send(CONNECT_PACKET);
      case "ping":
        return socket.send(PONG_PACKET);
      case "event": {
        const payload = packet.args[0] as Delivery & { seq: number };
        if (packet.name === "message") return handlers.onMessage?.(payload, at);
        if (packet.name === "welcome") return welcomed(payload.seq);
        return;
      }
      case "ack":
        return handlers.onAck?.(packet.args[0] as Ack, at);
      case "error":
        return handlers.onError?.(packet.message);
    }
  }, (socket, data, clientId) => socket.send(encodeEventWithAck(nextAck++, "send", data, clientId)));
}

type FrameHandler = (text: string, at: number, socket: WebSocket, welcomed: (seq: number) => void) => void;

/** Opens a `ws` WebSocket; resolves once the server's welcome has been read (rejects on error, close or timeout). */
function openSocket(url: string, onFrame: FrameHandler, send: (socket: WebSocket, data: Record<string, unknown>, clientId: string) => void): Promise<Connection> {
  return new Promise((resolve, reject) => {
    // The servers are local and trusted: skip the client's UTF-8 check, a cost per frame on cores the servers share.
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS, skipUTF8Validation: true });
    let welcome: number | undefined;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error("no welcome within 30 s"));
    }, OPEN_TIMEOUT_MS);
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    const connection: Connection = {
      send: (data, clientId) => send(socket, data, clientId),
      get welcomeSeq() {
        return welcome ?? 0;
      },
      get isOpen() {
        return socket.readyState === WebSocket.OPEN;
      },
      close() {
        if (socket.readyState === WebSocket.CLOSED) return;
        socket.close(1000);
        setTimeout(() => socket.terminate(), 10_000).unref();
      },
      closed,
    };
    socket.on("message", (raw, isBinary) => {
      if (isBinary) return;
      onFrame(String(raw), performance.now(), socket, (seq) => {
        if (welcome !== undefined) return;
        welcome = seq;
        clearTimeout(timer);
        resolve(connection);
      });
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("close", (code) => {
      clearTimeout(timer);
      if (welcome === undefined) reject(new Error(`closed (${code}) before the welcome`));
    });
  });
}

/**
 * Opens `count` connections, at most `concurrency` handshakes at a time.
 * With `stopOnError`, no new connection starts after the first failure.
 */
export async function openMany(
  count: number,
  concurrency: number,
  open: (i: number) => Promise<Connection>,
  stopOnError = false,
): Promise<{ connections: Connection[]; errors: string[] }> {
  const connections: Connection[] = [];
  const errors: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count && !(stopOnError && errors.length > 0)) {
      const i = next++;
      try {
        connections.push(await open(i));
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { connections, errors };
}

/** Closes every connection and waits for the close handshakes (bounded by each connection's 10 s). */
export async function closeAll(connections: Connection[]): Promise<void> {
  for (const c of connections) c.close();
  await Promise.all(connections.map((c) => c.closed));
}
