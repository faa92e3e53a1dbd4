import { test } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { HostPlan, planStack, StackPlan } from "../../topology";
import { renderNftables, sourceSets } from "../../render/nftables";

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

test("the LB accepts 80 and 443 from anywhere, stats and SSH only from the allowed CIDRs", () => {
  assert.deepEqual(rules(renderNftables(host(prod, "loadbalancer"))), [
    "tcp dport 80 accept",
    "tcp dport 443 accept",
    "tcp dport 8404 ip saddr { 198.51.100.7/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
});

test("a web server accepts its site ports only from the LB's private IPs", () => {
  assert.deepEqual(rules(renderNftables(host(prod, "frontend"))), [
    "tcp dport 443 ip saddr { 172.24.1.3/32 } accept",
    "tcp dport 22 ip saddr { 198.51.100.7/32 } accept",
  ]);
  assert.deepEqual(rules(renderNftables(host(demo, "demo"))), [
    "tcp dport 443 ip saddr { 172.20.1.3/32 } accept",
    "tcp dport 8443 ip saddr { 172.20.1.3/32 } accept",
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
const PREFIX = `rnft-${process.pid}`;

function sh(cmd: string[], input?: string): string {
  return execFileSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...(input === undefined ? {} : { input }) });
}

function inNs(ns: string, cmd: string[], input?: string): string {
  return sh(["ip", "netns", "exec", ns, ...cmd], input);
}

function withNamespaces<T>(names: string[], body: (ns: string[]) => T): T {
  const full = names.map((n) => `${PREFIX}-${n}`);
  try {
    for (const n of full) sh(["ip", "netns", "add", n]);
    return body(full);
  } finally {
    for (const n of full) spawnSync("ip", ["netns", "del", n]);
  }
}

test("nft -c accepts the rules of every host of prod, demo and the standalone example", { skip: skipNft }, () => {
  withNamespaces(["check"], ([ns]) => {
    for (const h of allHosts) {
      const r = spawnSync("ip", ["netns", "exec", ns!, "nft", "-c", "-f", "-"], { input: renderNftables(h), encoding: "utf8" });
      assert.equal(r.status, 0, `${h.stack}/${h.name}: ${r.stderr}`);
    }
  });
});

test("loading twice is idempotent and leaves other tables alone", { skip: skipNft }, () => {
  withNamespaces(["idem"], ([ns]) => {
    inNs(ns!, ["nft", "-f", "-"], "table inet other {\n  chain c {\n    type filter hook forward priority 0; policy accept;\n  }\n}\n");
    const text = renderNftables(host(prod, "loadbalancer"));
    inNs(ns!, ["nft", "-f", "-"], text);
    const once = inNs(ns!, ["nft", "list", "ruleset"]);
    inNs(ns!, ["nft", "-f", "-"], text);
    inNs(ns!, ["nft", "-f", "-"], renderNftables(host(prod, "frontend")));
    inNs(ns!, ["nft", "-f", "-"], text);
    const again = inNs(ns!, ["nft", "list", "ruleset"]);
    assert.equal(again, once);
    assert.match(again, /table inet other/);
    assert.equal(again.match(/table inet ingress/g)?.length, 1);
  });
});

/** Connects from the client namespace; true when the TCP handshake completes within a second. */
function connects(ns: string, from: string, to: string, port: number): boolean {
  const target = to.includes(":") ? `TCP6:[${to}]:${port},bind=[${from}]` : `TCP4:${to}:${port},bind=${from}`;
  const r = spawnSync("ip", ["netns", "exec", ns, "socat", "-T1", "/dev/null", `${target},connect-timeout=1`], { encoding: "utf8" });
  return r.status === 0;
}

test("behaviour: allowed sources connect, others time out (veth between two namespaces)", { skip: skipNft || (existsSync("/usr/bin/socat") ? false : "needs socat") }, () => {
  withNamespaces(["srv", "cli"], ([srv, cli]) => {
    const listeners: ChildProcess[] = [];
    try {
      sh(["ip", "link", "add", "rnft0", "netns", srv!, "type", "veth", "peer", "name", "rnft1", "netns", cli!]);
      const up = (ns: string, dev: string, addrs: string[]) => {
        inNs(ns, ["ip", "link", "set", "lo", "up"]);
        for (const a of addrs) inNs(ns, ["ip", "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
        inNs(ns, ["ip", "link", "set", dev, "up"]);
      };
      up(srv!, "rnft0", ["198.51.100.1/24", "172.24.0.3/16", "2001:db8:1::1/64"]);
      up(cli!, "rnft1", ["198.51.100.7/24", "198.51.100.8/24", "172.24.1.3/16", "172.24.0.9/16", "2001:db8:1::7/64"]);
      // Listeners on every port, so a failure can only be the firewall, never "connection refused".
      for (const port of [22, 80, 443, 8404, 9999]) {
        listeners.push(spawn("ip", ["netns", "exec", srv!, "socat", `TCP6-LISTEN:${port},ipv6only=0,reuseaddr,fork`, "SYSTEM:true"], { stdio: "ignore" }));
      }
      const deadline = Date.now() + 5000;
      while (!/:9999\b/.test(inNs(srv!, ["ss", "-Hltn"])) || !/:22\b/.test(inNs(srv!, ["ss", "-Hltn"]))) {
        assert.ok(Date.now() < deadline, "listeners did not come up");
      }
      const load = (h: HostPlan) => inNs(srv!, ["nft", "-f", "-"], renderNftables(h));

      // Without rules everything connects: the test setup itself is sound.
      assert.ok(connects(cli!, "198.51.100.8", "198.51.100.1", 9999));

      load(host(prod, "loadbalancer"));
      assert.ok(connects(cli!, "198.51.100.8", "198.51.100.1", 443), "443 from anywhere");
      assert.ok(connects(cli!, "198.51.100.8", "198.51.100.1", 80), "80 from anywhere");
      // IPv6 needs neighbour discovery through the policy-drop chain.
      assert.ok(connects(cli!, "2001:db8:1::7", "2001:db8:1::1", 443), "443 over IPv6");
      assert.ok(connects(cli!, "198.51.100.7", "198.51.100.1", 8404), "stats from the admin address");
      assert.ok(!connects(cli!, "198.51.100.8", "198.51.100.1", 8404), "stats from elsewhere");
      assert.ok(connects(cli!, "198.51.100.7", "198.51.100.1", 22), "ssh from the admin address");
      assert.ok(!connects(cli!, "198.51.100.8", "198.51.100.1", 22), "ssh from elsewhere");
      assert.ok(!connects(cli!, "198.51.100.7", "198.51.100.1", 9999), "a port without a rule");

      load(host(prod, "frontend"));
      assert.ok(connects(cli!, "172.24.1.3", "172.24.0.3", 443), "the site from the LB");
      assert.ok(!connects(cli!, "172.24.0.9", "172.24.0.3", 443), "the site from another private address");
      assert.ok(!connects(cli!, "198.51.100.8", "198.51.100.1", 443), "the site from the internet");
      assert.ok(!connects(cli!, "2001:db8:1::7", "2001:db8:1::1", 443), "the site over IPv6");
      assert.ok(connects(cli!, "198.51.100.7", "198.51.100.1", 22), "ssh from the admin address");
    } finally {
      for (const p of listeners) if (p.pid !== undefined) p.kill("SIGKILL");
    }
  });
});
