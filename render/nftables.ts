// The host firewall: one nftables table of our own, `inet ingress`, replaced as a whole on every
// load. Hetzner's cloud firewall does not filter private networks, so this is the only thing that
// keeps anyone but the LB from a PROXY listener (whoever reaches one can forge a client address).
// Pure: the same plan gives byte-identical text.
import { Cidr, parseCidr } from "../topology/ip";
import type { FirewallRule, HostPlan } from "../topology";

export const NFT_TABLE = "ingress";

interface SourceSets {
  readonly anyV4: boolean;
  readonly anyV6: boolean;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/**
 * Splits a rule's sources by family. nft rejects an anonymous set whose intervals overlap, and
 * CIDRs overlap only by nesting, so a source inside a wider one is left out.
 */
export function sourceSets(sources: readonly string[]): SourceSets {
  const parsed: Cidr[] = sources.map((text) => {
    const c = parseCidr(text.includes("/") ? text : `${text}/${text.includes(":") ? 128 : 32}`);
    if (typeof c === "string") throw new Error(`firewall source ${c}`);
    return c;
  });
  const covers = (wide: Cidr, narrow: Cidr): boolean => {
    if (wide.family !== narrow.family || wide.prefix > narrow.prefix) return false;
    const bits = wide.family === 4 ? 32 : 128;
    const shift = BigInt(bits - wide.prefix);
    return BigInt(wide.base) >> shift === BigInt(narrow.base) >> shift;
  };
  const kept = parsed.filter(
    (c, i) => !parsed.some((other, j) => j !== i && covers(other, c) && (other.prefix < c.prefix || j < i)),
  );
  const anyV4 = kept.some((c) => c.family === 4 && c.prefix === 0);
  const anyV6 = kept.some((c) => c.family === 6 && c.prefix === 0);
  return {
    anyV4,
    anyV6,
    v4: anyV4 ? [] : kept.filter((c) => c.family === 4).map((c) => c.text),
    v6: anyV6 ? [] : kept.filter((c) => c.family === 6).map((c) => c.text),
  };
}

function ruleLines(rule: FirewallRule): string[] {
  const comment = ` comment "${rule.purpose}"`;
  const port = `tcp dport ${rule.port}`;
  const s = sourceSets(rule.sources);
  if (s.anyV4 && s.anyV6) return [`${port} accept${comment}`];
  const lines: string[] = [];
  if (s.anyV4) lines.push(`meta nfproto ipv4 ${port} accept${comment}`);
  else if (s.v4.length > 0) lines.push(`${port} ip saddr { ${s.v4.join(", ")} } accept${comment}`);
  if (s.anyV6) lines.push(`meta nfproto ipv6 ${port} accept${comment}`);
  else if (s.v6.length > 0) lines.push(`${port} ip6 saddr { ${s.v6.join(", ")} } accept${comment}`);
  // No source at all (e.g. stats without allowed CIDRs): the port stays closed.
  if (lines.length === 0) lines.push(`# ${rule.purpose} port ${rule.port}: no allowed source, closed`);
  return lines;
}

/** /srv/ingress/current/nftables/ingress.nft: load with `nft -f`; loading it again is a no-op. */
export function renderNftables(host: HostPlan): string {
  const input = [
    "type filter hook input priority filter; policy drop;",
    "ct state established,related accept",
    "ct state invalid drop",
    'iif "lo" accept',
    "# All ICMP: ping, path MTU discovery (the private networks run MTU 1450), errors.",
    "meta l4proto icmp accept",
    "# All ICMPv6, including neighbour discovery and router advertisements, without which IPv6 stops.",
    "meta l4proto ipv6-icmp accept",
    "# DHCP replies: Hetzner hands out the public IPv4 and the private addresses by DHCP.",
    "udp sport 67 udp dport 68 accept",
    ...host.firewall.flatMap(ruleLines),
  ];
  return [
    `# nftables for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "#",
    `# Only table inet ${NFT_TABLE} is touched: declaring it and deleting it before defining it makes`,
    "# the load atomic and repeatable, and leaves every other table (podman's, netavark's) alone.",
    "# No forward chain: this host forwards nothing of ours, and one would break container networks.",
    "",
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    "",
    `table inet ${NFT_TABLE} {`,
    "\tchain input {",
    ...input.map((l) => `\t\t${l}`),
    "\t}",
    "}",
    "",
  ].join("\n");
}
