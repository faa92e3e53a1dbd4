import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { demoWithCertbotPlan } from "../render/validators/plans";
import { assembleRoutingTable, HostPlan, planStack, RouteFragment, validateStackConfig } from "../../topology";
import { validConfig } from "./fixtures";

const prod = planStack(loadTopology("prod"));
const demo = planStack(loadTopology("demo"));

function host(plan: { hosts: readonly HostPlan[] }, name: string): HostPlan {
  const h = plan.hosts.find((x) => x.name === name);
  assert.ok(h, `no host ${name}`);
  return h;
}

test("the plans of prod and demo together reproduce the original routing table", () => {
  const lb = host(prod, "loadbalancer");
  assert.ok(demo.attach, "demo attaches to prod's LB");
  const table = assembleRoutingTable([lb.ingress!.fragment, demo.attach.fragment]).map((r) => [r.hostname, r.server, `${r.address}:${r.port}`]);
  // The table in DESIGN.md, row for row.
  assert.deepEqual(table, [
    ["monitoring.fiscalismia.com", "monitoring", "172.24.0.2:443"],
    ["fiscalismia.com", "frontend", "172.24.0.3:443"],
    ["backend.fiscalismia.com", "backend", "172.24.0.4:443"],
    ["demo.fiscalismia.com", "demo", "172.20.0.2:443"],
    ["backend.demo.fiscalismia.com", "demo", "172.20.0.2:8443"],
  ]);
});

test("prod owns one LB at 172.24.1.3 and three web servers; demo owns one web server", () => {
  assert.deepEqual(prod.hosts.map((h) => [h.name, h.role, h.privateIps]), [
    ["loadbalancer", "ingress", [{ network: "prod", ip: "172.24.1.3" }]],
    ["monitoring", "web", [{ network: "prod", ip: "172.24.0.2" }]],
    ["frontend", "web", [{ network: "prod", ip: "172.24.0.3" }]],
    ["backend", "web", [{ network: "prod", ip: "172.24.0.4" }]],
  ]);
  assert.equal(prod.attach, undefined);
  assert.deepEqual(demo.hosts.map((h) => [h.name, h.role, h.privateIps]), [["demo", "web", [{ network: "demo", ip: "172.20.0.2" }]]]);
  assert.deepEqual({ stack: demo.attach!.stack, network: demo.attach!.network, ip: demo.attach!.ip }, { stack: "prod", network: "demo", ip: "172.20.1.3" });
});

test("the LB accepts 80 and 443 from anywhere, stats and SSH only from their CIDRs, metrics only from the monitoring server", () => {
  assert.deepEqual(host(prod, "loadbalancer").firewall, [
    { port: 80, sources: ["0.0.0.0/0", "::/0"], purpose: "http", scope: "public" },
    { port: 443, sources: ["0.0.0.0/0", "::/0"], purpose: "https", scope: "public" },
    { port: 8404, sources: ["198.51.100.7/32"], purpose: "stats", scope: "public" },
    // Private: never in the cloud firewall, so never open on the public address.
    { port: 8405, sources: ["172.24.0.2/32"], purpose: "metrics", scope: "private" },
    { port: 22, sources: ["198.51.100.7/32"], purpose: "ssh", scope: "public" },
  ]);
});

test("metrics listen on the LB's private address only; named scrapers resolve to their address in a network the LB is in", () => {
  const lb = host(prod, "loadbalancer");
  assert.deepEqual(lb.ingress!.metrics, { port: 8405, path: "/metrics", addresses: ["172.24.1.3"], scrapers: ["172.24.0.2/32"] });
  assert.deepEqual(lb.listens.filter((l) => l.purpose === "metrics"), [{ port: 8405, purpose: "metrics", by: "haproxy", address: "172.24.1.3" }]);
  const cfg = validConfig();
  cfg.networks.push({ name: "ops", ipRange: "10.50.0.0/16", subnets: [{ ipRange: "10.50.0.0/24" }] });
  cfg.servers[0].networks.ops = "10.50.0.3";
  cfg.ingress.server.networks.ops = "10.50.0.9";
  cfg.ingress.metrics = { enabled: true, scrapers: ["frontend", "10.50.0.7", "172.24.0.0/28", "frontend"] };
  const plan = planStack(validateStackConfig("t", cfg));
  assert.deepEqual(plan.hosts[0]!.ingress!.metrics, {
    port: 8405,
    path: "/metrics",
    addresses: ["172.24.1.3", "10.50.0.9"],
    // frontend from both its networks, once; a bare address is that host.
    scrapers: ["172.24.0.3/32", "10.50.0.3/32", "10.50.0.7/32", "172.24.0.0/28"],
  });
  cfg.ingress.metrics = { enabled: false, scrapers: ["frontend"] };
  const off = planStack(validateStackConfig("t", cfg)).hosts[0]!;
  assert.equal(off.ingress!.metrics, undefined);
  assert.deepEqual(off.firewall.filter((r) => r.purpose === "metrics"), []);
});

test("a web server accepts its site ports and its ACME responder only from the LB's private IP in its network", () => {
  assert.deepEqual(host(demo, "demo").firewall, [
    { port: 443, sources: ["172.20.1.3/32"], purpose: "site", scope: "private" },
    { port: 8443, sources: ["172.20.1.3/32"], purpose: "site", scope: "private" },
    { port: 8402, sources: ["172.20.1.3/32"], purpose: "acme", scope: "private" },
    { port: 22, sources: ["198.51.100.7/32"], purpose: "ssh", scope: "public" },
  ]);
  for (const name of ["monitoring", "frontend", "backend"]) {
    const h = host(prod, name);
    assert.deepEqual(h.web!.realIpFrom, ["172.24.1.3"]);
    assert.deepEqual(h.firewall[0], { port: 443, sources: ["172.24.1.3/32"], purpose: "site", scope: "private" });
  }
  assert.deepEqual(host(demo, "demo").web!.realIpFrom, ["172.20.1.3"]);
});

test("every LB backend checks its own site's health path with that site's SNI", () => {
  const fragment = demo.attach!.fragment;
  assert.deepEqual(fragment.backends, [
    { name: "demo_demo_443", servers: [{ name: "demo", address: "172.20.0.2", port: 443, acmePort: 8402 }], check: { sni: "demo.fiscalismia.com", path: "/healthz" } },
    { name: "demo_demo_8443", servers: [{ name: "demo", address: "172.20.0.2", port: 8443, acmePort: 8402 }], check: { sni: "backend.demo.fiscalismia.com", path: "/healthz" } },
  ]);
});

test("the LB runs haproxy with host networking friendly mounts and the stats env file as a secret file", () => {
  const lb = host(prod, "loadbalancer");
  assert.deepEqual(lb.containers.map((c) => [c.name, c.reloadSignal, c.envFile]), [["haproxy", "USR2", "/srv/ingress/secrets/stats.env"]]);
  assert.deepEqual(lb.secretFiles, [
    { path: "/srv/ingress/secrets/stats.env", from: { kind: "stats-env", user: "admin", secretKey: "statsPassword" } },
    // sshd's extra authorized_keys: demo's routes key, bound to its forced command.
    { path: "/srv/ingress/secrets/ssh/authorized_keys", from: { kind: "attached-keys", stacks: ["demo"] } },
  ]);
  assert.deepEqual(lb.files.map((f) => f.path), [
    "/srv/ingress/current/haproxy/haproxy.cfg",
    "/srv/ingress/current/haproxy/routes.d/prod.cfg",
    "/srv/ingress/current/haproxy/routes.d/prod.map",
    "/srv/ingress/current/haproxy/errors/503.http",
    "/etc/containers/systemd/haproxy.container",
    "/srv/ingress/current/nftables/ingress.nft",
    "/srv/ingress/current/apply.plan",
    // demo may attach: the owner's policy for its routes data and the image to render it in.
    "/srv/ingress/current/attached/policy.json",
    "/srv/ingress/current/attached/node-image",
  ]);
});

test("certificates from the host are read through a link, from certbot's tree or a self-signed stand-in", () => {
  const d = host(demoWithCertbotPlan(), "demo");
  const tls = "/srv/ingress/secrets/tls";
  assert.deepEqual(
    d.web!.sites.map((s) => [s.site.hostname, s.cert, s.key, s.certDelivery, s.hostCert]),
    ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"].map((h) => [
      h,
      `${tls}/live/${h}/fullchain.pem`,
      `${tls}/live/${h}/privkey.pem`,
      "host",
      { link: `${tls}/live/${h}`, real: `/etc/letsencrypt/live/${h}`, standin: `${tls}/standin/${h}`, certFile: "fullchain.pem", keyFile: "privkey.pem" },
    ]),
  );
  // The stand-ins are the only secret files: one self-signed pair per site, naming its host.
  assert.deepEqual(
    d.secretFiles.map((f) => [f.path, f.from.kind, f.from.kind === "stats-env" || f.from.kind === "attached-keys" || f.from.kind === "acme-env" ? undefined : [f.from.source, ...f.from.hostnames]]),
    ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"].flatMap((h) => [
      [`${tls}/standin/${h}/fullchain.pem`, "tls-cert", ["self-signed", h]],
      [`${tls}/standin/${h}/privkey.pem`, "tls-key", ["self-signed", h]],
    ]),
  );
  // nginx reads apply.sh's checked copies under /srv/ingress, never certbot's tree itself.
  assert.deepEqual(d.containers[0]!.mounts.map((m) => m.host), ["/srv/ingress", "/var/www/acme"]);
  assert.ok(d.files.some((f) => f.path === "/srv/ingress/current/tls/host-certs" && f.kind === "host-certs"));
});

test("the standalone example owns a ts-engine LB with self-signed listener certificates", () => {
  const ex = planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml")));
  const lb = host(ex, "lb");
  assert.equal(lb.ingress!.engine, "ts");
  assert.equal(lb.containers[0]!.name, "proxy");
  const web = host(ex, "web");
  assert.deepEqual(web.secretFiles.map((f) => [f.path, f.from.kind]), [
    ["/srv/ingress/secrets/tls/port-443/fullchain.pem", "tls-cert"],
    ["/srv/ingress/secrets/tls/port-443/privkey.pem", "tls-key"],
    ["/srv/ingress/secrets/tls/port-8443/fullchain.pem", "tls-cert"],
    ["/srv/ingress/secrets/tls/port-8443/privkey.pem", "tls-key"],
  ]);
});

test("a listener shared by two sites gets one self-signed certificate naming both", () => {
  const c = validConfig();
  c.sites.push({ hostname: "www.fiscalismia.com", server: "frontend", port: 443, tls: { source: "self-signed" } });
  const frontend = host(planStack(validateStackConfig("t", c)), "frontend");
  const cert = frontend.secretFiles.find((f) => f.from.kind === "tls-cert")!;
  assert.ok(cert.from.kind === "tls-cert");
  assert.deepEqual(cert.from.hostnames, ["fiscalismia.com", "www.fiscalismia.com"]);
});

test("two stacks claiming one hostname cannot be assembled", () => {
  const clash: RouteFragment = {
    stack: "demo2",
    backends: [{ name: "demo2_x_443", servers: [{ name: "x", address: "172.20.0.9", port: 443 }], check: { sni: "fiscalismia.com", path: "/healthz" } }],
    routes: [{ hostname: "fiscalismia.com", backend: "demo2_x_443" }],
  };
  assert.throws(
    () => assembleRoutingTable([host(prod, "loadbalancer").ingress!.fragment, clash]),
    { message: 'routes cannot be assembled:\n  - hostname "fiscalismia.com" is claimed by stack "prod" and stack "demo2"; remove it from one of them' },
  );
});

test("planning is deterministic", () => {
  assert.deepEqual(planStack(loadTopology("prod")), prod);
});
