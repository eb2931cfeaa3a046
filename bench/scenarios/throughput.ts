/**
 * Throughput: one publisher pipelining user messages over one WebSocket into
 * one room while S subscribers (50) receive them, on ours, Socket.io and the
 * raw ws server in turn.
 *
 * ours: `{"type":"send","data":{…},"clientId":"c-N"}` frames; each `ack` means
 * the event is durable in the room's SQLite. Socket.io: `emit("send", data,
 * clientId, ack)`; raw ws: the same frame as ours; both acknowledge from
 * memory. The publisher keeps `window` sends unacknowledged at any time
 * (pipelining, not one at a time) until `events` have been sent or `seconds`
 * have passed, then waits for the acks of what it sent.
 *
 * Figures per run:
 *   - accepted events/s: events / (last ack − first send);
 *   - delivered events/s: events / (the moment every subscriber has every event − first send);
 *   - ours only, persisted events/s: events / (the moment D1 holds every event − first send),
 *     read from GET /rooms/:room/status (outbox.flushedSeq) every 25 ms from the first send;
 *   - ours only, events per D1 round trip and D1 statements per event, from the
 *     status route's D1 counters.
 * Every subscriber must get every event once, in order.
 *
 * The bench server runs with the per-user send rate limit lifted
 * (SEND_RATE_PER_SECOND, set by bench/run.ts): one publisher is one user.
 */
import { DeliveryTracker } from "../lib/delivery.ts";
import { sleepUntil } from "../lib/http.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { distribution } from "../lib/stats.ts";
import { closeAll, cpuFigures, measureCpuOf, openMany, roomStatus, targetsFor, type Target, type TargetKey } from "../lib/targets.ts";
import { d1Figures } from "./websocket-fanout.ts";

export interface ThroughputParams {
  subscribers: number;
  /** The most events a run sends… */
  events: number;
  /** …and for at most this long (then the acks and deliveries of what was sent are awaited). */
  seconds: number;
  /** Sends in flight (sent, not yet acknowledged). */
  window: number;
  /** A run that has not finished (acks, deliveries) within this is cut short; what is missing is lost. */
  timeoutMs: number;
  /** 1: ours' sockets go straight to the workerd that runs the rooms, not through wrangler dev's proxy (see lib/direct.ts). */
  direct: number;
  /** 1 (default): ours' sockets take coalesced frames (`batch=1`), as the client library does; 0: one frame per event and ack. */
  batch: number;
}

const SYSTEMS: TargetKey[] = ["ours", "socketio", "ws"];

export function throughput(): Scenario<ThroughputParams> {
  return {
    id: "throughput",
    title: (p) => `throughput, 1 publisher pipelining sends for up to ${p.seconds} s, ${p.subscribers} subscribers${p.batch ? ", batch=1" : ""}${p.direct ? ", no dev proxy" : ""}`,
    series: [
      { key: "ours", label: "ours", description: "WebSocket send frames with clientIds, each acknowledged once durable in the room's SQLite, copied to D1 in batches" },
      { key: "socketio", label: "Socket.io 4", description: "socket.emit('send', data, clientId, ack) broadcast to the room in memory" },
      { key: "ws", label: "raw ws", description: "the same send frame as ours, acknowledged and broadcast from memory" },
    ],
    latency: false,
    figures: [
      { key: "acceptedPerSecond", label: "accepted events/s", unit: "/s", better: "higher" },
      { key: "deliveredPerSecond", label: "delivered events/s (to each subscriber)", unit: "/s", better: "higher" },
      { key: "persistedPerSecond", label: "persisted events/s (in D1)", unit: "/s", better: "higher" },
      { key: "ackP50Ms", label: "ack p50 (window in flight)", unit: "ms", better: "lower" },
      { key: "eventsPerD1RoundTrip", label: "events per D1 round trip", unit: "ratio", better: "higher" },
      { key: "d1StatementsPerEvent", label: "D1 statements per event", unit: "ratio", better: "lower" },
      { key: "eventServerUs", label: "server CPU per event (with its fan-out)", unit: "µs", better: "lower" },
      { key: "eventToolingUs", label: "dev tooling CPU per event", unit: "µs", better: "lower" },
    ],
    runs: 3,
    params: (mode) =>
      mode === "quick"
        ? { subscribers: 5, events: 500, seconds: 5, window: 100, timeoutMs: 20_000, direct: 0, batch: 1 }
        : { subscribers: 50, events: 50_000, seconds: 10, window: 500, timeoutMs: 60_000, direct: 0, batch: 1 },

    async warmup(ctx, params) {
      const targets = targetsFor(ctx, { direct: params.direct === 1, batch: params.batch === 1 });
      for (const key of SYSTEMS) await throughputRun(ctx, targets[key], { ...params, seconds: Math.min(params.seconds, 2) }, `bench-throughput-warm-${key}`);
    },

    async run(ctx, params, runIndex) {
      const targets = targetsFor(ctx, { direct: params.direct === 1, batch: params.batch === 1 });
      const result: Record<string, SeriesRun> = {};
      for (let k = 0; k < SYSTEMS.length && !ctx.signal.aborted; k++) {
        const key = SYSTEMS[(k + runIndex) % SYSTEMS.length]!;
        result[key] = await throughputRun(ctx, targets[key], params, `bench-throughput-${Date.now()}-${key}`);
      }
      return result;
    },
  };
}

async function throughputRun(ctx: BenchContext, target: Target, params: ThroughputParams, room: string): Promise<SeriesRun> {
  const sentAt = new Float64Array(params.events).fill(Number.NaN);
  const tracker = new DeliveryTracker(params.subscribers, params.events, sentAt);
  const opened = await openMany(params.subscribers, 25, (i) => target.open(room, "bench-subscriber", { onMessage: tracker.handler(i) }));
  if (opened.errors.length > 0) {
    await closeAll(opened.connections);
    throw new Error(`${target.key}: ${opened.errors.length} of ${params.subscribers} subscribers failed to open: ${opened.errors[0]}`);
  }
  const d1Before = target.key === "ours" ? (await roomStatus(ctx, room)).outbox : undefined;

  let sent = 0;
  let acked = 0;
  let errors = 0;
  let lastAckAt = 0;
  const ackMs: number[] = [];
  let stopAt = Infinity;
  let allAcked!: () => void;
  const acks = new Promise<void>((resolve) => (allAcked = resolve));
  /** Every send answered and nothing more will be sent: the events cap or the time cap reached. */
  const answered = () => acked + errors >= sent && (sent >= params.events || performance.now() >= stopAt);
  const publisher = await target.open(room, "bench-publisher", {
    onAck(ack, at) {
      const i = Number(ack.clientId?.slice(2));
      if (Number.isInteger(i) && i >= 0 && i < params.events) ackMs.push(at - sentAt[i]!);
      lastAckAt = at;
      acked++;
      sendNext();
      if (answered()) allAcked();
    },
    onError(message) {
      errors++;
      ctx.debug(`${target.key} throughput: error frame ${message.slice(0, 200)}`);
      sendNext();
      if (answered()) allAcked();
    },
  });
  const sendNext = () => {
    if (sent >= params.events || !publisher.isOpen || performance.now() >= stopAt) return;
    const i = sent++;
    sentAt[i] = performance.now();
    publisher.send({ i, text: "throughput" }, `c-${i}`);
  };

  const cpu = measureCpuOf(target);
  const t0 = performance.now();
  stopAt = t0 + params.seconds * 1000;
  // Watched from the start: D1 may catch up before the last subscriber has everything.
  const persistedAt = d1Before ? whenPersisted(ctx, room, () => (answered() ? acked : Infinity), t0 + params.timeoutMs) : undefined;
  for (let k = 0; k < params.window; k++) sendNext();
  const cutoff = new Promise<void>((resolve) => setTimeout(resolve, params.timeoutMs).unref());
  await Promise.race([acks, cutoff]);
  tracker.sentOnly(sent);
  const complete = await tracker.whenComplete(Math.max(1, params.timeoutMs - (performance.now() - t0)), ctx.signal);
  const deliveredAt = performance.now();
  const used = cpu();

  const extra: Record<string, number> = {
    ...cpuFigures(used, acked, "event"),
    acceptedPerSecond: acked > 0 ? (acked * 1000) / (lastAckAt - t0) : 0,
    deliveredPerSecond: complete ? (sent * 1000) / (deliveredAt - t0) : Number.NaN,
    ackP50Ms: distribution(ackMs).p50,
    ackP99Ms: distribution(ackMs).p99,
    errors,
  };
  if (d1Before) {
    const at = await persistedAt;
    if (at !== undefined) extra.persistedPerSecond = (acked * 1000) / (at - t0);
    Object.assign(extra, await d1Figures(ctx, room, d1Before));
  }
  publisher.close();
  await closeAll([publisher, ...opened.connections]);
  ctx.debug(
    `${target.key} throughput: ${acked} acked, ${errors} errors, accepted ${Math.round(extra.acceptedPerSecond!)}/s, delivered ${tracker.delivered}/${tracker.expected} (${Math.round(extra.deliveredPerSecond!)}/s), persisted ${Math.round(extra.persistedPerSecond ?? Number.NaN)}/s`,
  );
  return tracker.run(extra, []);
}

/**
 * performance.now() when D1 holds the room's first `events()` seqs (status
 * polled every 25 ms; `events()` is Infinity until the last ack is in), or
 * undefined at the deadline.
 */
async function whenPersisted(ctx: BenchContext, room: string, events: () => number, deadline: number): Promise<number | undefined> {
  while (performance.now() < deadline && !ctx.signal.aborted) {
    const status = await roomStatus(ctx, room);
    if (status.outbox.flushedSeq >= events()) return performance.now();
    await sleepUntil(performance.now() + 25, ctx.signal);
  }
  return undefined;
}
