/**
 * What a benchmark scenario is, for the one runner (bench/run.ts).
 *
 * A scenario measures one thing (long-poll wake latency, WebSocket fan-out,
 * throughput …) for several *series*: ours, and what a user would pick
 * instead (a simulated polling loop, Socket.io, a raw ws server …), in the
 * same run against the same server. The runner calls `run` several times and
 * reports every figure as the median of those runs with their spread; the
 * first series is ours, and every other one is shown beside it with the
 * ratio ours/other.
 */
import type { Baseline } from "./baseline.ts";

export type Mode = "full" | "quick";

/** What runs ours: `npm run serve` (the default), or wrangler dev (`--target dev`, for information). */
export type ServerKind = "serve" | "dev";

/** A server the runner started and stops (ours under serve or wrangler dev, or the floor). */
export interface BenchServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Its state directory (D1, objects), removed when the bench ends. */
  persistDir: string;
  stop(): Promise<void>;
}

export interface BenchContext {
  server: BenchServer;
  /** What runs ours. */
  serverKind: ServerKind;
  /** Under serve: the workerd that runs ours (CPU and memory figures). Under wrangler dev: found from its processes (lib/direct.ts). */
  serverPid?: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The floor (bench/floor): a minimal Worker + Durable Object under serve, beside ours in the same run (full runs only). */
  floor?: { url: string; pid: number };
  notifySecret: string;
  jwtSecret: string;
  mode: Mode;
  /** Progress lines (stderr, so stdout stays the table). */
  log(message: string): void;
  /** Per-round detail, shown with --verbose. */
  debug(message: string): void;
  /** Aborted when the bench's overall time limit is reached. */
  signal: AbortSignal;
  /** The baseline servers, each in its own process, started by the runner for the whole bench. */
  baselines: { socketio: Baseline; ws: Baseline };
  /** The workerd that runs the rooms, without wrangler dev's proxy in front (undefined if not found): see lib/direct.ts. */
  directUrl?: string;
  /** Open files each process may have (the soft limit every server process inherited). */
  openFiles: number;
}

/** What one series produced in one run. */
export interface SeriesRun {
  /** One sample per delivery, in milliseconds (latency scenarios). */
  latenciesMs: number[];
  /** Deliveries that should have happened, and those that did (each counted once). */
  expected: number;
  delivered: number;
  /** Deliveries received more than once (should be 0). */
  duplicates: number;
  /** Deliveries that arrived after a later seq on the same connection (should be 0). */
  outOfOrder?: number;
  /** Side figures worth recording (request round trips, request rates …), one value per run. */
  extra?: Record<string, number>;
}

export interface SeriesInfo {
  key: string;
  label: string;
  /** One line: what this series is, for the docs and the JSON. */
  description: string;
}

/** A side figure (a key of `SeriesRun.extra`) shown as a row of the table. */
export interface Figure {
  key: string;
  /** The row's label, e.g. "accepted events/s". */
  label: string;
  unit: "ms" | "µs" | "/s" | "MiB" | "KiB" | "count" | "ratio";
  /** Which way is better, for the reader of a ratio. */
  better: "lower" | "higher";
}

export interface Scenario<P extends object = object> {
  id: string;
  /** The table's scenario column, e.g. "long-poll wake, 200 held polls". */
  title(params: P): string;
  /** series[0] is ours. */
  series: SeriesInfo[];
  /** Rows beyond the latency ones, from each series' `extra` (absent values show as "–"). */
  figures?: Figure[];
  /** false: the scenario measures no latency (no p50/p99/max rows). Default true. */
  latency?: boolean;
  /**
   * A capacity test at its full size: it may offer more load than the
   * machine carries, and deliveries still missing at its deadline are shown
   * as not delivered, a figure, without failing the run (duplicates and
   * disorder still do). Quick mode checks 100 % everywhere.
   */
  saturates?: boolean;
  /** The delivered row's label, e.g. "delivered within 15 s of the last notify" (default "delivered"). */
  deliveredLabel?(params: P): string;
  /** Measured runs in a full bench unless --runs says otherwise (default 5; quick: 1). */
  runs?: number;
  /** Sizes for a mode (every count and duration is bounded here); undefined: not run in that mode. */
  params(mode: Mode): P | undefined;
  /** Runs before the measured runs (cold object, JIT); its figures are discarded. */
  warmup?(ctx: BenchContext, params: P): Promise<void>;
  run(ctx: BenchContext, params: P, runIndex: number): Promise<Record<string, SeriesRun>>;
}
