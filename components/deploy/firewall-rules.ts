// The Hetzner Cloud Firewall of one host, derived from the public half of its plan.
// Private rules are not here: Hetzner's firewall does not filter private networks, so
// those are enforced by nftables on the host (render/).
// Pure: no Pulumi import.
import type { FirewallRule, HostPlan } from "../../topology";

/** The shape of hcloud.FirewallRule with plain values. */
export interface CloudFirewallRule {
  readonly direction: "in";
  readonly protocol: "tcp";
  readonly port: string;
  readonly sourceIps: string[];
  readonly description: string;
}

const DESCRIPTIONS: Readonly<Record<FirewallRule["purpose"], string>> = {
  http: "HTTP to the LB (redirects to HTTPS)",
  https: "HTTPS to the LB (TLS passthrough)",
  stats: "LB stats page",
  metrics: "LB Prometheus metrics (private network only)",
  site: "site listener",
  acme: "ACME http-01 responder",
  ssh: "SSH for admins and deploys",
};

/**
 * Inbound rules only: a Hetzner firewall with inbound rules drops every other inbound
 * packet, and leaving out outbound rules keeps outbound open (package and image pulls).
 */
export function cloudFirewallRules(host: HostPlan): CloudFirewallRule[] {
  return host.firewall
    .filter((r) => r.scope === "public")
    .map((r) => ({ direction: "in", protocol: "tcp", port: String(r.port), sourceIps: [...r.sources], description: DESCRIPTIONS[r.purpose] }));
}
