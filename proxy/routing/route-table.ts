/**
 * Host name -> backend name. Exact names win over wildcards; among wildcards
 * the longest suffix wins. `*.example.com` matches any name with one or more
 * labels in front of `example.com` but not `example.com` itself.
 */
import { normaliseHostname } from "../../topology/hostname";

export interface RouteEntry {
  readonly host: string;
  readonly backend: string;
}

export type HostPattern =
  | { readonly kind: "exact"; readonly name: string }
  | { readonly kind: "wildcard"; readonly suffix: string };

export type HostPatternResult = { readonly ok: true; readonly pattern: HostPattern } | { readonly ok: false; readonly reason: string };

/**
 * A configured host, checked by the same rules the stack config uses (topology/hostname.ts),
 * so a name the topology accepts is one the proxy routes, and both normalise it identically.
 */
export function checkHostPattern(host: string): HostPatternResult {
  const result = normaliseHostname(host, { allowWildcard: true });
  if (!result.ok) return result;
  const name = result.hostname;
  return { ok: true, pattern: name.startsWith("*.") ? { kind: "wildcard", suffix: name.slice(2) } : { kind: "exact", name } };
}

/** Parses a configured host; null when it is not a name we could ever route. */
export function parseHostPattern(host: string): HostPattern | null {
  const result = checkHostPattern(host);
  return result.ok ? result.pattern : null;
}

/** One key per routed name: `a.example` and `*.example` are different keys, case and a trailing dot are not. */
export function hostPatternKey(pattern: HostPattern): string {
  return pattern.kind === "exact" ? pattern.name : `*.${pattern.suffix}`;
}

export class RouteTable {
  private readonly exact = new Map<string, string>();
  private readonly wildcard = new Map<string, string>();

  constructor(routes: readonly RouteEntry[]) {
    for (const route of routes) {
      const pattern = parseHostPattern(route.host);
      if (pattern === null) throw new Error(`invalid route host: ${route.host}`);
      const [map, key] = pattern.kind === "exact" ? [this.exact, pattern.name] : [this.wildcard, pattern.suffix];
      if (map.has(key)) throw new Error(`duplicate route host: ${route.host}`);
      map.set(key, route.backend);
    }
  }

  /** `name` must already be normalised. */
  lookup(name: string): string | null {
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    // Walk suffixes from the longest: a.b.example.com -> b.example.com -> example.com.
    for (let dot = name.indexOf("."); dot >= 0; dot = name.indexOf(".", dot + 1)) {
      const backend = this.wildcard.get(name.slice(dot + 1));
      if (backend !== undefined) return backend;
    }
    return null;
  }
}
