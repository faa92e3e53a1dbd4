// What `up` prints: where everything is and how to reach it from a client namespace.
import { formatDuration } from "../topology/duration";
import type { HealthCheck } from "./ingress-plan";
import { servedRows } from "./ingress-plan";
import { INTERNET, type IngressSandbox } from "./ingress-sandbox";

function hc(h: HealthCheck): string {
  return `interval ${formatDuration(h.interval)}, timeout ${formatDuration(h.timeout)}, fall ${h.fall}, rise ${h.rise}`;
}

export function describeSandbox(s: IngressSandbox): string[] {
  const p = s.plan;
  const ns = s.namespaces();
  const lbIps = [`${INTERNET.lb4}`, INTERNET.lb6, ...p.lbNetworks.map((n) => `${n.network} ${n.ip}`)].join(", ");
  const lines = [
    `stacks ${p.stacks === "all" ? "prod + demo (attached to prod's LB)" : p.stacks}, engine ${p.engine}`,
    `health checks: ${hc(p.healthCheck)} (sandbox override; Pulumi.prod.yaml says ${hc(p.configuredHealthCheck)})`,
    "",
    "hosts (network namespaces):",
    `  ${p.lb.name.padEnd(12)} ${ns[p.lb.name]}  ${lbIps}  ${p.engine} pid ${s.lb.process.pid}`,
  ];
  for (const [name, w] of s.web) {
    const ips = w.plan.privateIps.map((i) => `${i.network} ${i.ip}`).join(", ");
    lines.push(`  ${name.padEnd(12)} ${ns[name]}  ${ips}  nginx pid ${w.nginx?.pid ?? "-"}`);
  }
  lines.push(
    `  ${"client".padEnd(12)} ${ns["client"]}  ${INTERNET.client4}, ${INTERNET.client6}`,
    `  ${"client2".padEnd(12)} ${ns["client2"]}  ${INTERNET.client2}`,
    `  ${"admin".padEnd(12)} ${ns["admin"]}  ${INTERNET.admin} (stats.allowedCidrs)`,
    `  ${"intruder".padEnd(12)} ${ns["intruder"]}  ${s.intruderAddresses.join(", ")} (inside the private networks, not the LB)`,
    "",
  );
  const missing = p.routing.filter((r) => !s.web.has(r.server));
  if (missing.length > 0) lines.push(`not running here (their backends stay DOWN): ${[...new Set(missing.map((r) => r.server))].join(", ")}`, "");
  lines.push("try:");
  for (const r of servedRows(p)) {
    lines.push(`  ip netns exec ${ns["client"]} curl --resolve ${r.hostname}:443:${INTERNET.lb4} -k https://${r.hostname}/`);
  }
  const stats = p.lb.ingress?.stats;
  if (stats?.enabled) {
    lines.push(
      `  ip netns exec ${ns["admin"]} curl -u ${s.stats.user}:${s.stats.password} http://${INTERNET.lb4}:${stats.port}/stats`,
      "",
      `stats: user ${s.stats.user}, password ${s.stats.password} (generated; in ${s.lbRoot.path("/srv/ingress/secrets/stats.env")})`,
    );
  }
  lines.push(`files: ${s.sb.dir}/hosts/<host>/ (each host's /), daemon logs in ${s.sb.logDir}`);
  return lines;
}
