/**
 * The attack: one host owns a whole IPv6 /64 and opens every connection from another address
 * in it. Counted per address, no source ever reaches the limit. Both engines, with the rate
 * limit lines and settings the renderers produce, in namespaces: the client binds 60 addresses
 * of one /64 (an AnyIP route on its loopback), the LB has a route back to that /64.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { planStack, validateStackConfig } from "../../topology";
import { readStackConfig, stackFile } from "../../scripts/stack-files";
import { renderHaproxyConfig } from "../../render/haproxy";
import { renderProxyConfig } from "../../render/proxy-config";
import { startHaproxy, waitForListening, type HaproxyDaemon } from "../../lab/daemons";
import { haproxyCommand } from "../../lab/haproxy-stats";
import type { Netns } from "../../lab/netns";
import type { ManagedProcess } from "../../lab/process";
import { Sandbox } from "../../lab/sandbox";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { manySourcesLab } from "./helpers/sandbox";

const THRESHOLD = 20;
const ATTEMPTS = 60;
const ROTATING = "2001:db8:64::"; // the attacker's /64
const OTHER = "2001:db8:65::"; // someone else's /64
const LB6 = "fd64:1::1";
const CLIENT6 = "fd64:1::2";
const HAPROXY_PORT = 9443;
const PROXY_PORT = 8443;

/** The prod LB's plan with a small threshold, for both engines. */
function lbPlan(engine: "haproxy" | "ts") {
  const raw = structuredClone(readStackConfig(stackFile("prod"))) as { ingress: Record<string, unknown> };
  raw.ingress = { ...raw.ingress, engine, rateLimit: { ...(raw.ingress["rateLimit"] as object), threshold: THRESHOLD, window: "30s" } };
  return planStack(validateStackConfig("prod", raw)).hosts.find((h) => h.role === "ingress")!;
}

/** The rendered https frontend's rate-limit lines, bound to the test's port. */
function haproxyRateLimitConfig(): string {
  const rendered = renderHaproxyConfig(lbPlan("haproxy")).split("\n");
  const start = rendered.findIndex((l) => l.includes("stick-table type ipv6"));
  const end = rendered.findIndex((l) => l.includes("sc0_conn_rate ge"));
  assert.ok(start > 0 && end > start, "the rendered config has the rate-limit block");
  return [
    "global",
    "    maxconn 1000",
    "defaults",
    "    mode tcp",
    "    timeout connect 2s",
    "    timeout client 30s",
    "    timeout server 30s",
    "frontend https_ingress",
    `    bind [::]:${HAPROXY_PORT} v6only`,
    ...rendered.slice(start, end + 1),
    "    tcp-request inspect-delay 20s",
    "    tcp-request content reject if FALSE",
    "",
  ].join("\n");
}

/** The rendered ts proxy config's https rate limit, on a listener of the test's own. */
function proxyRateLimitConfig() {
  const rendered = JSON.parse(renderProxyConfig(lbPlan("ts"))) as { listeners: { name: string; rateLimit?: Record<string, unknown> }[] };
  const rateLimit = rendered.listeners.find((l) => l.name === "https")?.rateLimit;
  assert.ok(rateLimit, "the rendered config limits https");
  assert.equal(rateLimit["ipv6PrefixLength"], 64);
  return {
    version: 1,
    global: { workers: 1 },
    listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "::", port: PROXY_PORT }], inspectTimeoutMs: 20_000, rateLimit: { ...rateLimit, action: "reject" } }],
    routes: [],
    backends: [],
  };
}

/** Opens `count` connections, each from the next address of `prefix`, and closes them. */
const CLIENT_SCRIPT = `
const net = require("node:net");
const [prefix, port, count] = process.argv.slice(1);
let done = 0, opened = 0;
for (let i = 1; i <= Number(count); i++) {
  const s = net.connect({ host: ${JSON.stringify(LB6)}, port: Number(port), localAddress: prefix + i.toString(16) });
  s.on("connect", () => opened++);
  s.on("error", () => {});
  s.on("close", () => { if (++done === Number(count)) { console.log(JSON.stringify({ opened })); process.exit(0); } });
  setTimeout(() => s.destroy(), 1500);
}
`;

describe("IPv6 sources are rate-limited per /64, in both engines", { timeout: 60_000 }, () => {
  let sb: Sandbox;
  let ns: Record<"client" | "lb", Netns>;
  let haproxy: HaproxyDaemon;
  let proxy: ManagedProcess;
  let statsSocket: string;

  before(async () => {
    sb = await Sandbox.create({ prefix: "pxt" });
    // The attacker's /64 and someone else's, both bindable by the client.
    ns = await manySourcesLab(sb, { client: CLIENT6, lb: LB6, prefixLength: 64, sources: [`${ROTATING}/64`, `${OTHER}/64`] });
    haproxy = await startHaproxy(sb, ns.lb, { name: "haproxy", config: haproxyRateLimitConfig(), waitFor: [{ port: HAPROXY_PORT }] });
    const dir = await sb.subdir("proxy");
    const configFile = path.join(dir, "proxy.json");
    writeFileSync(configFile, JSON.stringify(proxyRateLimitConfig()));
    statsSocket = path.join(dir, "stats.sock");
    proxy = await ns.lb.spawn("proxy", [NODE_CURRENT, buildProxyScript(), "--config", configFile, "--stats-socket", statsSocket]);
    await waitForListening(ns.lb, [{ port: PROXY_PORT }], { process: proxy });
  });
  after(async () => {
    await sb?.teardown();
  });

  const flood = async (prefix: string, port: number, count: number) => {
    const r = await ns.client.exec([NODE_CURRENT, "-e", CLIENT_SCRIPT, prefix, String(port), String(count)], { timeoutMs: 20_000 });
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { opened: number };
  };

  it(`haproxy: ${ATTEMPTS} connections from ${ATTEMPTS} addresses of one /64 are one source in the table, over the limit`, async () => {
    await flood(ROTATING, HAPROXY_PORT, ATTEMPTS);
    await flood(OTHER, HAPROXY_PORT, 3);
    // show table: one entry per tracked key, with its conn_rate.
    const entries = () => haproxyCommand(haproxy.statsSocket, "show table https_ingress").then((t) => t.split("\n").filter((l) => l.includes("key=")));
    let rows: string[] = [];
    const deadline = Date.now() + 5000;
    while ((rows = await entries()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const rate = (key: string) => Number(/conn_rate\([0-9]+\)=([0-9]+)/.exec(rows.find((r) => r.includes(`key=${key} `)) ?? "")?.[1]);
    assert.equal(rows.length, 2, rows.join("\n"));
    assert.equal(rate(ROTATING), ATTEMPTS, "every address of the /64 counted on one key");
    assert.equal(rate(OTHER), 3, "another /64 is another source");
  });

  it(`ts proxy: the same flood is refused once the /64 reaches the limit of ${THRESHOLD}`, async () => {
    await flood(ROTATING, PROXY_PORT, ATTEMPTS);
    await flood(OTHER, PROXY_PORT, 3);
    const report = async () =>
      JSON.parse((await ns.lb.exec(["curl", "-s", "--unix-socket", statsSocket, "http://localhost/stats.json"])).stdout) as { listeners: { name: string; rateLimited: number }[] };
    let limited = -1;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      limited = (await report()).listeners.find((l) => l.name === "https")?.rateLimited ?? -1;
      if (limited === ATTEMPTS - THRESHOLD + 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The threshold-th connection and every later one of the /64 is refused; the other /64's three are not.
    assert.equal(limited, ATTEMPTS - THRESHOLD + 1);
  });
});
