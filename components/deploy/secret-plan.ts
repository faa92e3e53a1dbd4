// Which secrets a stack needs and how its secret files group. Pure: no Pulumi import.
import type { HostPlan, SecretFilePlan, StackPlan } from "../../topology";
import { keyOf } from "./names";

/** Secret config keys the plan reads (stats password, provided TLS PEMs), sorted, once each. */
export function requiredSecretKeys(plan: StackPlan): string[] {
  const keys = new Set<string>();
  for (const host of plan.hosts) {
    for (const file of host.secretFiles) {
      const from = file.from;
      if (from.kind === "attached-keys") continue;
      if (from.kind === "acme-env") {
        for (const v of from.vars) if (v.secretKey !== undefined) keys.add(v.secretKey);
        continue;
      }
      if (from.secretKey !== undefined) keys.add(from.secretKey);
    }
  }
  return [...keys].sort();
}

/**
 * Keys in the project namespace that neither the schema nor the plan's secrets read: almost
 * always a misspelling, which would otherwise be silently ignored.
 */
export function unknownConfigKeys(namespacedKeys: readonly string[], namespace: string, known: readonly string[], plan: StackPlan): string[] {
  const allowed = new Set([...known, ...requiredSecretKeys(plan)]);
  return namespacedKeys
    .filter((k) => k.startsWith(`${namespace}:`))
    .map((k) => k.slice(namespace.length + 1))
    .filter((k) => !allowed.has(k))
    .sort();
}

export function unknownKeysMessage(stack: string, unknown: readonly string[], known: readonly string[]): string {
  return `stack "${stack}" sets config key${unknown.length === 1 ? "" : "s"} that nothing reads: ${unknown.join(", ")}; check the spelling (known keys: ${known.join(", ")}) or remove ${unknown.length === 1 ? "it" : "them"}`;
}

export function missingSecretsMessage(stack: string, missing: readonly string[]): string {
  const lines = missing.map((key) => `  pulumi config set --secret ${key} <value> -s ${stack}`);
  return `stack "${stack}" needs ${missing.length === 1 ? "a secret that is" : "secrets that are"} not set; set ${missing.length === 1 ? "it" : "them"} with:\n${lines.join("\n")}`;
}

/** A self-signed certificate and its key, written side by side for one nginx listener. */
export interface SelfSignedPair {
  /** Stable key for Pulumi names, from the directory (e.g. "port-443"). */
  readonly key: string;
  readonly hostnames: readonly string[];
  readonly certPath: string;
  readonly keyPath: string;
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

type TlsFileSource = Extract<SecretFilePlan["from"], { kind: "tls-cert" | "tls-key" }>;
const isTlsFile = (from: SecretFilePlan["from"]): from is TlsFileSource => from.kind === "tls-cert" || from.kind === "tls-key";

export function selfSignedPairs(host: HostPlan): SelfSignedPair[] {
  const byDir = new Map<string, { cert?: SecretFilePlan; key?: SecretFilePlan }>();
  for (const file of host.secretFiles) {
    const from = file.from;
    if (!isTlsFile(from) || from.source !== "self-signed") continue;
    const entry = byDir.get(dirOf(file.path)) ?? {};
    if (from.kind === "tls-cert") entry.cert = file;
    else entry.key = file;
    byDir.set(dirOf(file.path), entry);
  }
  return [...byDir.entries()].map(([dir, { cert, key }]) => {
    if (!cert || !key || !isTlsFile(cert.from)) throw new Error(`host ${host.name}: self-signed certificate in ${dir} lacks its cert or key file`);
    return { key: keyOf(dir.slice(dir.lastIndexOf("/") + 1)), hostnames: cert.from.hostnames, certPath: cert.path, keyPath: key.path };
  });
}
