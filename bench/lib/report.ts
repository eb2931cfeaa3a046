/**
 * Turns the runs of every scenario into the one results table (Markdown, so
 * the same text goes to the terminal and to docs/performance.md) and the
 * JSON summary written to bench/results/latest.json.
 *
 * The table has a column for ours, then, for every other series met in any
 * scenario (Socket.io, raw ws, the 500 ms polling loop …), its column and the
 * ratio ours / it beside it. Below 1 is better for ours on latency and memory,
 * above 1 on rates.
 */
import type { Figure, Scenario, SeriesRun } from "./scenario.ts";
import { distribution, round, spread, type Spread } from "./stats.ts";

export const LATENCY_FIGURES = ["p50", "p99", "max"] as const;
type LatencyFigure = (typeof LATENCY_FIGURES)[number];

/** Columns in this order when present; other series follow in the order met. */
const COLUMN_ORDER = ["floor", "socketio", "ws"];

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
  outOfOrder: number;
  extra: Record<string, Spread>;
}

export interface ScenarioSummary {
  id: string;
  title: string;
  params: object;
  runs: number;
  latency: boolean;
  /** See Scenario.saturates: true when late deliveries are a figure, not a failure (full mode only). */
  saturates: boolean;
  deliveredLabel: string;
  figures: Figure[];
  series: SeriesSummary[];
  /** For every series after the first: ours' median / its median, per figure (latency figures and side figures by key). */
  ratios: Record<string, Record<string, number>>;
}

export function summarize(scenario: Scenario<any>, params: object, runs: Record<string, SeriesRun>[], mode: "full" | "quick" = "full"): ScenarioSummary {
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
      outOfOrder: sum(perRun.map((r) => r.outOfOrder ?? 0)),
      extra: Object.fromEntries(extraKeys.map((k) => [k, rounded(spread(perRun.map((r) => r.extra?.[k] ?? Number.NaN)))])),
    };
  });
  const figures = scenario.figures ?? [];
  const latency = scenario.latency ?? true;
  const [ours, ...others] = series;
  const ratios: ScenarioSummary["ratios"] = {};
  for (const other of others) {
    const entries: [string, number][] = [];
    if (latency) for (const f of LATENCY_FIGURES) entries.push([f, round(ours!.latencyMs[f].median / other.latencyMs[f].median, 2)]);
    for (const f of figures) entries.push([f.key, round((ours!.extra[f.key]?.median ?? Number.NaN) / (other.extra[f.key]?.median ?? Number.NaN), 2)]);
    ratios[other.key] = Object.fromEntries(entries.filter(([, v]) => Number.isFinite(v)));
  }
  return {
    id: scenario.id,
    title: scenario.title(params),
    params,
    runs: runs.length,
    latency,
    saturates: mode === "full" && scenario.saturates === true,
    deliveredLabel: scenario.deliveredLabel?.(params) ?? "delivered",
    figures,
    series,
    ratios,
  };
}

/**
 * The failures the runner exits non-zero for: anything not delivered exactly
 * once, in order (a saturating scenario's late deliveries excepted).
 */
export function deliveryFailures(summaries: ScenarioSummary[]): string[] {
  return summaries.flatMap((s) =>
    s.series
      .filter((x) => (x.delivered !== x.expected && !s.saturates) || x.duplicates > 0 || x.outOfOrder > 0)
      .map((x) => `${s.id}/${x.key}: delivered ${x.delivered}/${x.expected}, ${x.duplicates} duplicates, ${x.outOfOrder} out of order`),
  );
}

/**
 * One Markdown table for every scenario: a row per figure; a column for
 * ours, then for each other series met in any scenario (by key) its column
 * and the ratio ours / it beside it. Cells read "median (min–max)" over the
 * runs (just the value when there was one run).
 */
export function renderTable(summaries: ScenarioSummary[]): string {
  const others = new Map<string, string>();
  for (const key of COLUMN_ORDER) {
    const label = summaries.flatMap((s) => s.series.slice(1)).find((s) => s.key === key)?.label;
    if (label) others.set(key, label);
  }
  for (const summary of summaries) for (const s of summary.series.slice(1)) if (!others.has(s.key)) others.set(s.key, s.label);
  const header = ["scenario", "figure", "ours"];
  for (const label of others.values()) header.push(label, `ours / ${label}`);
  const rows: string[][] = [header];
  for (const summary of summaries) {
    const [ours, ...rest] = summary.series;
    if (!ours) continue;
    const byKey = new Map(rest.map((s) => [s.key, s]));
    const runs = `${summary.runs} run${summary.runs === 1 ? "" : "s"}`;
    let first = true;
    const addRow = (label: string, cell: (s: SeriesSummary) => string, ratioKey?: string) => {
      const row = [first ? `${summary.title} (${runs})` : "", label, cell(ours)];
      first = false;
      for (const key of others.keys()) {
        const other = byKey.get(key);
        const r = ratioKey === undefined ? undefined : summary.ratios[key]?.[ratioKey];
        row.push(other ? cell(other) : "", other && r !== undefined ? ratio(r) : "");
      }
      rows.push(row);
    };
    if (summary.latency) {
      for (const figure of LATENCY_FIGURES) addRow(`${figure} latency`, (s) => spreadCell(s.latencyMs[figure], "ms", summary.runs, s.samplesPerRun), figure);
    }
    for (const figure of summary.figures) {
      addRow(figure.label, (s) => (s.extra[figure.key] ? spreadCell(s.extra[figure.key]!, figure.unit, summary.runs) : "–"), figure.key);
    }
    addRow(summary.deliveredLabel, delivered);
  }
  const widths = header.map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? "")].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell + " ".repeat(widths[c]! - [...cell].length)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

function spreadCell(f: Spread, unit: Figure["unit"], runs: number, samples?: number[]): string {
  if (samples && samples.every((n) => n === 0)) return "–";
  const v = (x: number) => format(x, unit);
  return runs > 1 && f.min !== f.max ? `${v(f.median)} (${v(f.min)}–${v(f.max)})` : v(f.median);
}

function delivered(s: SeriesSummary): string {
  if (s.expected === 0) return "–";
  const problems = [s.duplicates ? `${s.duplicates} dup` : "", s.outOfOrder ? `${s.outOfOrder} out of order` : ""].filter(Boolean);
  return `${pct(s.delivered, s.expected)} (${s.delivered}/${s.expected})${problems.length ? `, ${problems.join(", ")}` : ""}`;
}

export function format(value: number, unit: Figure["unit"]): string {
  if (!Number.isFinite(value)) return "–";
  switch (unit) {
    case "ms":
      return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value).toLocaleString("en-US")} ms`;
    case "µs":
      return value < 10 ? `${value.toFixed(1)} µs` : `${Math.round(value).toLocaleString("en-US")} µs`;
    case "/s":
      return `${Math.round(value).toLocaleString("en-US")}/s`;
    case "MiB":
      return `${value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")} MiB`;
    case "KiB":
      return `${value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")} KiB`;
    case "ratio":
      return value < 1 ? value.toFixed(3) : value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
    case "count":
      return Math.round(value).toLocaleString("en-US");
  }
}

function ratio(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value >= 10 ? `${Math.round(value)}×` : `${value.toFixed(2)}×`;
}

function rounded(s: Spread): Spread {
  return { median: round(s.median), min: round(s.min), max: round(s.max), runs: s.runs.map((v) => round(v)) };
}

function pct(part: number, whole: number): string {
  if (whole === 0) return "–";
  const value = (100 * part) / whole;
  return `${value === 100 ? "100" : value.toFixed(2)} %`;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
