/**
 * The latency chart of docs/performance.md (docs/performance-latency.svg),
 * written as SVG text with no dependency: for every scenario that measures
 * latency, one pair of bars per system, p50 (solid) and p99 (light), on a
 * logarithmic millisecond axis, each labelled with its value. The values are
 * the medians over the runs, as in the table.
 */
import type { ScenarioSummary } from "./report.ts";

const WIDTH = 980;
const LABEL_WIDTH = 250;
const PLOT_LEFT = LABEL_WIDTH + 10;
const PLOT_RIGHT = WIDTH - 90;
const BAR = 11;
const SERIES_GAP = 6;
const GROUP_GAP = 16;
const TOP = 58;

const COLORS: Record<string, string> = { socketio: "#e8871e", ws: "#3a9a4a", poll500: "#888888" };
const OURS_COLOR = "#2f6fd0";
const OTHER_COLORS = ["#8e5cc2", "#c2495c", "#2aa198"];

interface Row {
  label: string;
  color: string;
  p50: number;
  p99: number;
}

interface Group {
  title: string;
  rows: Row[];
}

export function renderLatencyChart(summaries: ScenarioSummary[], subtitle: string): string {
  const groups = summaries
    .filter((s) => s.latency)
    .map((s): Group => {
      let other = 0;
      const rows = s.series
        .filter((x) => Number.isFinite(x.latencyMs.p50.median) && x.samplesPerRun.some((n) => n > 0))
        .map((x, i) => ({
          label: x.label,
          color: i === 0 ? OURS_COLOR : (COLORS[x.key] ?? OTHER_COLORS[other++ % OTHER_COLORS.length]!),
          p50: x.latencyMs.p50.median,
          p99: x.latencyMs.p99.median,
        }));
      return { title: s.title, rows };
    })
    .filter((g) => g.rows.length > 0);
  const values = groups.flatMap((g) => g.rows.flatMap((r) => [r.p50, r.p99])).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...values, 1))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (ms: number) => PLOT_LEFT + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (PLOT_RIGHT - PLOT_LEFT);

  const parts: string[] = [];
  let y = TOP;
  for (const group of groups) {
    parts.push(text(10, y + 12, group.title, "group"));
    y += 20;
    for (const row of group.rows) {
      parts.push(text(LABEL_WIDTH, y + BAR + 3, row.label, "label", "end"));
      parts.push(bar(x(row.p50), y, row.color, 1), text(x(row.p50) + 4, y + BAR - 2, `p50 ${ms(row.p50)}`, "value"));
      y += BAR + 1;
      parts.push(bar(x(row.p99), y, row.color, 0.45), text(x(row.p99) + 4, y + BAR - 2, `p99 ${ms(row.p99)}`, "value"));
      y += BAR + SERIES_GAP;
    }
    y += GROUP_GAP;
  }
  const height = y + 30;
  const grid: string[] = [];
  // Labels at 1 and 5 of each decade while they fit, at each decade only beyond four decades.
  const labelled = Math.log10(hi / lo) > 4 ? [1] : [1, 5];
  for (let decade = lo; decade <= hi; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = decade * m;
      if (v > hi) break;
      const gx = x(v).toFixed(1);
      grid.push(`<line x1="${gx}" y1="${TOP - 6}" x2="${gx}" y2="${y}" class="${m === 1 ? "major" : "minor"}"/>`);
      if (labelled.includes(m)) grid.push(text(Number(gx), y + 16, ms(v), "axis", "middle"));
    }
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    "<style>.group{font-size:13px;font-weight:600;fill:#222}.label{font-size:12px;fill:#333}.value{font-size:10px;fill:#444}.axis{font-size:10px;fill:#666}.title{font-size:15px;font-weight:600;fill:#111}.sub{font-size:11px;fill:#555}.major{stroke:#ccc;stroke-width:1}.minor{stroke:#eee;stroke-width:1}</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    text(10, 20, "Delivery latency, p50 (solid) and p99 (light), log scale — lower is better", "title"),
    text(10, 38, subtitle, "sub"),
    ...grid,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function bar(x2: number, y: number, color: string, opacity: number): string {
  return `<rect x="${PLOT_LEFT}" y="${y}" width="${Math.max(1, x2 - PLOT_LEFT).toFixed(1)}" height="${BAR}" fill="${color}" fill-opacity="${opacity}"/>`;
}

function text(x: number, y: number, content: string, cls: string, anchor: "start" | "middle" | "end" = "start"): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" class="${cls}"${anchor === "start" ? "" : ` text-anchor="${anchor}"`}>${escapeXml(content)}</text>`;
}

function ms(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)} s`;
  if (value >= 10) return `${Math.round(value)} ms`;
  return `${value.toFixed(1)} ms`;
}

function escapeXml(value: string): string {
  return value.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
