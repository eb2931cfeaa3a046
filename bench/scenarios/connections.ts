/**
 * Connections: how many concurrent WebSockets one room holds, and the
 * server's memory per connection. On ours, Socket.io and the raw ws server
 * in turn, the bench opens sockets into one fresh room in steps (1,000,
 * 2,000, 5,000, 10,000), at most `openConcurrency` handshakes at a time,
 * and stops stepping at the first socket that fails to open. At each step it
 * waits until the server counts every socket, then reads the resident
 * memory (RSS, /proc) of the process that holds the room: for ours, the
 * workerd that runs the Worker and its objects; for a baseline, its Node
 * process. At the top, one event is notified and must reach every socket
 * held (its delivery latencies are the latency rows).
 *
 * ours is reached without wrangler dev's proxy by default (`direct`, see
 * lib/direct.ts): the proxy is dev tooling, and it would need file
 * descriptors for both sides of every WebSocket.
 *
 * Open files: the workerd that runs the rooms holds two file descriptors per
 * WebSocket (the accepted TCP socket and a duplicate of it), a Node server
 * one, and so does the client. A process may have `ctx.openFiles` (the
 * runner raises the limit when it may); steps beyond what fits are not
 * attempted, and the table shows how many sockets were held. On a machine
 * with 20,000 open files per process, ours stops at 9,700.
 *
 * Memory per connection: (RSS at the top − RSS before the first socket) /
 * sockets held. RSS also counts memory a runtime keeps after garbage is
 * collected, so it is an upper bound of what the sockets need.
 */
import { sleepUntil } from "../lib/http.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { closeAll, openMany, systemsIn, targetsFor, type Connection, type Target, type TargetKey } from "../lib/targets.ts";

export interface ConnectionsParams {
  /** The first step; the next ones are 2×, 5×, 10× … up to `max`. */
  first: number;
  max: number;
  openConcurrency: number;
  /** 1: ours without wrangler dev's proxy (the default; see above). */
  direct: number;
}

const SYSTEMS: TargetKey[] = ["ours", "floor", "socketio", "ws"];

export function connections(): Scenario<ConnectionsParams> {
  return {
    id: "connections",
    title: (p) => `connections, one room, stepping up to ${p.max.toLocaleString("en-US")} WebSockets${p.direct ? "" : " through the dev proxy"}`,
    series: [
      { key: "ours", label: "ours", description: "hibernatable WebSockets held by one room object; memory: RSS of the workerd running the Worker and objects" },
      { key: "floor", label: "floor", description: "bench/floor under serve: hibernatable WebSockets accepted by a minimal object; memory: RSS of its workerd" },
      { key: "socketio", label: "Socket.io 4", description: "Socket.io 4.8 sockets joined to one room; memory: RSS of its Node process" },
      { key: "ws", label: "raw ws", description: "ws 8 sockets in one in-memory room; memory: RSS of its Node process" },
    ],
    figures: [
      { key: "held", label: "sockets held", unit: "count", better: "higher" },
      { key: "serverMiB", label: "server memory (RSS) at the top", unit: "MiB", better: "lower" },
      { key: "kibPerConnection", label: "memory per connection", unit: "KiB", better: "lower" },
      { key: "openedPerSecond", label: "sockets opened/s", unit: "/s", better: "higher" },
    ],
    runs: 1,
    params: (mode) =>
      mode === "quick" ? { first: 100, max: 200, openConcurrency: 50, direct: 1 } : { first: 1000, max: 10_000, openConcurrency: 100, direct: 1 },

    async run(ctx, params, runIndex) {
      const targets = targetsFor(ctx, { direct: params.direct === 1 && ctx.directUrl !== undefined });
      const result: Record<string, SeriesRun> = {};
      const systems = systemsIn(ctx, SYSTEMS);
      for (let k = 0; k < systems.length && !ctx.signal.aborted; k++) {
        const key = systems[(k + runIndex) % systems.length]!;
        result[key] = await stepUp(ctx, targets[key], params, `bench-connections-${Date.now()}-${key}`);
      }
      return result;
    },
  };
}

/** 1, 2, 5, 10, 20, 50 … × first, up to max (max itself always included). */
export function steps(first: number, max: number): number[] {
  const out: number[] = [];
  for (let decade = first; decade <= max; decade *= 10) {
    for (const m of [1, 2, 5]) if (decade * m <= max) out.push(decade * m);
  }
  if (out[out.length - 1] !== max) out.push(max);
  return out;
}

/** File descriptors kept free for everything else the process does. */
const SPARE_FILES = 500;

/** The most sockets a target's server (and the bench's client) can hold under the open-file limit, in hundreds. */
function fitting(ctx: BenchContext, key: TargetKey): number {
  const perSocket = key === "ours" || key === "floor" ? 2 : 1; // workerd
  return Math.floor((ctx.openFiles - SPARE_FILES) / perSocket / 100) * 100;
}

async function stepUp(ctx: BenchContext, target: Target, params: ConnectionsParams, room: string): Promise<SeriesRun> {
  const max = Math.min(params.max, fitting(ctx, target.key));
  if (max < params.max) ctx.log(`${target.key} connections: at most ${max} sockets fit under the open-file limit (${ctx.openFiles})`);
  await target.held(room); // creates the room (ours: wakes its object) before the memory baseline
  const before = target.memory();
  const open: Connection[] = [];
  const arrivals = new Map<number, number>();
  let duplicates = 0;
  let sentAt = Number.NaN;
  let firstError: string | undefined;
  let openMs = 0;
  let top = before;
  for (const step of steps(Math.min(params.first, max), max)) {
    if (ctx.signal.aborted) break;
    const t = performance.now();
    const batch = await openMany(step - open.length, params.openConcurrency, (i) => {
      const index = open.length + i;
      return target.open(room, "bench-connections", {
        onMessage(_delivery, at) {
          if (arrivals.has(index)) duplicates++;
          else arrivals.set(index, at - sentAt);
        },
      });
    }, true);
    openMs += performance.now() - t;
    open.push(...batch.connections);
    if (batch.errors.length > 0) firstError = batch.errors[0];
    const held = await waitHeld(ctx, target, room, open.length).catch((error: Error) => {
      firstError ??= `the server stopped answering: ${error.message}`;
      return 0;
    });
    top = target.memory();
    ctx.debug(`${target.key} connections: ${open.length} open, ${held} held, server ${top?.serverMiB} MiB${top?.proxyMiB ? `, dev proxy ${top.proxyMiB} MiB` : ""}${firstError ? `; stopped: ${firstError}` : ""}`);
    if (firstError) break;
  }
  const live = open.filter((c) => c.isOpen);
  sentAt = performance.now();
  const response = await target.notify(room, "bench.connections", { i: 0 }).catch(() => undefined);
  if (response?.status !== 202) ctx.log(`${target.key} connections: the notify to the ${live.length} sockets held failed (${response?.status ?? "no answer"})`);
  const deadline = performance.now() + (response?.status === 202 ? 30_000 : 0);
  while (arrivals.size < live.length && performance.now() < deadline && !ctx.signal.aborted) await sleepUntil(performance.now() + 20, ctx.signal);
  await closeAll(open);

  const serverMiB = top?.serverMiB ?? Number.NaN;
  const extra: Record<string, number> = {
    held: live.length,
    serverMiB,
    serverMiBBefore: before?.serverMiB ?? Number.NaN,
    kibPerConnection: live.length > 0 ? ((serverMiB - (before?.serverMiB ?? Number.NaN)) * 1024) / live.length : Number.NaN,
    openedPerSecond: openMs > 0 ? (open.length * 1000) / openMs : Number.NaN,
    failedAt: firstError ? open.length + 1 : 0,
  };
  if (top?.proxyMiB !== undefined && params.direct !== 1) extra.devProxyMiB = top.proxyMiB;
  if (firstError) ctx.log(`${target.key} connections: stopped at ${open.length} open: ${firstError}`);
  return { latenciesMs: [...arrivals.values()], expected: live.length, delivered: arrivals.size, duplicates, extra };
}

/** Waits (up to 30 s) until the server counts `count` sockets in the room; returns its last count. */
async function waitHeld(ctx: BenchContext, target: Target, room: string, count: number): Promise<number> {
  const deadline = performance.now() + 30_000;
  let held = await target.held(room);
  while (held < count && performance.now() < deadline && !ctx.signal.aborted) {
    await sleepUntil(performance.now() + 50, ctx.signal);
    held = await target.held(room);
  }
  return held;
}
