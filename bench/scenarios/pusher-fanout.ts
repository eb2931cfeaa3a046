/**
 * Pusher fan-out: one channel (a room), N Pusher-protocol subscribers (500),
 * events notified natively at a steady rate (20/s for 10 s), beside the
 * same number of native WebSockets on another room for comparison.
 *
 * pusher: plain `ws` clients speaking Pusher protocol 7 to /app/:key
 * (connection_established, pusher:subscribe, channel events), spread by the
 * Worker over the PusherHub shards; each event goes room → each shard once
 * (batched) → its sockets. native: the room's own hibernatable WebSockets.
 *
 * Each sample is one delivery, from just before event i's notify is sent to
 * when one subscriber read it. Pusher events carry no seq, so order is
 * checked against the room's seq of each index, learnt from one native
 * observer in the same room (an out-of-order count of 0 means every
 * subscriber saw the room's order).
 */
import WebSocket from "ws";
import { DEFAULT_SECRETS } from "../../test/e2e/server.ts";
import { DeliveryTracker } from "../lib/delivery.ts";
import { notifyOpenLoop } from "../lib/open-loop.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { distribution } from "../lib/stats.ts";
import { closeAll, openMany, targetsFor, type Connection, type Delivery } from "../lib/targets.ts";

export interface PusherFanoutParams {
  sockets: number;
  /** Events per second. */
  rate: number;
  seconds: number;
  drainTimeoutMs: number;
  openConcurrency: number;
}

/** A Pusher socket must be established and subscribed within this. */
const OPEN_TIMEOUT_MS = 30_000;

export function pusherFanout(sockets: number): Scenario<PusherFanoutParams> {
  return {
    id: "pusher-fanout",
    title: (p) => `Pusher fan-out, ${p.sockets.toLocaleString("en-US")} subscribers on one channel, ${p.rate} events/s for ${p.seconds} s`,
    series: [
      { key: "pusher", label: "ours, Pusher protocol", description: "Pusher protocol 7 sockets on PusherHub shards, subscribed to one channel; each event notified over HTTP into the room, stored, then sent once per shard and fanned out there" },
      { key: "native", label: "ours, native WebSocket", description: "the room's own hibernatable WebSockets, same load, for the cost of the bridge" },
    ],
    figures: [
      { key: "notifyP50Ms", label: "notify round trip p50", unit: "ms", better: "lower" },
    ],
    runs: 3,
    params: (mode) =>
      mode === "quick"
        ? { sockets: Math.min(sockets, 50), rate: 20, seconds: 2, drainTimeoutMs: 10_000, openConcurrency: 25 }
        : { sockets, rate: 20, seconds: 10, drainTimeoutMs: 30_000, openConcurrency: 50 },

    async warmup(ctx, params) {
      const small = { ...params, sockets: Math.min(params.sockets, 50), seconds: 1 };
      await pusherRun(ctx, small, `bench-pusher-warm-${Date.now()}`);
      await nativeRun(ctx, small, `bench-pusher-warm-native-${Date.now()}`);
    },

    async run(ctx, params, runIndex) {
      const stamp = `${Date.now()}-${runIndex}`;
      const order = runIndex % 2 === 0 ? (["pusher", "native"] as const) : (["native", "pusher"] as const);
      const result: Record<string, SeriesRun> = {};
      for (const key of order) {
        if (ctx.signal.aborted) break;
        result[key] = key === "pusher" ? await pusherRun(ctx, params, `bench-pusher-${stamp}`) : await nativeRun(ctx, params, `bench-pusher-native-${stamp}`);
      }
      return result;
    },
  };
}

/** Event index → the room's seq, from a native observer in the channel's room. */
type SeqOf = Map<number, number>;

async function pusherRun(ctx: BenchContext, params: PusherFanoutParams, channel: string): Promise<SeriesRun> {
  const events = Math.round(params.rate * params.seconds);
  const sentAt = new Float64Array(events).fill(Number.NaN);
  const arrivals: { i: number; at: number }[][] = Array.from({ length: params.sockets }, () => []);
  const seqOf: SeqOf = new Map();
  const observer = await targetsFor(ctx).ours.open(channel, "bench-observer", {
    onMessage: (delivery) => typeof delivery.data?.i === "number" && seqOf.set(delivery.data.i, delivery.seq),
  });
  let received = 0;
  let allArrived: (() => void) | undefined;
  const opened = await openMany(params.sockets, params.openConcurrency, (s) =>
    openPusher(ctx.url, channel, (i, at) => {
      arrivals[s]!.push({ i, at });
      if (++received >= params.sockets * events) allArrived?.();
    }),
  );
  if (opened.errors.length > 0) {
    await closeAll([...opened.connections, observer]);
    throw new Error(`pusher: ${opened.errors.length} of ${params.sockets} sockets failed to open: ${opened.errors[0]}`);
  }

  const { rtts, failures, lastSent, t0 } = await publish(ctx, params, channel, events, sentAt);
  const complete = await new Promise<boolean>((resolve) => {
    if (received >= params.sockets * events) return resolve(true);
    const timer = setTimeout(() => resolve(false), params.drainTimeoutMs);
    allArrived = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  const drainedAt = performance.now();
  await closeAll([...opened.connections, observer]);

  // Replay the arrivals with the room's seq of each index: latency, duplicates and order, counted as for native sockets.
  const tracker = new DeliveryTracker(params.sockets, events, sentAt);
  arrivals.forEach((list, s) => {
    const handle = tracker.handler(s);
    for (const { i, at } of list) handle({ seq: seqOf.get(i) ?? Number.NaN, data: { i } } as Delivery, at);
  });
  ctx.debug(`pusher fan-out: ${tracker.delivered}/${tracker.expected} delivered${complete ? "" : " (timed out)"}, p50 ${Math.round(distribution(tracker.latenciesMs).p50)} ms, p99 ${Math.round(distribution(tracker.latenciesMs).p99)} ms`);
  return tracker.run(extraFigures(events, t0, lastSent, rtts, failures, drainedAt));
}

async function nativeRun(ctx: BenchContext, params: PusherFanoutParams, room: string): Promise<SeriesRun> {
  const events = Math.round(params.rate * params.seconds);
  const sentAt = new Float64Array(events).fill(Number.NaN);
  const tracker = new DeliveryTracker(params.sockets, events, sentAt);
  const target = targetsFor(ctx).ours;
  const opened = await openMany(params.sockets, params.openConcurrency, (i) => target.open(room, "bench-native", { onMessage: tracker.handler(i) }));
  if (opened.errors.length > 0) {
    await closeAll(opened.connections);
    throw new Error(`native: ${opened.errors.length} of ${params.sockets} sockets failed to open: ${opened.errors[0]}`);
  }
  const { rtts, failures, lastSent, t0 } = await publish(ctx, params, room, events, sentAt);
  await tracker.whenComplete(params.drainTimeoutMs, ctx.signal);
  const drainedAt = performance.now();
  await closeAll(opened.connections);
  return tracker.run(extraFigures(events, t0, lastSent, rtts, failures, drainedAt));
}

/** Open-loop notifies (bench/lib/open-loop.ts), waiting for every answer. */
async function publish(ctx: BenchContext, params: PusherFanoutParams, room: string, events: number, sentAt: Float64Array) {
  const loop = await notifyOpenLoop(targetsFor(ctx).ours, room, events, params.rate, sentAt, ctx.signal);
  await loop.answered;
  return { rtts: loop.rtts, failures: loop.failures, lastSent: loop.lastSent, t0: loop.t0 };
}

function extraFigures(events: number, t0: number, lastSent: number, rtts: number[], failures: number, drainedAt: number): Record<string, number> {
  return {
    sentPerSecond: events > 1 ? ((events - 1) * 1000) / (lastSent - t0) : events,
    notifyP50Ms: distribution(rtts).p50,
    notifyP99Ms: distribution(rtts).p99,
    notifyFailures: failures,
    drainMs: drainedAt - lastSent,
  };
}

/**
 * A Pusher protocol client on a `ws` socket: waits for
 * connection_established, subscribes to a public channel, resolves on
 * subscription_succeeded; channel events with `data.i` go to `onEvent`.
 */
function openPusher(httpBase: string, channel: string, onEvent: (i: number, at: number) => void): Promise<Connection> {
  const url = `${httpBase.replace(/^http/, "ws")}/app/${DEFAULT_SECRETS.PUSHER_KEY}?protocol=7&client=bench&version=1`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS });
    let subscribed = false;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error("not subscribed within 30 s"));
    }, OPEN_TIMEOUT_MS);
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    const connection: Connection = {
      send: () => {
        throw new Error("the Pusher bench client only listens");
      },
      welcomeSeq: 0,
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
      const at = performance.now();
      const frame = JSON.parse(String(raw)) as { event: string; channel?: string; data?: unknown };
      switch (frame.event) {
        case "pusher:connection_established":
          return socket.send(JSON.stringify({ event: "pusher:subscribe", data: { channel } }));
        case "pusher_internal:subscription_succeeded":
          subscribed = true;
          clearTimeout(timer);
          return resolve(connection);
        case "pusher:ping":
          return socket.send(JSON.stringify({ event: "pusher:pong", data: {} }));
        case "pusher:error":
        case "pusher:subscription_error":
          if (!subscribed) {
            clearTimeout(timer);
            socket.terminate();
            reject(new Error(`${frame.event}: ${JSON.stringify(frame.data)}`));
          }
          return;
        default: {
          if (frame.channel !== channel || typeof frame.data !== "string") return;
          const i = (JSON.parse(frame.data) as { i?: unknown }).i;
          if (typeof i === "number") onEvent(i, at);
        }
      }
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("close", (code) => {
      clearTimeout(timer);
      if (!subscribed) reject(new Error(`closed (${code}) before subscribing`));
    });
  });
}
