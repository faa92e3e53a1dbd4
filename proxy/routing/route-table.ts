/**
 * Host name -> backend name. Exact names win over wildcards; among wildcards
 * the longest suffix wins. `*.example.com` matches any name with one or more
 * labels in front of `example.com` but not `example.com` itself.
 */
import { parseHostPattern } from "../../contract/hostname";

export interface RouteEntry {
  readonly host: string;
  readonly backend: string;
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
