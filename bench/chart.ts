// The run as a picture for docs/: each engine's figure relative to HAProxy's (1.0), one group
// of bars per metric, drawn so that longer is always worse. Pure: a string of SVG.
import { ENGINE_LABELS, METRICS, summarise, type BenchRun, type EngineName, type MetricKey } from "./results";

const CHARTED: readonly MetricKey[] = ["newConnectionCpu", "keepAliveCpu", "idleKiBPerConnection", "idleRssMiB", "bulkMiBs"];
const BARS: readonly EngineName[] = ["haproxy", "nginx", "ts", "ts-all"];
const COLOURS: Record<EngineName, string> = { direct: "#999999", haproxy: "#4c78a8", nginx: "#54a24b", ts: "#e45756", "ts-all": "#f58518" };

const escape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Cost relative to HAProxy: for a higher-is-better figure, HAProxy's over the engine's, so a longer bar still means worse. */
function relativeCost(value: number, haproxy: number, better: "lower" | "higher"): number | null {
  if (!(value > 0) || !(haproxy > 0)) return null;
  return better === "lower" ? value / haproxy : haproxy / value;
}

export function renderChart(run: BenchRun, title: string): string {
  const s = summarise(run);
  const rows: { label: string; bars: { engine: EngineName; ratio: number; text: string }[] }[] = [];
  for (const key of CHARTED) {
    const metric = METRICS.find((m) => m.key === key)!;
    const base = s.haproxy?.[key]?.median;
    if (base === undefined) continue;
    const bars = BARS.flatMap((engine) => {
      const v = s[engine]?.[key]?.median;
      const ratio = v === undefined ? null : relativeCost(v, base, metric.better);
      return ratio === null || v === undefined ? [] : [{ engine, ratio, text: `${ratio.toFixed(2)}x (${v.toFixed(v >= 100 ? 0 : 1)} ${metric.unit})` }];
    });
    if (bars.length > 0) rows.push({ label: metric.label, bars });
  }
  const maxRatio = Math.max(1.5, ...rows.flatMap((r) => r.bars.map((b) => b.ratio)));
  const left = 280;
  const width = 900;
  const barH = 14;
  const plotW = width - left - 170;
  const x = (ratio: number): number => left + (ratio / maxRatio) * plotW;
  const out: string[] = [];
  let y = 56;
  for (const row of rows) {
    out.push(`<text x="${left - 10}" y="${y + barH}" text-anchor="end" font-size="12">${escape(row.label)}</text>`);
    for (const bar of row.bars) {
      out.push(`<rect x="${left}" y="${y}" width="${(x(bar.ratio) - left).toFixed(1)}" height="${barH - 2}" fill="${COLOURS[bar.engine]}"/>`);
      out.push(`<text x="${(x(bar.ratio) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">${escape(bar.text)}</text>`);
      y += barH;
    }
    y += 12;
  }
  const height = y + 40;
  const one = x(1).toFixed(1);
  const legend = BARS.map((e, i) => `<rect x="${left + i * 150}" y="${height - 24}" width="10" height="10" fill="${COLOURS[e]}"/><text x="${left + 14 + i * 150}" y="${height - 15}" font-size="11">${escape(ENGINE_LABELS[e])}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="38" font-size="11">Cost relative to HAProxy (1.0 = HAProxy; longer is worse: CPU, memory, and HAProxy's throughput over the engine's for bulk)</text>`,
    ...out,
    `<line x1="${one}" y1="48" x2="${one}" y2="${height - 34}" stroke="#333333" stroke-dasharray="4 3"/>`,
    `<text x="${one}" y="${height - 36}" font-size="10" text-anchor="middle">1.0</text>`,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}
