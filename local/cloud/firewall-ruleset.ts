// Hetzner Cloud firewalls as the local cloud enforces them: in front of each server, on the
// router every public packet crosses, never inside the server (a host's own nft ruleset does
// not show them, as on Hetzner). Semantics modelled (docs.hetzner.com, Cloud Firewalls):
// inbound traffic to a server with at least one firewall is dropped unless a rule of one of its
// firewalls allows it; replies to the server's own connections pass (stateful); outbound
// rules are not modelled (the program sets none). Pure: no I/O.

export interface FirewallRule {
  readonly direction: string;
  readonly protocol: string;
  readonly port?: string;
  readonly sourceIps?: readonly string[];
}

export interface GuardedServer {
  readonly serverId: number;
  /** The router's interface toward the server's public address. */
  readonly link: string;
  readonly rules: readonly FirewallRule[];
}

export const FIREWALL_TABLE = "hcloud_firewalls";

function portMatch(port: string | undefined): string {
  if (port === undefined || port === "any") return "";
  if (!/^\d+(-\d+)?$/.test(port)) throw new Error(`firewall rule port "${port}" is not N or N-M`);
  return ` th dport ${port}`;
}

function ruleLines(rule: FirewallRule): string[] {
  if (rule.direction !== "in") return [];
  const sources = rule.sourceIps ?? [];
  const v4 = sources.filter((s) => !s.includes(":"));
  const v6 = sources.filter((s) => s.includes(":"));
  const l4 =
    rule.protocol === "tcp" || rule.protocol === "udp"
      ? `meta l4proto ${rule.protocol}${portMatch(rule.port)}`
      : rule.protocol === "icmp"
        ? "meta l4proto { icmp, ipv6-icmp }"
        : undefined;
  if (l4 === undefined) throw new Error(`firewall rule protocol "${rule.protocol}" is not modelled (tcp, udp, icmp)`);
  const lines: string[] = [];
  if (v4.length > 0) lines.push(`ip saddr { ${v4.join(", ")} } ${l4} accept`);
  if (v6.length > 0) lines.push(`ip6 saddr { ${v6.join(", ")} } ${l4} accept`);
  return lines;
}

/** The whole table, replacing the previous one in one transaction. */
export function firewallRuleset(servers: readonly GuardedServer[]): string {
  const guarded = [...servers].sort((a, b) => a.serverId - b.serverId);
  const chains = guarded.map((s) =>
    [`  chain server_${s.serverId} {`, ...s.rules.flatMap(ruleLines).map((l) => `    ${l}`), "    counter drop", "  }"].join("\n"),
  );
  return [
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    "    ct state established,related accept",
    ...guarded.map((s) => `    oifname "${s.link}" jump server_${s.serverId}`),
    "  }",
    ...chains,
    "}",
    "",
  ].join("\n");
}
