// Pulumi keeps stack config as "<namespace>:<key>" pairs; the schema sees plain keys.
import { stackConfigSchema } from "./schema";

export const PROJECT = "hetzner-ingress";

/** The top-level keys a stack may set in the project namespace. */
export const CONFIG_KEYS = Object.keys(stackConfigSchema.shape) as ReadonlyArray<keyof typeof stackConfigSchema.shape>;

/**
 * Picks this project's keys out of a Pulumi.<stack>.yaml `config:` map. Keys of other
 * namespaces (hcloud:token) are left alone; an unknown key in our namespace is kept so
 * that the schema reports it instead of it being silently ignored.
 */
export function projectConfig(config: Readonly<Record<string, unknown>>, namespace: string = PROJECT): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const colon = key.indexOf(":");
    const ns = colon < 0 ? namespace : key.slice(0, colon);
    if (ns !== namespace) continue;
    const name = colon < 0 ? key : key.slice(colon + 1);
    // Secret keys (statsPassword, TLS PEMs) are read by the program through pulumi.Config, not the schema.
    if (isSecureValue(value)) continue;
    out[name] = value;
  }
  return out;
}

function isSecureValue(value: unknown): boolean {
  return typeof value === "object" && value !== null && "secure" in value;
}
