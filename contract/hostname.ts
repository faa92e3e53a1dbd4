// The hostname rules both sides of the render <-> proxy contract share: what a routable SNI
// name is (validation, rendering, the LB's policy) and what a route's host pattern is (the
// proxy's config schema and route table). Pure.

export type HostnameResult = { readonly ok: true; readonly hostname: string } | { readonly ok: false; readonly reason: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Lowercases and strips one trailing dot, then rejects what can never be a routable SNI name:
 * IP literals (RFC 6066 forbids them in SNI), underscores, empty labels, and non-ASCII
 * (IDNs arrive on the wire as A-labels, so a U-label in config can never match).
 * A leading "*." is accepted only when wildcards are allowed.
 */
export function normaliseHostname(input: string, options: { readonly allowWildcard?: boolean } = {}): HostnameResult {
  // Before lowercasing: Unicode case folding turns some non-ASCII letters into ASCII ones
  // (the Kelvin sign U+212A becomes "k"), which would smuggle a lookalike name through.
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(input)) return { ok: false, reason: "it contains non-ASCII characters; write internationalised names as A-labels (xn--...)" };
  let name = input.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length === 0) return { ok: false, reason: "it is empty" };
  if (name.length > 253) return { ok: false, reason: "it is longer than 253 characters" };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return { ok: false, reason: "it contains control characters" };
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name) || name.includes(":") || name.startsWith("[")) {
    return { ok: false, reason: "it is an IP literal; TLS clients never send an address as SNI, use a DNS name" };
  }
  let labels = name.split(".");
  if (labels[0] === "*") {
    if (!options.allowWildcard) return { ok: false, reason: "wildcards are not allowed here" };
    labels = labels.slice(1);
    if (labels.length < 2) return { ok: false, reason: "a wildcard needs at least two labels after \"*.\"" };
  }
  for (const label of labels) {
    if (label.length === 0) return { ok: false, reason: "it has an empty label (\"..\" or a leading dot)" };
    if (label.includes("_")) return { ok: false, reason: `label "${label}" contains an underscore, which is not valid in a hostname` };
    if (!LABEL.test(label)) return { ok: false, reason: `label "${label}" must be 1-63 letters, digits or inner hyphens` };
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) return { ok: false, reason: "its last label is numeric, so it is not a DNS name" };
  return { ok: true, hostname: name };
}

export type HostPattern =
  | { readonly kind: "exact"; readonly name: string }
  | { readonly kind: "wildcard"; readonly suffix: string };

export type HostPatternResult = { readonly ok: true; readonly pattern: HostPattern } | { readonly ok: false; readonly reason: string };

/**
 * A configured route host, checked by the same rules as the stack config's hostnames, so a
 * name the topology accepts is one the proxy routes, and both normalise it identically.
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
