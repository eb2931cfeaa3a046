/**
 * `npm run bench` / `npm run bench:quick`: the one benchmark runner.
 *
 * Starts the service the way `npm start` does (wrangler dev on 127.0.0.1,
 * local D1 persisted in a fresh state directory, migrations applied) through
 * the e2e harness's DevServer, runs every scenario in bench/scenarios
 * (a discarded warm-up, then several measured runs), prints one table of
 * medians with their min–max spread, and writes bench/results/latest.json.
 *
 *   --quick        small sizes, one run, under 60 s; checks only that every
 *                  scenario completed and delivered 100 %; writes no results
 *   --runs N       measured runs per scenario (full: 5)
 *   --only ID      run one scenario, or every size of one (long-poll-wake-200, long-poll-wake)
 *   --out PATH     where to write the JSON (default: bench/results/latest.json for
 *                  a full run of every scenario without --param; else none)
 *   --param K=V    override a scenario parameter (repeatable), e.g. --param polls=1000
 *   --verbose      a progress line per round
 *
 * Exit status: 0 when every delivery arrived exactly once, 1 otherwise or on
 * error, 124 when the time limit was hit. Timing never fails the run.
 */
import { renameSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_SECRETS, DevServer } from "../test/e2e/server.ts";
import { installExitGuards, stopServer, timeLimit, track, wasInterrupted } from "./lib/lifecycle.ts";
import { machineInfo, measureCpu, type CpuUse } from "./lib/machine.ts";
import { renderTable, summarize, type ScenarioSummary } from "./lib/report.ts";
import type { BenchContext, Mode, SeriesRun } from "./lib/scenario.ts";
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
  },
});
const mode: Mode = args.quick ? "quick" : "full";
const runs = args.runs ? Number(args.runs) : mode === "quick" ? 1 : 5;
if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`--runs must be an integer in 1..50, got ${args.runs}`);
const scenarios = SCENARIOS.filter((s) => (!args.only || s.id === args.only || s.id.startsWith(`${args.only}-`)) && s.params(mode) !== undefined);
if (scenarios.length === 0) throw new Error(`no scenario "${args.only}"; known: ${SCENARIOS.map((s) => s.id).join(", ")}`);
/** latest.json holds the standard full run only: a quick, --only or --param run writes only where --out says. */
const standard = mode === "full" && !args.only && !args.param?.length;
const outPath = args.out ?? (standard ? join(ROOT, "bench/results/latest.json") : undefined);
/** The whole bench, server start included. Quick must fit CI's 60 s. */
const TIME_LIMIT_MS = mode === "quick" ? 55_000 : 15 * 60_000;

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function main(): Promise<number> {
  installExitGuards();
  const abort = new AbortController();
  const clearLimit = timeLimit(TIME_LIMIT_MS, abort);
  const startedAt = new Date();
  const started = performance.now();
  const machine = machineInfo(ROOT);
  try {
    log(`${mode} mode, ${runs} run(s); starting wrangler dev (local D1, migrations applied)…`);
    const server = await DevServer.start();
    track(server);
    log(`server ready at ${server.url} in ${Math.round(performance.now() - started)} ms`);
    const ctx: BenchContext = {
      server,
      url: server.url,
      notifySecret: DEFAULT_SECRETS.NOTIFY_SECRET,
      jwtSecret: DEFAULT_SECRETS.JWT_SECRET,
      mode,
      log,
      debug: args.verbose ? log : () => {},
      signal: abort.signal,
    };

    const summaries: ScenarioSummary[] = [];
    const cpu: Record<string, CpuUse[]> = {};
    for (const scenario of scenarios) {
      const params = withOverrides(scenario.params(mode)!, args.param ?? []);
      log(`${scenario.id}: warm-up`);
      await scenario.warmup?.(ctx, params);
      const results: Record<string, SeriesRun>[] = [];
      cpu[scenario.id] = [];
      for (let run = 0; run < runs && !abort.signal.aborted; run++) {
        const measure = measureCpu();
        const t = performance.now();
        results.push(await scenario.run(ctx, params, run));
        const use = measure();
        if (use) cpu[scenario.id]!.push(use);
        log(`${scenario.id}: run ${run + 1}/${runs} in ${((performance.now() - t) / 1000).toFixed(1)} s${use ? ` (cores busy: bench+server ${use.benchCores}, other processes ${use.otherCores})` : ""}`);
      }
      summaries.push(summarize(scenario, params, results));
    }
    if (abort.signal.aborted) {
      log("FAILED: the time limit was reached before every run completed");
      return 124;
    }

    const table = renderTable(summaries);
    process.stdout.write(`\n${table}\n\n`);
    for (const summary of summaries) {
      const use = cpu[summary.id] ?? [];
      if (use.length) {
        const other = spread(use.map((u) => u.otherCores));
        process.stdout.write(`${summary.id}: other processes kept ${other.median.toFixed(2)} of ${machine.cpus} cores busy during the runs (min ${other.min.toFixed(2)}, max ${other.max.toFixed(2)})\n`);
        if (other.max > 0.25) process.stdout.write(`${summary.id}: the machine was not idle; these figures include that noise\n`);
      }
    }

    const failures = summaries.flatMap((s) =>
      s.series.filter((x) => x.delivered !== x.expected || x.duplicates > 0).map((x) => `${s.id}/${x.key}: delivered ${x.delivered}/${x.expected}, ${x.duplicates} duplicates`),
    );
    const durationSeconds = Math.round((performance.now() - started) / 100) / 10;
    if (outPath) {
      const result = {
        generatedAt: startedAt.toISOString(),
        mode,
        runsPerScenario: runs,
        durationSeconds,
        machine,
        target: `wrangler dev (workerd, local mode) on ${server.url}, loopback`,
        method: "each figure is the median of the runs, with min and max over the runs; latency percentiles are nearest-rank over every sample of a run",
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
    await stopServer();
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
