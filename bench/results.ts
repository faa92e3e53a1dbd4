// What one bench run measured, and what it means: medians and spread per engine, ratios to
// HAProxy, the targets of issue #15 and whether they hold, and the table bench/README.md shows.
// Pure: no I/O, so the smoke test and the chart read the same numbers the table prints.

/** The engines a run compares. `direct` is the client straight to nginx: the ceiling. */
export const ENGINES = ["direct", "haproxy", "nginx", "ts", "ts-all"] as const;
export type EngineName = (typeof ENGINES)[number];

export const ENGINE_LABELS: Record<EngineName, string> = {
  direct: "direct (no LB)",
  haproxy: "HAProxy",
  nginx: "nginx stream",
  ts: "ts proxy, 1 worker",
  "ts-all": "ts proxy, all cores",
};

/** One wrk-driven run against one engine. */
export interface LoadSample {
  readonly requests: number;
  readonly seconds: number;
  readonly errors: number;
  readonly mibPerSec: number;
  /** Busy time of the engine's core (every state but idle) per request, µs; null when the engine is not pinned. */
  readonly coreUsPerRequest: number | null;
  /** CPU time of the engine's own processes and threads per request, µs. */
  readonly processUsPerRequest: number;
  /** Share of the engine core's busy time that was not the engine (another process used it): > NOISE_SHARE flags the run. */
  readonly otherShare: number | null;
}

export interface LatencySample {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

export interface IdleSample {
  readonly connections: number;
  /** The engine's processes, fresh, before any connection. */
  readonly rssBeforeKiB: number;
  readonly rssAfterKiB: number;
}

export interface RoundSample {
  readonly newConnection?: LoadSample;
  readonly keepAlive?: LoadSample;
  readonly bulk?: LoadSample;
  readonly latency?: LatencySample;
  readonly idle?: IdleSample;
}

export interface BenchSettings {
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly idleConnections: number;
  readonly bulkMiB: number;
  readonly pacedRequestsPerSecond: number;
  readonly smoke: boolean;
}

export interface BenchRun {
  readonly date: string;
  readonly command: string;
  readonly machine: { readonly cpus: number; readonly model: string; readonly kernel: string };
  readonly versions: { readonly node: string; readonly haproxy: string; readonly nginx: string };
  readonly settings: BenchSettings;
  /** Per engine, one sample per round, in round order. */
  readonly rounds: Partial<Record<EngineName, RoundSample[]>>;
}

/** A run whose engine core was more than this share busy with something else is flagged. */
export const NOISE_SHARE = 0.05;

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(values: readonly number[]): Spread | null {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  const median = xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[xs.length - 1]!, n: xs.length };
}

/** The figures the table and the targets use, per engine. */
export const METRICS = [
  { key: "newConnectionCpu", label: "CPU µs per new TLS connection (a)", unit: "µs", better: "lower" },
  { key: "keepAliveCpu", label: "CPU µs per keep-alive request (b)", unit: "µs", better: "lower" },
  { key: "bulkMiBs", label: "bulk MiB/s, one connection (c)", unit: "MiB/s", better: "higher" },
  { key: "idleKiBPerConnection", label: "KiB resident per idle connection (d)", unit: "KiB", better: "lower" },
  { key: "idleRssMiB", label: "MiB resident, fresh and idle (d)", unit: "MiB", better: "lower" },
  { key: "addedP50Ms", label: "added latency p50 ms vs direct (e)", unit: "ms", better: "lower" },
  { key: "addedP99Ms", label: "added latency p99 ms vs direct (e)", unit: "ms", better: "lower" },
  { key: "newConnectionRate", label: "new TLS connections/s (a)", unit: "/s", better: "higher" },
  { key: "keepAliveRate", label: "keep-alive requests/s (b)", unit: "/s", better: "higher" },
] as const;
export type MetricKey = (typeof METRICS)[number]["key"];

const cpuOf = (s: LoadSample): number => s.coreUsPerRequest ?? s.processUsPerRequest;

/** Per engine and metric, the spread over rounds. Latency is taken against `direct` of the same round. */
export function summarise(run: BenchRun): Partial<Record<EngineName, Partial<Record<MetricKey, Spread>>>> {
  const direct = run.rounds.direct ?? [];
  const out: Partial<Record<EngineName, Partial<Record<MetricKey, Spread>>>> = {};
  for (const engine of ENGINES) {
    const samples = run.rounds[engine];
    if (samples === undefined || samples.length === 0) continue;
    const pick = (f: (s: RoundSample, round: number) => number | undefined): Spread | null =>
      spread(samples.map((s, i) => f(s, i)).filter((v): v is number => v !== undefined));
    const added = (which: "p50Ms" | "p99Ms") => (s: RoundSample, i: number) => {
      const base = direct[i]?.latency;
      return s.latency === undefined || base === undefined || engine === "direct" ? undefined : s.latency[which] - base[which];
    };
    const metrics: Partial<Record<MetricKey, Spread | null>> = {
      newConnectionCpu: engine === "direct" ? null : pick((s) => (s.newConnection ? cpuOf(s.newConnection) : undefined)),
      keepAliveCpu: engine === "direct" ? null : pick((s) => (s.keepAlive ? cpuOf(s.keepAlive) : undefined)),
      bulkMiBs: pick((s) => s.bulk?.mibPerSec),
      idleKiBPerConnection: pick((s) => (s.idle ? (s.idle.rssAfterKiB - s.idle.rssBeforeKiB) / s.idle.connections : undefined)),
      idleRssMiB: pick((s) => (s.idle ? s.idle.rssBeforeKiB / 1024 : undefined)),
      addedP50Ms: pick(added("p50Ms")),
      addedP99Ms: pick(added("p99Ms")),
      newConnectionRate: pick((s) => (s.newConnection ? s.newConnection.requests / s.newConnection.seconds : undefined)),
      keepAliveRate: pick((s) => (s.keepAlive ? s.keepAlive.requests / s.keepAlive.seconds : undefined)),
    };
    out[engine] = Object.fromEntries(Object.entries(metrics).filter(([, v]) => v !== null)) as Partial<Record<MetricKey, Spread>>;
  }
  return out;
}

/** Runs whose engine core something else kept busy, e.g. "ts round 2 keep-alive (other 12%)". */
export function noisyRuns(run: BenchRun): string[] {
  const notes: string[] = [];
  for (const engine of ENGINES) {
    (run.rounds[engine] ?? []).forEach((s, i) => {
      for (const [name, sample] of [["new connection", s.newConnection], ["keep-alive", s.keepAlive], ["bulk", s.bulk]] as const) {
        if (sample?.otherShare != null && sample.otherShare > NOISE_SHARE) notes.push(`${engine} round ${i + 1} ${name} (other ${Math.round(sample.otherShare * 100)}%)`);
      }
    });
  }
  return notes;
}

export interface TargetVerdict {
  readonly target: string;
  readonly value: number | null;
  readonly limit: string;
  readonly met: boolean | null;
}

/** Issue #15's targets for the ts proxy, judged on the medians of this run. */
export function judgeTargets(run: BenchRun): TargetVerdict[] {
  const s = summarise(run);
  const ts = s.ts ?? {};
  const hap = s.haproxy ?? {};
  const ratio = (a: Spread | undefined, b: Spread | undefined): number | null => (a && b && b.median > 0 ? a.median / b.median : null);
  const verdict = (target: string, value: number | null, limit: string, ok: (v: number) => boolean): TargetVerdict => ({
    target,
    value,
    limit,
    met: value === null ? null : ok(value),
  });
  return [
    verdict("CPU per new connection, ts / HAProxy", ratio(ts.newConnectionCpu, hap.newConnectionCpu), "<= 1.0", (v) => v <= 1.0),
    verdict("CPU per keep-alive request, ts / HAProxy", ratio(ts.keepAliveCpu, hap.keepAliveCpu), "<= 1.0", (v) => v <= 1.0),
    verdict("KiB per idle connection, ts", ts.idleKiBPerConnection?.median ?? null, "<= 6", (v) => v <= 6),
    verdict("MiB resident idle, ts all cores (rendered config)", s["ts-all"]?.idleRssMiB?.median ?? null, "<= 64", (v) => v <= 64),
    verdict("bulk, ts / HAProxy", ratio(ts.bulkMiBs, hap.bulkMiBs), ">= 1.0", (v) => v >= 1.0),
    verdict("added p99 ms, ts", ts.addedP99Ms?.median ?? null, "<= 0.25", (v) => v <= 0.25),
  ];
}

function fmt(n: number, unit: string): string {
  if (unit === "ms") return n.toFixed(3);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  return n.toFixed(1);
}

function cell(sp: Spread | undefined, unit: string): string {
  if (sp === undefined) return "-";
  const [lo, hi] = [fmt(sp.min, unit), fmt(sp.max, unit)];
  const range = sp.n > 1 && lo !== hi ? ` (${lo}-${hi})` : "";
  return `${fmt(sp.median, unit)}${range}`;
}

/** The markdown the bench prints and bench/README.md keeps: one row per metric, one column per engine. */
export function renderTable(run: BenchRun): string {
  const s = summarise(run);
  const engines = ENGINES.filter((e) => s[e] !== undefined);
  const lines: string[] = [];
  lines.push(`| per core, same run (median, min-max of ${run.settings.rounds}) | ${engines.map((e) => ENGINE_LABELS[e]).join(" | ")} | ts / HAProxy |`);
  lines.push(`|---|${engines.map(() => "---").join("|")}|---|`);
  for (const m of METRICS) {
    const row = engines.map((e) => cell(s[e]?.[m.key], m.unit));
    if (row.every((c) => c === "-")) continue;
    const ts = s.ts?.[m.key];
    const hap = s.haproxy?.[m.key];
    const ratio = ts && hap && hap.median !== 0 && m.unit !== "ms" ? (ts.median / hap.median).toFixed(2) : "-";
    lines.push(`| ${m.label} | ${row.join(" | ")} | ${ratio} |`);
  }
  lines.push("");
  lines.push("| target (ts proxy) | this run | limit | met |");
  lines.push("|---|---|---|---|");
  for (const t of judgeTargets(run)) {
    lines.push(`| ${t.target} | ${t.value === null ? "-" : t.value.toFixed(t.limit.includes("0.25") ? 3 : 2)} | ${t.limit} | ${t.met === null ? "-" : t.met ? "yes" : "**no**"} |`);
  }
  const noisy = noisyRuns(run);
  lines.push("");
  lines.push(noisy.length === 0 ? "No run flagged: the engine's core was its own." : `Flagged (something else used the engine's core): ${noisy.join("; ")}.`);
  return lines.join("\n");
}

/** The header lines that say what ran where. */
export function renderPreamble(run: BenchRun): string {
  const st = run.settings;
  return [
    `${run.date}, \`${run.command}\``,
    `${run.machine.cpus} CPUs (${run.machine.model}), Linux ${run.machine.kernel}; ${run.versions.haproxy}; ${run.versions.nginx}; ts proxy on Node ${run.versions.node}`,
    `${st.rounds} interleaved round(s) of ${st.seconds} s per workload, wrk -c${st.connections}; idle: ${st.idleConnections} TLS connections; bulk: ${st.bulkMiB} MiB responses; latency paced at ${st.pacedRequestsPerSecond} req/s${st.smoke ? "; SMOKE RUN: numbers mean nothing" : ""}`,
  ].join("\n");
}
