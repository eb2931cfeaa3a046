/**
 * `npm run bench` / `npm run bench:quick`: the one benchmark runner.
 *
 * Starts the service the way `npm run serve` does (the deployable bundle on
 * workerd, no dev tooling; local D1 and objects in a fresh state directory,
 * migrations applied), the floor (bench/floor: a minimal Worker + Durable
 * Object, served the same way), and the two baselines (Socket.io 4 and a raw
 * `ws` server, bench/baselines/, each in its own Node process); runs every
 * scenario in bench/scenarios (a discarded warm-up, then several measured
 * runs) against ours, the floor and the baselines; prints one table of
 * medians with their min–max spread and the ratios ours / other; and writes
 * bench/results/latest.json and the chart docs/performance-latency.svg.
 *
 *   --target dev   measure ours under wrangler dev instead (what `npm start`
 *                  runs), for information: its figures are the dev tooling's
 *                  as much as the service's. The floor stays under serve.
 *   --quick        small sizes, one run, under 60 s; checks only that every
 *                  scenario completed and delivered 100 %; writes no results
 *   --runs N       measured runs per scenario (full: each scenario's own, 1 to 3)
 *   --only ID      run one scenario, or every size of one (long-poll-wake-200, long-poll-wake)
 *   --out PATH     where to write the JSON (default: bench/results/latest.json for
 *                  a full run of every scenario without --param, which also
 *                  redraws docs/performance-latency.svg; else none)
 *   --param K=V    override a scenario parameter (repeatable), e.g. --param polls=1000
 *   --verbose      a progress line per round
 *
 * Exit status: 0 when every delivery arrived exactly once and in order (in a
 * full run, a capacity test's late deliveries are a figure, not a failure),
 * 1 otherwise or on error, 124 when the time limit was hit. Timing never
 * fails the run.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ServeServer } from "../test/e2e/serve-server.ts";
import { DEFAULT_SECRETS, DevServer } from "../test/e2e/server.ts";
import { Baseline } from "./lib/baseline.ts";
import { renderLatencyChart } from "./lib/chart.ts";
import { findDirectUrl, roomsProcess } from "./lib/direct.ts";
import { installExitGuards, stopServer, timeLimit, track, wasInterrupted } from "./lib/lifecycle.ts";
import { machineInfo, measureCpu, type CpuUse } from "./lib/machine.ts";
import { deliveryFailures, renderTable, summarize, type ScenarioSummary } from "./lib/report.ts";
import type { BenchContext, BenchServer, Mode, SeriesRun, ServerKind } from "./lib/scenario.ts";
import { spread } from "./lib/stats.ts";
import { SCENARIOS } from "./scenarios/index.ts";

const ROOT = resolve(import.meta.dirname, "..");

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
    param: { type: "string", multiple: true },
    verbose: { type: "boolean", default: false },
    target: { type: "string", default: "serve" },
  },
});
if (args.target !== "serve" && args.target !== "dev") throw new Error(`--target must be serve or dev, got ${args.target}`);
const serverKind = args.target as ServerKind;
const mode: Mode = args.quick ? "quick" : "full";
const runsOverride = args.runs === undefined ? undefined : Number(args.runs);
if (runsOverride !== undefined && (!Number.isInteger(runsOverride) || runsOverride < 1 || runsOverride > 50)) throw new Error(`--runs must be an integer in 1..50, got ${args.runs}`);
const runsOf = (scenario: { runs?: number }): number => runsOverride ?? (mode === "quick" ? 1 : (scenario.runs ?? 5));
const scenarios = SCENARIOS.filter((s) => (!args.only || s.id === args.only || s.id.startsWith(`${args.only}-`)) && s.params(mode) !== undefined);
if (scenarios.length === 0) throw new Error(`no scenario "${args.only}"; known: ${SCENARIOS.map((s) => s.id).join(", ")}`);
/** latest.json holds the standard full run only: a quick, --only or --param run writes only where --out says. */
const standard = mode === "full" && !args.only && !args.param?.length && serverKind === "serve";
const outPath = args.out ?? (standard ? join(ROOT, "bench/results/latest.json") : undefined);
const chartPath = standard ? join(ROOT, "docs/performance-latency.svg") : undefined;
/**
 * The scenarios, from the moment every server answers. Quick must fit CI's
 * 60 s. Starting the servers is bounded apart (each start gives up after
 * 120 s): it builds two bundles, which on a machine busy with other work
 * took 45 s here, and says nothing about the service. A full run, with the
 * floor beside every scenario and the batch rows, took 28 minutes here.
 */
const TIME_LIMIT_MS = mode === "quick" ? 50_000 : 50 * 60_000;
/**
 * Open files each process may have: the connections scenario holds 10,000
 * sockets in the bench and in the server, and workerd takes two file
 * descriptors per WebSocket. Raised for this process before anything is
 * spawned, so the children inherit it.
 */
const OPEN_FILES = 65_536;

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function main(): Promise<number> {
  installExitGuards();
  const abort = new AbortController();
  let clearLimit = () => {};
  const startedAt = new Date();
  const started = performance.now();
  const machine = machineInfo(ROOT);
  try {
    raiseOpenFileLimit();
    log(`${mode} mode; starting ours under ${serverKind === "serve" ? "npm run serve" : "wrangler dev"} (local D1, migrations applied),${mode === "full" ? " the floor under serve," : ""} and the baselines…`);
    // The bench's user sends (the throughput scenario) are not meant to meet the per-user rate limit.
    const vars = { SEND_RATE_PER_SECOND: "1000000", SEND_BURST: "1000000" };
    const starting = {
      server: (serverKind === "serve" ? ServeServer.start({ vars }) : DevServer.start({ vars })) as Promise<BenchServer & { workerdPid?: number }>,
      floor: mode === "full" ? ServeServer.start({ config: "bench/floor/wrangler.toml" }) : Promise.resolve(undefined),
      socketio: Baseline.start("socketio"),
      ws: Baseline.start("ws"),
    };
    // Whatever started is tracked before a failure of another is thrown, so nothing is left running.
    void starting.server.then(track, () => {});
    void starting.floor.then((floor) => floor && track(floor), () => {});
    void starting.socketio.then((b) => baselines.push(b), () => {});
    void starting.ws.then((b) => baselines.push(b), () => {});
    const [server, floor, socketio, ws] = await Promise.all([starting.server, starting.floor, starting.socketio, starting.ws]);
    log(`ours ready at ${server.url}${floor ? `, the floor at ${floor.url}` : ""}, Socket.io at ${socketio.url}, ws at ${ws.url}, in ${Math.round(performance.now() - started)} ms`);
    clearLimit = timeLimit(TIME_LIMIT_MS, abort);
    const ctx: BenchContext = {
      server,
      serverKind,
      serverPid: server.workerdPid,
      floor: floor && { url: floor.url, pid: floor.workerdPid },
      url: server.url,
      notifySecret: DEFAULT_SECRETS.NOTIFY_SECRET,
      jwtSecret: DEFAULT_SECRETS.JWT_SECRET,
      mode,
      log,
      debug: args.verbose ? log : () => {},
      signal: abort.signal,
      baselines: { socketio, ws },
      directUrl: serverKind === "dev" ? await findDirectUrl() : undefined,
      openFiles: openFileLimit().soft,
    };
    if (serverKind === "dev") log(ctx.directUrl ? `the rooms' workerd answers directly at ${ctx.directUrl}` : "the rooms' workerd was not found behind the proxy: direct runs are unavailable");

    const summaries: ScenarioSummary[] = [];
    const cpu: Record<string, CpuUse[]> = {};
    for (const scenario of scenarios) {
      if (abort.signal.aborted) break;
      const params = withOverrides(scenario.params(mode)!, args.param ?? []);
      const runs = runsOf(scenario);
      // Quick mode asserts no timing, so it spends no time warming up.
      if (mode === "full" && scenario.warmup) {
        log(`${scenario.id}: warm-up`);
        await guarded(ctx, () => scenario.warmup!(ctx, params));
      }
      const results: Record<string, SeriesRun>[] = [];
      cpu[scenario.id] = [];
      for (let run = 0; run < runs && !abort.signal.aborted; run++) {
        const measure = measureCpu();
        const t = performance.now();
        results.push(await guarded(ctx, () => scenario.run(ctx, params, run)));
        const use = measure();
        if (use) cpu[scenario.id]!.push(use);
        log(`${scenario.id}: run ${run + 1}/${runs} in ${((performance.now() - t) / 1000).toFixed(1)} s${use ? ` (cores busy: bench+server ${use.benchCores}, other processes ${use.otherCores})` : ""}`);
      }
      summaries.push(summarize(scenario, params, results, mode));
    }
    const table = renderTable(summaries);
    if (abort.signal.aborted) {
      process.stdout.write(`\n${table}\n\n`);
      log("FAILED: the time limit was reached before every run completed (the table shows what was measured; no results written)");
      return 124;
    }

    process.stdout.write(`\n${table}\n\nours / baseline: below 1 means ours is lower (better for latency, CPU and memory), above 1 higher (better for rates).\n\n`);
    for (const summary of summaries) {
      const use = cpu[summary.id] ?? [];
      if (use.length) {
        const other = spread(use.map((u) => u.otherCores));
        process.stdout.write(`${summary.id}: other processes kept ${other.median.toFixed(2)} of ${machine.cpus} cores busy during the runs (min ${other.min.toFixed(2)}, max ${other.max.toFixed(2)})\n`);
        if (other.max > 0.25) process.stdout.write(`${summary.id}: the machine was not idle; these figures include that noise\n`);
      }
    }

    const failures = deliveryFailures(summaries);
    const durationSeconds = Math.round((performance.now() - started) / 100) / 10;
    const chart = renderLatencyChart(summaries, `npm run bench, ${startedAt.toISOString().slice(0, 10)}: ${machine.cpus} cores (${machine.cpuModel}), npm run serve (workerd ${machine.workerd}) vs the floor, Socket.io 4 and raw ws on Node ${machine.node}; medians of the runs`);
    if (chartPath) {
      writeFileSync(chartPath, chart);
      log(`wrote ${chartPath}`);
    }
    if (outPath) {
      const result = {
        generatedAt: startedAt.toISOString(),
        mode,
        runsPerScenario: Object.fromEntries(summaries.map((s) => [s.id, s.runs])),
        durationSeconds,
        machine,
        target: `${serverKind === "serve" ? `npm run serve (the deployable bundle on workerd ${machine.workerd} through Miniflare's direct socket, no dev tooling)` : `wrangler dev ${machine.wrangler}`} on ${server.url}, loopback; floor: bench/floor under npm run serve; baselines: Socket.io ${machine.socketio} and ws ${machine.ws}, each in its own Node process`,
        method: "each figure is the median of the runs, with min and max over the runs; latency percentiles are nearest-rank over every sample of a run; ratios are ours / baseline",
        cpu,
        scenarios: summaries,
        deliveryFailures: failures,
        table,
      };
      mkdirSync(dirname(outPath), { recursive: true });
      writeFileSync(`${outPath}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
      renameSync(`${outPath}.tmp`, outPath);
      log(`wrote ${outPath}`);
    }
    log(`done in ${durationSeconds} s`);
    if (failures.length) {
      log(`FAILED: not every delivery arrived exactly once:\n  ${failures.join("\n  ")}`);
      return 1;
    }
    if (mode === "quick") log("quick: every scenario completed, 100 % delivered");
    return 0;
  } finally {
    clearLimit();
    await Promise.all(baselines.map((b) => b.stop()));
    await stopServer();
  }
}

const baselines: Baseline[] = [];
/** Runs repeated because wrangler dev reloaded the Worker meanwhile; beyond this the bench gives up. */
const MAX_RELOADS = 10;
let reloads = 0;

/**
 * Runs `work` (a warm-up or a run) and repeats it if wrangler dev replaced
 * the workerd that runs the rooms meanwhile: it does so whenever a source
 * file changes, dropping every connection, and a run cut by that measures
 * nothing. Errors of a run during which no reload happened are the run's own.
 */
async function guarded<T>(ctx: BenchContext, work: () => Promise<T>): Promise<T> {
  for (;;) {
    const pid = roomsProcess();
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await work() };
    } catch (error) {
      outcome = { error };
    }
    const now = await settledRoomsProcess(pid);
    if (pid === undefined || now === pid) {
      if ("error" in outcome) throw outcome.error;
      return outcome.value;
    }
    if (++reloads > MAX_RELOADS) throw new Error(`wrangler dev reloaded the Worker ${reloads} times during the bench (source files keep changing); giving up`);
    log(`wrangler dev reloaded the Worker during this run (a source file changed): repeating it`);
    await untilHealthy(ctx.url);
    ctx.directUrl = await findDirectUrl();
  }
}

/** Waits (up to 60 s) for GET /health to answer 200 again after a reload. */
async function untilHealthy(url: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("wrangler dev did not answer /health within 60 s of a reload");
}

/** The rooms' workerd pid once one is running (a reload leaves a moment with none); bounded to 30 s. */
async function settledRoomsProcess(previous: number | undefined): Promise<number | undefined> {
  for (let i = 0; i < 300; i++) {
    const pid = roomsProcess();
    if (pid !== undefined || previous === undefined) return pid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

/**
 * Raises this process's open-file limit (inherited by wrangler, workerd and
 * the baselines) to OPEN_FILES, or failing that (no CAP_SYS_RESOURCE, as in
 * some containers) the soft limit to the hard one.
 */
function raiseOpenFileLimit(): void {
  for (const limit of [`${OPEN_FILES}:${OPEN_FILES}`, `${openFileLimit().hard}`]) {
    if (spawnSync("prlimit", [`--pid=${process.pid}`, `--nofile=${limit}`]).status === 0) break;
  }
  const { soft, hard } = openFileLimit();
  if (soft < OPEN_FILES && mode === "full") log(`open files are limited to ${soft} per process (hard limit ${hard}): fewer sockets than the connections scenario's top step may fit`);
}

function openFileLimit(): { soft: number; hard: number } {
  try {
    const [soft, hard] = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync("/proc/self/limits", "utf8"))!.slice(1).map((v) => (v === "unlimited" ? Infinity : Number(v)));
    return { soft: soft!, hard: hard! };
  } catch {
    return { soft: Infinity, hard: Infinity };
  }
}

/** Applies --param K=V to a scenario's numeric parameters (unknown keys are an error). */
function withOverrides<P extends object>(params: P, overrides: string[]): P {
  const out = { ...params } as Record<string, unknown>;
  for (const item of overrides) {
    const [key, value] = item.split("=");
    if (!key || !(key in out) || typeof out[key] !== "number" || !Number.isFinite(Number(value))) {
      throw new Error(`--param ${item}: expected one of ${Object.keys(params).join(", ")} = a number`);
    }
    out[key] = Number(value);
  }
  return out as P;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (wasInterrupted()) return; // the signal handler is stopping the server and will exit
    log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    void stopServer().finally(() => process.exit(1));
  },
);
