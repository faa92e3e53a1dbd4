import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { HostPlan, planStack, StackPlan } from "../../topology";
import { renderNftables, sourceSets } from "../../render/nftables";
import { waitForListening } from "../../lab/daemons";
import type { Netns } from "../../lab/netns";
import { withSandbox } from "./validators/sandbox";

const prod = planStack(loadTopology("prod"));
const demo = planStack(loadTopology("demo"));
const standalone = planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples/Pulumi.standalone-demo.yaml")));
const allHosts = [prod, demo, standalone].flatMap((p: StackPlan) => p.hosts);

function host(plan: StackPlan, name: string): HostPlan {
  const h = plan.hosts.find((x) => x.name === name);
  assert.ok(h, `no host ${name}`);
  return h;
}

/** The accept rules of the input chain, without comments. */
function rules(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^(tcp|meta nfproto)/.test(l))
    .map((l) => l.replace(/ comment "[^"]*"$/, ""));
}

test("sources split into IPv4 and IPv6 sets; /0 means any; nested CIDRs collapse", () => {
  assert.deepEqual(sourceSets(["0.0.0.0/0", "::/0"]), { anyV4: true, anyV6: true, v4: [], v6: [] });
  assert.deepEqual(sourceSets(["10.0.0.0/8", "2001:db8::/32", "10.1.0.0/16", "192.0.2.7/32", "10.0.0.0/8"]), {
    anyV4: false,
    anyV6: false,
    v4: ["10.0.0.0/8", "192.0.2.7/32"],
    v6: ["2001:db8::/32"],
  });
  assert.deepEqual(sourceSets(["0.0.0.0/0", "10.0.0.0/8", "2001:db8::1"]), { anyV4: true, anyV6: false, v4: [], v6: ["2001:db8::1/128"] });
  assert.throws(() => sourceSets(["10.0.0.1/8"]), /host bits/);
});

test("the LB accepts 80 and 443 from anywhere, stats and SSH only from the allowed CIDRs, metrics only from the monitoring server", () => {
  assert.deepEqual(rules(renderNftables(host(prod, "loadbalancer"))), [
    "tcp dport 80 accept",
    "tcp dport 443 accept",
    "tcp dport 8404 ip saddr { 198.51.100.7/32 } accept",
    // The scraper named in Pulumi.prod.yaml (monitoring), by its private address.
    "tcp dport 8405 ip saddr { 172.24.0.2/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
});

test("a web server that scrapes the LB needs no rule of its own: the firewall filters input only, and replies are established", () => {
  const monitoring = renderNftables(host(prod, "monitoring"));
  assert.deepEqual(rules(monitoring), [
    "tcp dport 443 ip saddr { 172.24.1.3/32 } accept",
    "tcp dport 8402 ip saddr { 172.24.1.3/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
  assert.doesNotMatch(monitoring, /hook output/);
  assert.match(monitoring, /ct state established,related accept/);
});

test("a web server accepts its site ports and its ACME responder only from the LB's private IPs", () => {
  assert.deepEqual(rules(renderNftables(host(prod, "frontend"))), [
    "tcp dport 443 ip saddr { 172.24.1.3/32 } accept",
    "tcp dport 8402 ip saddr { 172.24.1.3/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
  assert.deepEqual(rules(renderNftables(host(demo, "demo"))), [
    "tcp dport 443 ip saddr { 172.20.1.3/32 } accept",
    "tcp dport 8443 ip saddr { 172.20.1.3/32 } accept",
    "tcp dport 8402 ip saddr { 172.20.1.3/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
});

test("rules of one family only; a port without any source stays closed", () => {
  const base = host(prod, "frontend");
  const text = renderNftables({
    ...base,
    firewall: [
      { port: 80, sources: ["0.0.0.0/0"], purpose: "http", scope: "public" },
      { port: 443, sources: ["::/0", "192.0.2.0/24"], purpose: "https", scope: "public" },
      { port: 8404, sources: [], purpose: "stats", scope: "public" },
    ],
  });
  assert.deepEqual(rules(text), ["meta nfproto ipv4 tcp dport 80 accept", "tcp dport 443 ip saddr { 192.0.2.0/24 } accept", "meta nfproto ipv6 tcp dport 443 accept"]);
  assert.match(text, /# stats port 8404: no allowed source, closed/);
});

test("the file replaces only table inet ingress, has no forward chain and drops by default", () => {
  for (const h of allHosts) {
    const text = renderNftables(h);
    const code = text.split("\n").filter((l) => !l.trim().startsWith("#"));
    assert.deepEqual(code.filter((l) => /^(table|delete|flush)/.test(l)), ["table inet ingress", "delete table inet ingress", "table inet ingress {"]);
    assert.ok(!/forward|flush ruleset|hook output/.test(code.join("\n")), h.name);
    assert.match(text, /type filter hook input priority filter; policy drop;/);
  }
});

// ---- Checks with nft itself, in network namespaces this test creates and always deletes. ----

const canRunNft = process.getuid?.() === 0 && existsSync("/usr/sbin/nft") && existsSync("/usr/sbin/ip");
const skipNft = canRunNft ? false : "needs root, nft and ip (network namespaces)";

test("nft -c accepts the rules of every host of prod, demo and the standalone example", { skip: skipNft }, () =>
  withSandbox(async (sb) => {
    const ns = await sb.namespace("check");
    for (const h of allHosts) {
      const r = await ns.exec(["nft", "-c", "-f", "-"], { input: renderNftables(h), allowFailure: true });
      assert.equal(r.code, 0, `${h.stack}/${h.name}: ${r.stderr}`);
    }
  }));

test("loading twice is idempotent and leaves other tables alone", { skip: skipNft }, () =>
  withSandbox(async (sb) => {
    const ns = await sb.namespace("idem");
    const ruleset = async () => (await ns.exec(["nft", "list", "ruleset"])).stdout;
    await ns.nft("table inet other {\n  chain c {\n    type filter hook forward priority 0; policy accept;\n  }\n}\n");
    const text = renderNftables(host(prod, "loadbalancer"));
    await ns.nft(text);
    const once = await ruleset();
    await ns.nft(text);
    await ns.nft(renderNftables(host(prod, "frontend")));
    await ns.nft(text);
    const again = await ruleset();
    assert.equal(again, once);
    assert.match(again, /table inet other/);
    assert.equal(again.match(/table inet ingress/g)?.length, 1);
  }));

/** Connects from the client namespace; true when the TCP handshake completes within a second. */
async function connects(ns: Netns, from: string, to: string, port: number): Promise<boolean> {
  // socat rather than the sandbox's probeTcp: the source address is part of what is tested.
  const target = to.includes(":") ? `TCP6:[${to}]:${port},bind=[${from}]` : `TCP4:${to}:${port},bind=${from}`;
  const r = await ns.exec(["socat", "-T1", "/dev/null", `${target},connect-timeout=1`], { allowFailure: true });
  return r.code === 0;
}

test("behaviour: allowed sources connect, others time out (veth between two namespaces)", { skip: skipNft || (existsSync("/usr/bin/socat") ? false : "needs socat") }, () =>
  withSandbox(async (sb) => {
    const srv = await sb.namespace("srv");
    const cli = await sb.namespace("cli");
    await sb.veth({ ns: srv, ifname: "rnft0" }, { ns: cli, ifname: "rnft1" });
    for (const a of ["198.51.100.1/24", "172.24.0.3/16", "2001:db8:1::1/64"]) await srv.addAddress("rnft0", a);
    for (const a of ["198.51.100.7/24", "198.51.100.8/24", "172.24.1.3/16", "172.24.0.9/16", "2001:db8:1::7/64"]) await cli.addAddress("rnft1", a);
    // Listeners on every port, so a failure can only be the firewall, never "connection refused".
    const ports = [22, 80, 443, 8404, 9999];
    for (const port of ports) await srv.spawn(`socat-${port}`, ["socat", `TCP6-LISTEN:${port},ipv6only=0,reuseaddr,fork`, "SYSTEM:true"]);
    await waitForListening(srv, ports.map((port) => ({ port })));
    const load = (h: HostPlan) => srv.nft(renderNftables(h));

    // Without rules everything connects: the test setup itself is sound.
    assert.ok(await connects(cli, "198.51.100.8", "198.51.100.1", 9999));

    await load(host(prod, "loadbalancer"));
    assert.ok(await connects(cli, "198.51.100.8", "198.51.100.1", 443), "443 from anywhere");
    assert.ok(await connects(cli, "198.51.100.8", "198.51.100.1", 80), "80 from anywhere");
    // IPv6 needs neighbour discovery through the policy-drop chain.
    assert.ok(await connects(cli, "2001:db8:1::7", "2001:db8:1::1", 443), "443 over IPv6");
    assert.ok(await connects(cli, "198.51.100.7", "198.51.100.1", 8404), "stats from the admin address");
    assert.ok(!(await connects(cli, "198.51.100.8", "198.51.100.1", 8404)), "stats from elsewhere");
    assert.ok(await connects(cli, "198.51.100.7", "198.51.100.1", 22), "ssh from the admin address");
    assert.ok(!(await connects(cli, "198.51.100.8", "198.51.100.1", 22)), "ssh from elsewhere");
    assert.ok(!(await connects(cli, "198.51.100.7", "198.51.100.1", 9999)), "a port without a rule");

    await load(host(prod, "frontend"));
    assert.ok(await connects(cli, "172.24.1.3", "172.24.0.3", 443), "the site from the LB");
    assert.ok(!(await connects(cli, "172.24.0.9", "172.24.0.3", 443)), "the site from another private address");
    assert.ok(!(await connects(cli, "198.51.100.8", "198.51.100.1", 443)), "the site from the internet");
    assert.ok(!(await connects(cli, "2001:db8:1::7", "2001:db8:1::1", 443)), "the site over IPv6");
    assert.ok(await connects(cli, "198.51.100.7", "198.51.100.1", 22), "ssh from the admin address");
  }));
