// The Prometheus text exposition format as Prometheus' own Python client reads it (Debian's
// python3-prometheus-client): tests check what a scraper would take from an endpoint, not what
// a regular expression happens to find in it.
import { run } from "./command";

/** Debian's python3, which has the package; a python3 earlier on PATH (pyenv) may not. */
export const PROMETHEUS_PARSER_PYTHON = "/usr/bin/python3";

export interface MetricSample {
  /** With its suffix: `x_total`, `x_bucket`, ... */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  /** As the parser names it: a counter's without `_total`. */
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: readonly MetricSample[];
}

// JSON has no NaN or infinities (HAProxy writes NaN for unset values): those travel as text.
const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = [{"name": f.name, "type": f.type, "help": f.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else "NaN" if math.isnan(s.value) else "Infinity" if s.value > 0 else "-Infinity"} for s in f.samples]}
       for f in text_string_to_metric_families(sys.stdin.read())]
json.dump(out, sys.stdout)
`;

/** Parses exposition text; throws with the parser's own error when it is not valid. */
export async function parseExposition(text: string): Promise<MetricFamily[]> {
  const r = await run([PROMETHEUS_PARSER_PYTHON, "-c", SCRIPT], { input: text, allowFailure: true, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`the Prometheus parser refused the exposition: ${r.stderr.trim().split("\n").at(-1)}`);
  const raw = JSON.parse(r.stdout) as { name: string; type: string; help: string; samples: { name: string; labels: Record<string, string>; value: number | string }[] }[];
  return raw.map((f) => ({ ...f, samples: f.samples.map((s) => ({ ...s, value: typeof s.value === "number" ? s.value : Number(s.value) })) }));
}

/** Every sample named `name` whose labels include `labels`. */
export function samplesOf(families: readonly MetricFamily[], name: string, labels: Readonly<Record<string, string>> = {}): MetricSample[] {
  return families.flatMap((f) => f.samples).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` with `labels`; undefined when there is none, an error when there are several. */
export function sampleValue(families: readonly MetricFamily[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const found = samplesOf(families, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}; name more labels`);
  return found[0]?.value;
}
