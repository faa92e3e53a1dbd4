import { test } from "node:test";
import assert from "node:assert/strict";
import { loadTopology } from "../../scripts/stack-files";
import { planStack, type HostPlan } from "../../topology";
import { cloudFirewallRules } from "../../components/deploy/firewall-rules";

const prod = planStack(loadTopology("prod"));
const demo = planStack(loadTopology("demo"));
const host = (hosts: readonly HostPlan[], name: string) => hosts.find((h) => h.name === name)!;

test("the LB's cloud firewall: 80/443 from anywhere, stats and SSH from their CIDRs, nothing else (metrics are private)", () => {
  assert.ok(host(prod.hosts, "loadbalancer").firewall.some((r) => r.purpose === "metrics" && r.scope === "private"), "the plan has the metrics rule to leave out");
  assert.deepEqual(cloudFirewallRules(host(prod.hosts, "loadbalancer")), [
    { direction: "in", protocol: "tcp", port: "80", sourceIps: ["0.0.0.0/0", "::/0"], description: "HTTP to the LB (redirects to HTTPS)" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0", "::/0"], description: "HTTPS to the LB (TLS passthrough)" },
    { direction: "in", protocol: "tcp", port: "8404", sourceIps: ["198.51.100.7/32"], description: "LB stats page" },
    { direction: "in", protocol: "tcp", port: "22", sourceIps: ["198.51.100.7/32"], description: "SSH for admins and deploys" },
  ]);
});

test("a web server's cloud firewall is SSH from the admin CIDRs only; its site ports are private (nftables)", () => {
  const ssh = [{ direction: "in", protocol: "tcp", port: "22", sourceIps: ["198.51.100.7/32"], description: "SSH for admins and deploys" }];
  for (const name of ["monitoring", "frontend", "backend"]) assert.deepEqual(cloudFirewallRules(host(prod.hosts, name)), ssh, name);
  const web = host(demo.hosts, "demo");
  assert.ok(web.firewall.some((r) => r.scope === "private" && r.port === 8443), "the plan has private rules to leave out");
  assert.deepEqual(cloudFirewallRules(web), ssh);
});
