// Stack config as Pulumi hands it to a program: from Pulumi.<stack>.yaml, namespaced keys,
// structured values as JSON and scalars as text.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export function configFromYaml(file: string): Record<string, string> {
  const doc = parse(readFileSync(file, "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** Names of the secret config values the stack's config refers to (stats password, provided TLS). */
export function secretNamesOf(config: Record<string, string>, project = "hetzner-ingress"): string[] {
  const names = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === "object" && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (["passwordSecret", "certSecret", "keySecret"].includes(k) && typeof x === "string") names.add(x);
        else visit(x);
      }
    }
  };
  for (const [k, v] of Object.entries(config)) {
    if (!k.startsWith(`${project}:`)) continue;
    try {
      visit(JSON.parse(v));
    } catch {
      // a scalar
    }
  }
  return [...names];
}
