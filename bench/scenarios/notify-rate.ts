/**
 * Notify rate: how many HTTP notifies one room takes per second, with no
 * subscriber, from `concurrency` requests kept in flight for `seconds`, on
 * ours, Socket.io and the raw ws server in turn. This is the first step of
 * every fan-out event, alone: on ours, the Worker's secret check, the call
 * to the room, the durable write and the answer; on the baselines, a JSON
 * body parsed and an in-memory broadcast to nobody.
 *
 * Latency rows: each notify's round trip. Side figures: the rate, and CPU
 * time per notify of the server process (and, for ours, of wrangler dev's
 * tooling: its proxy workerd and wrangler's Node process, which logs every
 * request). `--param direct=1` sends ours' notifies to the rooms' workerd
 * without the proxy (lib/direct.ts).
 *
 * Batch publish (`notify-batch`): the same, with ours sending 100 events per
 * request (`{"events":[…]}`, SPEC §5: one RPC, one SQLite transaction, every
 * event durable before the 202) and the baselines one per request, as they
 * have no batch form: what a trigger with many events for one room gets
 * from each. Its rows count events, not requests.
 */
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { cpuFigures, measureCpuOf, systemsIn, targetsFor, type Target, type TargetKey } from "../lib/targets.ts";

export interface NotifyRateParams {
  /** Events per request for ours (1: the single form; the baselines always send one). */
  batch: number;
  concurrency: number;
  seconds: number;
  direct: number;
}

const SYSTEMS: TargetKey[] = ["ours", "floor", "socketio", "ws"];

/** `batch` > 1: the batch publish scenario (`notify-batch`), ours sending that many events per request. */
export function notifyRate(batch = 1): Scenario<NotifyRateParams> {
  const many = batch > 1;
  return {
    id: many ? "notify-batch" : "notify-rate",
    title: (p) =>
      many
        ? `batch publish into one room, ${p.batch} events per request, ${p.concurrency} requests in flight for ${p.seconds} s${p.direct ? ", no dev proxy" : ""}`
        : `notify rate, no subscribers, ${p.concurrency} requests in flight for ${p.seconds} s${p.direct ? ", no dev proxy" : ""}`,
    series: [
      many
        ? { key: "ours", label: "ours", description: "POST /rooms/:room/notify with {events:[…]}: secret check, one RPC, one SQLite transaction for the batch, answer once durable" }
        : { key: "ours", label: "ours", description: "POST /rooms/:room/notify: secret check, RPC to the room, durable write in its SQLite, answer" },
      { key: "floor", label: "floor", description: "bench/floor under serve: POST /rooms/:room/notify to a minimal object, one SQLite insert per event, answer" + (many ? " (100 events per request, one commit)" : "") },
      { key: "socketio", label: "Socket.io 4", description: "POST /notify to the Socket.io baseline: io.to(room).emit to an empty room" },
      { key: "ws", label: "raw ws", description: "POST /notify to the ws baseline: an in-memory publish to an empty room" },
    ],
    figures: [
      { key: "notifiesPerSecond", label: many ? "events accepted/s" : "notifies/s", unit: "/s", better: "higher" },
      { key: "notifyServerUs", label: many ? "server CPU per event" : "server CPU per notify", unit: "µs", better: "lower" },
      { key: "notifyToolingUs", label: many ? "dev tooling CPU per event" : "dev tooling CPU per notify", unit: "µs", better: "lower" },
    ],
    deliveredLabel: () => (many ? "events answered 202" : "notifies answered 202"),
    runs: 3,
    params: (mode) => (mode === "quick" ? { batch, concurrency: many ? 2 : 5, seconds: 1, direct: 0 } : { batch, concurrency: 10, seconds: 5, direct: 0 }),

    async warmup(ctx, params) {
      const targets = targetsFor(ctx, { direct: params.direct === 1 });
      for (const key of systemsIn(ctx, SYSTEMS)) await notifyRun(ctx, targets[key], { ...params, seconds: 1 }, `bench-notify-warm-${key}`);
    },

    async run(ctx, params, runIndex) {
      const targets = targetsFor(ctx, { direct: params.direct === 1 });
      const result: Record<string, SeriesRun> = {};
      const systems = systemsIn(ctx, SYSTEMS);
      for (let k = 0; k < systems.length && !ctx.signal.aborted; k++) {
        const key = systems[(k + runIndex) % systems.length]!;
        result[key] = await notifyRun(ctx, targets[key], params, `bench-notify-${Date.now()}-${key}`);
      }
      return result;
    },
  };
}

async function notifyRun(ctx: BenchContext, target: Target, params: NotifyRateParams, room: string): Promise<SeriesRun> {
  await target.held(room); // the room exists (ours: its object is awake) before the clock starts
  const perRequest = target.notifyMany && params.batch > 1 ? params.batch : 1;
  const rtts: number[] = [];
  let sent = 0;
  let accepted = 0;
  const cpu = measureCpuOf(target);
  const t0 = performance.now();
  const stopAt = t0 + params.seconds * 1000;
  const worker = async () => {
    while (performance.now() < stopAt && !ctx.signal.aborted) {
      const first = sent;
      sent += perRequest;
      try {
        const response =
          perRequest > 1
            ? await target.notifyMany!(room, Array.from({ length: perRequest }, (_, k) => ({ event: "bench.notify", data: { i: first + k } })))
            : await target.notify(room, "bench.notify", { i: first });
        rtts.push(response.endedAt - response.sentAt);
        if (response.status === 202) accepted += perRequest;
      } catch {
        // counted as not answered 202
      }
    }
  };
  await Promise.all(Array.from({ length: params.concurrency }, worker));
  const elapsed = performance.now() - t0;
  const used = cpu();
  ctx.debug(`${target.key} notify rate: ${accepted}/${sent} in ${Math.round(elapsed)} ms`);
  return {
    latenciesMs: rtts,
    expected: sent,
    delivered: accepted,
    duplicates: 0,
    extra: { notifiesPerSecond: (accepted * 1000) / elapsed, ...cpuFigures(used, accepted, "notify") },
  };
}
