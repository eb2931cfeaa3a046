/**
 * SSE delivery latency: N EventSource clients (the `eventsource` package,
 * what a Node or browser client uses) on one room; events published one at a
 * time by an HTTP notify, each after every client has the previous one (or a
 * timeout), so a sample is delivery latency rather than queueing behind a
 * backlog.
 *
 * ours: GET /rooms/:room/events?token=…, POST /rooms/:room/notify.
 * raw Node: the ws baseline process's node:http SSE endpoint (GET /events?room=R),
 * writing one pre-built chunk to every open response. Socket.io has no SSE
 * transport, so it has no column here.
 *
 * Each sample: from just before the notify is handed to the socket layer
 * until the client's `message` event fires for it. Duplicates and order (by
 * the `id:` seq) are checked per client.
 */
import { EventSource } from "eventsource";
import { tokenFor } from "../../test/e2e/clients.ts";
import { DeliveryTracker } from "../lib/delivery.ts";
import { sleepUntil } from "../lib/http.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { systemsIn, targetsFor, type Target } from "../lib/targets.ts";

export interface SseParams {
  clients: number;
  events: number;
  /** An event not delivered to every client within this is counted as lost. */
  eventTimeoutMs: number;
}

type SseSystem = "ours" | "floor" | "ws";

export function sseDelivery(): Scenario<SseParams> {
  return {
    id: "sse",
    title: (p) => `SSE delivery, ${p.clients} EventSource clients, ${p.events} notifies`,
    series: [
      { key: "ours", label: "ours", description: "GET /rooms/:room/events (text/event-stream) held by the room; each event notified over HTTP and stored first" },
      { key: "floor", label: "floor", description: "bench/floor under serve: a text/event-stream held by a minimal object, one write per stream per event after one SQLite insert" },
      { key: "ws", label: "raw ws", description: "raw node:http SSE in the ws baseline's process: one pre-built chunk written to every open response, in memory" },
    ],
    runs: 3,
    params: (mode) => (mode === "quick" ? { clients: 20, events: 5, eventTimeoutMs: 10_000 } : { clients: 200, events: 20, eventTimeoutMs: 10_000 }),

    async warmup(ctx, params) {
      for (const system of systemsIn(ctx, SYSTEMS)) await sseRun(ctx, system, { ...params, events: 2 }, `bench-sse-warm-${system}`);
    },

    async run(ctx, params, runIndex) {
      const systems = systemsIn(ctx, SYSTEMS);
      const order = systems.map((_, k) => systems[(k + runIndex) % systems.length]!);
      const result: Record<string, SeriesRun> = {};
      for (const system of order) {
        if (ctx.signal.aborted) break;
        result[system] = await sseRun(ctx, system, params, `bench-sse-${Date.now()}-${system}`);
      }
      return result;
    },
  };
}

/** ours, the floor (full runs only) and the raw Node server. */
const SYSTEMS: readonly SseSystem[] = ["ours", "floor", "ws"];

async function sseRun(ctx: BenchContext, system: SseSystem, params: SseParams, room: string): Promise<SeriesRun> {
  const token = await tokenFor("bench-sse", { rooms: ["bench-*"] });
  const target: Target = targetsFor(ctx)[system];
  const url = {
    ours: () => `${ctx.url}/rooms/${room}/events?token=${token}`,
    floor: () => `${ctx.floor!.url}/rooms/${room}/events`,
    ws: () => `${ctx.baselines.ws.url}/events?room=${room}`,
  }[system]();
  const sentAt = new Float64Array(params.events).fill(Number.NaN);
  const tracker = new DeliveryTracker(params.clients, params.events, sentAt);
  let errors = 0;
  const settled = await Promise.allSettled(
    Array.from({ length: params.clients }, (_, c) => {
      const onMessage = tracker.handler(c);
      return new Promise<EventSource>((resolve, reject) => {
        const source = new EventSource(url);
        const timer = setTimeout(() => {
          source.close();
          reject(new Error(`${system}: an EventSource did not open within 30 s`));
        }, 30_000);
        source.addEventListener("open", () => {
          clearTimeout(timer);
          resolve(source);
        });
        source.addEventListener("error", () => void errors++);
        source.addEventListener("message", (event) => {
          const at = performance.now();
          const envelope = JSON.parse(event.data) as { seq: number; data: Record<string, unknown> };
          onMessage({ seq: envelope.seq, data: envelope.data }, at);
        });
      });
    }),
  );
  const sources = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    // An open stream is not necessarily in the room yet: wait until the server counts them all.
    const deadline = performance.now() + 30_000;
    while ((await target.held(room)) < params.clients) {
      if (performance.now() > deadline || ctx.signal.aborted) throw new Error(`${system}: the room never held all ${params.clients} streams`);
      await sleepUntil(performance.now() + 5, ctx.signal);
    }
    for (let i = 0; i < params.events && !ctx.signal.aborted; i++) {
      // Waiting for a count: an event one client never gets leaves the later events' counts short, and times out.
      const arrived = tracker.whenDelivered((i + 1) * params.clients, params.eventTimeoutMs, ctx.signal);
      sentAt[i] = performance.now();
      const response = await target.notify(room, "bench.sse", { i });
      if (response.status !== 202) throw new Error(`${system}: notify answered ${response.status}`);
      await arrived;
    }
  } finally {
    for (const source of sources) source.close();
  }
  ctx.debug(`${system} SSE: ${tracker.delivered}/${tracker.expected} delivered, ${errors} stream errors`);
  return tracker.run({ streamErrors: errors });
}
