/**
 * Turns the runs of every scenario into the one results table (Markdown, so
 * the same text goes to the terminal and to docs/performance.md) and the
 * JSON summary written to bench/results/latest.json.
 */
import type { Scenario, SeriesRun } from "./scenario.ts";
import { distribution, round, spread, type Spread } from "./stats.ts";

export const LATENCY_FIGURES = ["p50", "p99", "max"] as const;
type LatencyFigure = (typeof LATENCY_FIGURES)[number];

export interface SeriesSummary {
  key: string;
  label: string;
  description: string;
  /** Each latency figure: median over runs, min–max over runs, each run's value. */
  latencyMs: Record<LatencyFigure | "mean", Spread>;
  samplesPerRun: number[];
  expected: number;
  delivered: number;
  duplicates: number;
  extra: Record<string, Spread>;
}

export interface ScenarioSummary {
  id: string;
  title: string;
  params: object;
  runs: number;
  series: SeriesSummary[];
  /** For every series after the first: its median / ours' median, per latency figure. */
  ratios: Record<string, Record<LatencyFigure, number>>;
}

export function summarize(scenario: Scenario<any>, params: object, runs: Record<string, SeriesRun>[]): ScenarioSummary {
  const series = scenario.series.map((info): SeriesSummary => {
    const perRun = runs.map((run) => run[info.key]).filter((r): r is SeriesRun => r !== undefined);
    const dists = perRun.map((r) => distribution(r.latenciesMs));
    const extraKeys = [...new Set(perRun.flatMap((r) => Object.keys(r.extra ?? {})))];
    return {
      ...info,
      latencyMs: {
        p50: rounded(spread(dists.map((d) => d.p50))),
        p99: rounded(spread(dists.map((d) => d.p99))),
        max: rounded(spread(dists.map((d) => d.max))),
        mean: rounded(spread(dists.map((d) => d.mean))),
      },
      samplesPerRun: dists.map((d) => d.count),
      expected: sum(perRun.map((r) => r.expected)),
      delivered: sum(perRun.map((r) => r.delivered)),
      duplicates: sum(perRun.map((r) => r.duplicates)),
      extra: Object.fromEntries(extraKeys.map((k) => [k, rounded(spread(perRun.map((r) => r.extra?.[k] ?? Number.NaN)))])),
    };
  });
  const [ours, ...others] = series;
  const ratios: ScenarioSummary["ratios"] = {};
  for (const other of others) {
    ratios[other.key] = Object.fromEntries(
      LATENCY_FIGURES.map((f) => [f, round(other.latencyMs[f].median / ours!.latencyMs[f].median, 1)]),
    ) as Record<LatencyFigure, number>;
  }
  return { id: scenario.id, title: scenario.title(params), params, runs: runs.length, series, ratios };
}

/**
 * One Markdown table for every scenario: a row per figure; a column for
 * ours, then for each other series met in any scenario (by key) its column
 * and its ratio to ours beside it. Cells read "median (min–max)" over the runs
 * (just the value when there was one run).
 */
export function renderTable(summaries: ScenarioSummary[]): string {
  const others = new Map<string, string>();
  for (const summary of summaries) for (const s of summary.series.slice(1)) if (!others.has(s.key)) others.set(s.key, s.label);
  const header = ["scenario", "figure", "ours"];
  for (const label of others.values()) header.push(label, `${label} / ours`);
  const rows: string[][] = [header];
  for (const summary of summaries) {
    const [ours, ...rest] = summary.series;
    if (!ours) continue;
    const byKey = new Map(rest.map((s) => [s.key, s]));
    LATENCY_FIGURES.forEach((figure, i) => {
      const cell = (s: SeriesSummary) => {
        const f = s.latencyMs[figure];
        return summary.runs > 1 ? `${ms(f.median)} (${ms(f.min)}–${ms(f.max)})` : ms(f.median);
      };
      const runs = `${summary.runs} run${summary.runs === 1 ? "" : "s"}`;
      const row = [i === 0 ? `${summary.title} (${runs})` : "", `${figure} latency`, cell(ours)];
      for (const key of others.keys()) {
        const other = byKey.get(key);
        row.push(other ? cell(other) : "", other ? ratio(summary.ratios[key]![figure]) : "");
      }
      rows.push(row);
    });
    const delivered = (s: SeriesSummary) => `${pct(s.delivered, s.expected)} (${s.delivered}/${s.expected})`;
    const row = ["", "delivered", delivered(ours)];
    for (const key of others.keys()) {
      const other = byKey.get(key);
      row.push(other ? delivered(other) : "", "");
    }
    rows.push(row);
  }
  const widths = header.map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? "")].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell + " ".repeat(widths[c]! - [...cell].length)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

function rounded(s: Spread): Spread {
  return { median: round(s.median), min: round(s.min), max: round(s.max), runs: s.runs.map((v) => round(v)) };
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (value < 10) return `${value.toFixed(1)} ms`;
  return `${Math.round(value)} ms`;
}

function ratio(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value >= 10 ? `${Math.round(value)}×` : `${value.toFixed(1)}×`;
}

function pct(part: number, whole: number): string {
  if (whole === 0) return "–";
  const value = (100 * part) / whole;
  return `${value === 100 ? "100" : value.toFixed(2)} %`;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
