/**
 * WebSocket fan-out: one room, N subscribed WebSockets (1,000), events
 * published at a steady rate by an HTTP notify (100/s for 20 s, the
 * benchmark issue's size; and 10/s, a load this 2-core machine can carry
 * for every system), on ours, Socket.io and the raw ws server in turn.
 *
 * ours: POST /rooms/:room/notify (NOTIFY_SECRET); every event is stored in
 * the room's SQLite before anyone hears of it, and copied to D1 behind the
 * response. The baselines: POST /notify, broadcast from memory.
 *
 * The publisher is open-loop: event i is sent at t0 + i / rate whether or not
 * earlier notifies have been answered, as independent triggers would be.
 * Each sample is one delivery: from just before event i's notify is handed
 * to the socket layer until one subscriber's frame with it has been read, so
 * a run has N × rate × seconds samples per system. Duplicates (by event
 * index) and order (by seq, per socket) are checked. Each run uses fresh
 * rooms, and the order of the three systems rotates from run to run.
 */
import { DeliveryTracker } from "../lib/delivery.ts";
import { sleepUntil } from "../lib/http.ts";
import { notifyOpenLoop } from "../lib/open-loop.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { distribution } from "../lib/stats.ts";
import { closeAll, cpuFigures, measureCpuOf, openMany, roomStatus, systemsIn, targetsFor, type Target, type TargetKey } from "../lib/targets.ts";

export interface FanoutParams {
  sockets: number;
  /** Events per second. */
  rate: number;
  seconds: number;
  /** After the last notify, how long every socket has to get everything; what is missing then is lost. */
  drainTimeoutMs: number;
  /** WebSocket handshakes in flight while opening the sockets. */
  openConcurrency: number;
  /** 1: ours' sockets go straight to the workerd that runs the rooms, not through wrangler dev's proxy (see lib/direct.ts). */
  direct: number;
  /** 1: ours' sockets connect with `batch=1` and take coalesced frames (SPEC §4); the baselines are unchanged. */
  batch: number;
}

const SYSTEMS: TargetKey[] = ["ours", "floor", "socketio", "ws"];

export interface FanoutSize {
  sockets: number;
  rate: number;
  /** Measured runs in a full bench (the 100/s size costs the most time). */
  runs: number;
  /** Whether `bench:quick` runs it (at 50 sockets, 20/s for 1 s). */
  inQuick: boolean;
  /** A capacity test (see Scenario.saturates): 100 events/s to 1,000 sockets is more than 2 shared cores carry for any of the three. */
  saturates: boolean;
  /** ours' sockets opt in to coalesced frames (`batch=1`): the scenario's id ends in `-batch`. */
  batch?: boolean;
}

export function websocketFanout({ sockets, rate, runs, inQuick, saturates, batch = false }: FanoutSize): Scenario<FanoutParams> {
  const batchParam = batch ? 1 : 0;
  return {
    id: `ws-fanout-${sockets}x${rate}${batch ? "-batch" : ""}`,
    title: (p) => `WebSocket fan-out, ${p.sockets.toLocaleString("en-US")} sockets, ${p.rate} events/s for ${p.seconds} s${p.batch ? ", batch=1" : ""}${p.direct ? ", no dev proxy" : ""}`,
    series: [
      {
        key: "ours",
        label: "ours",
        description: `hibernatable WebSockets in one room${batch ? " that opted in to coalesced frames (batch=1)" : ""}; each event notified over HTTP, stored in the room's SQLite, fanned out, then copied to D1`,
      },
      { key: "floor", label: "floor", description: "bench/floor under serve: hibernatable WebSockets in a minimal object; one SQLite insert and one send per socket per event" },
      { key: "socketio", label: "Socket.io 4", description: "Socket.io 4.8 room broadcast (io.to(room).emit) from an HTTP notify, in memory" },
      { key: "ws", label: "raw ws", description: "ws 8 broadcast of one pre-serialized frame from an HTTP notify, in memory" },
    ],
    figures: [
      { key: "sentPerSecond", label: "events notified/s (achieved)", unit: "/s", better: "higher" },
      { key: "notifyP50Ms", label: "notify round trip p50", unit: "ms", better: "lower" },
      { key: "eventsPerD1RoundTrip", label: "events per D1 round trip", unit: "ratio", better: "higher" },
      { key: "deliveryServerUs", label: "server CPU per delivery", unit: "µs", better: "lower" },
      { key: "deliveryToolingUs", label: "dev tooling CPU per delivery", unit: "µs", better: "lower" },
      { key: "deliveryClientUs", label: "bench client CPU per delivery", unit: "µs", better: "lower" },
    ],
    runs,
    saturates,
    deliveredLabel: (p) => `delivered within ${p.drainTimeoutMs / 1000} s of the last notify`,
    params: (mode) =>
      mode === "quick"
        ? inQuick
          ? { sockets: Math.min(sockets, 50), rate: 20, seconds: 1, drainTimeoutMs: 10_000, openConcurrency: 25, direct: 0, batch: batchParam }
          : undefined
        : { sockets, rate, seconds: 20, drainTimeoutMs: 15_000, openConcurrency: 50, direct: 0, batch: batchParam },

    async warmup(ctx, params) {
      const targets = targetsFor(ctx, { direct: params.direct === 1, batch: params.batch === 1 });
      const small = { ...params, sockets: Math.min(params.sockets, 100), rate: Math.min(params.rate, 20), seconds: 1 };
      for (const key of systemsIn(ctx, SYSTEMS)) await fanoutRun(ctx, targets[key], small, `bench-fanout-warm-${key}`);
    },

    async run(ctx, params, runIndex) {
      const targets = targetsFor(ctx, { direct: params.direct === 1, batch: params.batch === 1 });
      const result: Record<string, SeriesRun> = {};
      const systems = systemsIn(ctx, SYSTEMS);
      for (let k = 0; k < systems.length && !ctx.signal.aborted; k++) {
        const key = systems[(k + runIndex) % systems.length]!;
        result[key] = await fanoutRun(ctx, targets[key], params, `bench-fanout-${params.sockets}-${Date.now()}-${key}`);
      }
      return result;
    },
  };
}

async function fanoutRun(ctx: BenchContext, target: Target, params: FanoutParams, room: string): Promise<SeriesRun> {
  const events = Math.round(params.rate * params.seconds);
  const sentAt = new Float64Array(events).fill(Number.NaN);
  const tracker = new DeliveryTracker(params.sockets, events, sentAt);
  const opened = await openMany(params.sockets, params.openConcurrency, (i) => target.open(room, "bench-fanout", { onMessage: tracker.handler(i) }));
  if (opened.errors.length > 0) {
    await closeAll(opened.connections);
    throw new Error(`${target.key}: ${opened.errors.length} of ${params.sockets} sockets failed to open: ${opened.errors[0]}`);
  }
  const held = await target.held(room);
  if (held < params.sockets) throw new Error(`${target.key}: the room holds ${held} of ${params.sockets} sockets after every welcome`);
  const d1Before = target.key === "ours" ? (await roomStatus(ctx, room)).outbox : undefined;

  const cpu = measureCpuOf(target);
  const loop = await notifyOpenLoop(target, room, events, params.rate, sentAt, ctx.signal);
  const { rtts, t0, lastSent } = loop;
  // Bounded: deliveries (and notify answers) have drainTimeoutMs after the last notify left; later ones count as lost.
  const deadline = lastSent + params.drainTimeoutMs;
  const complete = await tracker.whenComplete(params.drainTimeoutMs, ctx.signal);
  await Promise.race([loop.answered, sleepUntil(deadline, ctx.signal)]);
  const drainedAt = performance.now();
  const used = cpu();
  await closeAll(opened.connections);

  const extra: Record<string, number> = {
    ...cpuFigures(used, tracker.delivered, "delivery"),
    sentPerSecond: events > 1 ? ((events - 1) * 1000) / (lastSent - t0) : events,
    notifyP50Ms: distribution(rtts).p50,
    notifyP99Ms: distribution(rtts).p99,
    notifyFailures: loop.failures,
    drainMs: drainedAt - lastSent,
  };
  if (d1Before) Object.assign(extra, await d1Figures(ctx, room, d1Before));
  ctx.debug(
    `${target.key} fan-out: ${tracker.delivered}/${tracker.expected} delivered${complete ? "" : " (timed out)"}, p50 ${Math.round(distribution(tracker.latenciesMs).p50)} ms, p99 ${Math.round(distribution(tracker.latenciesMs).p99)} ms, notify failures ${loop.failures}`,
  );
  return tracker.run(extra);
}

/** Waits (up to 15 s) until D1 holds every event of the room, then reads how many D1 round trips that took. */
export async function d1Figures(
  ctx: BenchContext,
  room: string,
  before: { d1Batches?: number; d1Statements?: number; d1Events?: number },
): Promise<Record<string, number>> {
  const deadline = performance.now() + 15_000;
  let status = await roomStatus(ctx, room);
  while (status.outbox.flushedSeq < status.seq && performance.now() < deadline && !ctx.signal.aborted) {
    await sleepUntil(performance.now() + 20, ctx.signal);
    status = await roomStatus(ctx, room);
  }
  const after = status.outbox;
  if (after.d1Batches === undefined || before.d1Batches === undefined) return {};
  const batches = after.d1Batches - before.d1Batches;
  const events = (after.d1Events ?? 0) - (before.d1Events ?? 0);
  const statements = (after.d1Statements ?? 0) - (before.d1Statements ?? 0);
  return {
    d1RoundTrips: batches,
    d1Statements: statements,
    eventsPerD1RoundTrip: batches > 0 ? events / batches : Number.NaN,
    d1StatementsPerEvent: events > 0 ? statements / events : Number.NaN,
  };
}
