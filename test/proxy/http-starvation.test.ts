/**
 * The attack: idle port-80 connections from many sources fill the LB's maxconn, which HTTPS
 * shares, until every TLS client is turned away. The ts proxy runs with the listeners' limits
 * the renderer produces (a stack with maxconn 400, so port 80 may hold 50), in namespaces:
 * 450 sources (an AnyIP route on the client's loopback) each open one idle port-80
 * connection, then a TLS client must still get in. One source alone is rate-limited on
 * port 80 as on 443.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { planStack, validateStackConfig } from "../../topology";
import { readStackConfig, stackFile } from "../../scripts/stack-files";
import { proxyConfigOf } from "../../render/proxy-config";
import { waitForListening } from "../../lab/daemons";
import type { Netns } from "../../lab/netns";
import type { ManagedProcess } from "../../lab/process";
import { Sandbox } from "../../lab/sandbox";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { manySourcesLab } from "./helpers/sandbox";

const MAXCONN = 400;
/** The attackers: 10.99.0.0/20, bound through an AnyIP route on the client's loopback. */
const SOURCE_NET = "10.99.";
const LB4 = "10.98.0.1";
const CLIENT4 = "10.98.0.2";
const HTTP_PORT = 8080;
const HTTPS_PORT = 8443;

/** The prod LB as the ts engine, with a small maxconn; its listeners moved to the test's ports. */
function proxyConfig() {
  const raw = structuredClone(readStackConfig(stackFile("prod"))) as { ingress: Record<string, unknown> };
  raw.ingress = { ...raw.ingress, engine: "ts", maxconn: MAXCONN, ports: { http: HTTP_PORT, https: HTTPS_PORT } };
  const lb = planStack(validateStackConfig("prod", raw)).hosts.find((h) => h.role === "ingress")!;
  const config = proxyConfigOf(lb);
  const { stats: _stats, ...rest } = config;
  return {
    ...rest,
    global: { ...config.global, workers: 1 },
    listeners: config.listeners.map((l) => ({ ...l, binds: [{ address: "0.0.0.0", port: l.binds[0]!.port }] })),
  };
}

/** Opens one connection from each of `count` sources (or `count` from one), holds them; prints how many stayed open after `holdMs`. */
const CLIENT_SCRIPT = `
const net = require("node:net");
const [lb, port, count, oneSource, holdMs] = process.argv.slice(1);
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  const n = oneSource === "1" ? 1 : i + 1;
  const s = net.connect({ host: lb, port: Number(port), localAddress: "${SOURCE_NET}" + Math.floor(n / 250) + "." + ((n % 250) + 1) });
  s.on("error", () => {});
  sockets.push(s);
}
setTimeout(() => {
  const open = sockets.filter((s) => !s.destroyed && s.readyState === "open").length;
  console.log(JSON.stringify({ open }));
  for (const s of sockets) s.destroy();
  process.exit(0);
}, Number(holdMs));
`;

/** A TLS-side client: connects to 443, holds the connection 1.5 s and reports whether it was still open then (a refusal resets it). */
const TLS_CLIENT = `
const net = require("node:net");
const [lb, port] = process.argv.slice(1);
const s = net.connect({ host: lb, port: Number(port), localAddress: "${CLIENT4}" });
let reset = false;
s.on("error", () => { reset = true; });
setTimeout(() => { console.log(JSON.stringify({ open: !reset && !s.destroyed })); process.exit(0); }, 1500);
`;

describe("port 80 cannot starve TLS (ts engine)", { timeout: 60_000 }, () => {
  let sb: Sandbox;
  let ns: Record<"client" | "lb", Netns>;
  let proxy: ManagedProcess;
  let statsSocket: string;

  before(async () => {
    sb = await Sandbox.create({ prefix: "pxt" });
    ns = await manySourcesLab(sb, { client: CLIENT4, lb: LB4, prefixLength: 24, sources: ["10.99.0.0/20"] });
    const dir = await sb.subdir("proxy");
    const configFile = path.join(dir, "proxy.json");
    writeFileSync(configFile, JSON.stringify(proxyConfig()));
    statsSocket = path.join(dir, "stats.sock");
    proxy = await ns.lb.spawn("proxy", [NODE_CURRENT, buildProxyScript(), "--config", configFile, "--stats-socket", statsSocket]);
    await waitForListening(ns.lb, [{ port: HTTP_PORT }, { port: HTTPS_PORT }], { process: proxy });
  });
  after(async () => {
    await sb?.teardown();
  });

  const node = async (script: string, ...args: string[]) => {
    const r = await ns.client.exec(["bash", "-c", 'ulimit -n 4096 && exec "$@"', "_", NODE_CURRENT, "-e", script, ...args], { timeoutMs: 20_000 });
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { open: number | boolean };
  };

  it("the rendered http listener holds at most an eighth of maxconn", () => {
    const http = proxyConfig().listeners.find((l) => l.name === "http") as { maxconn?: number; rateLimit?: unknown };
    assert.equal(http.maxconn, MAXCONN / 8);
    assert.ok(http.rateLimit, "port 80 is rate-limited per source");
  });

  const listener = async (name: string) => {
    const report = JSON.parse((await ns.lb.exec(["curl", "-s", "--unix-socket", statsSocket, "http://localhost/stats.json"])).stdout) as { listeners: { name: string; current: number; rateLimited: number }[] };
    return report.listeners.find((l) => l.name === name)!;
  };

  it("450 sources holding idle port-80 connections leave room for a TLS client", async () => {
    // Held for 4 s, under the 5 s request timeout that would close them.
    const flood = node(CLIENT_SCRIPT, LB4, String(HTTP_PORT), "450", "0", "4000");
    // Port 80 full: its share of maxconn is taken before the TLS client comes (the rest wait).
    let current = 0;
    const deadline = Date.now() + 3500;
    while ((current = (await listener("http")).current) < MAXCONN / 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(current, MAXCONN / 8, "port 80 never filled its share");
    // The TLS client is admitted at once (counted as current), not reset and not left waiting.
    const tls = node(TLS_CLIENT, LB4, String(HTTPS_PORT));
    let https = 0;
    const admitted = Date.now() + 2000;
    while ((https = (await listener("https")).current) < 1 && Date.now() < admitted) await new Promise((r) => setTimeout(r, 25));
    assert.equal(https, 1, "the TLS client was not admitted while port 80 was full");
    assert.deepEqual(await tls, { open: true }, "the TLS client was turned away");
    assert.equal((await listener("http")).current, MAXCONN / 8, "port 80 took more than its share");
    await flood;
  });

  it("one source is rate-limited on port 80 as on 443", async () => {
    // The previous flood's connections, held or still waiting, are gone first (idle ones close at
    // the 5 s request timeout): port 80 idle twice in a row, 200 ms apart.
    const settled = Date.now() + 10_000;
    for (let idle = 0; idle < 2 && Date.now() < settled; ) {
      idle = (await listener("http")).current === 0 ? idle + 1 : 0;
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = (await listener("http")).rateLimited;
    await node(CLIENT_SCRIPT, LB4, String(HTTP_PORT), "120", "1", "300");
    let limited = before;
    const deadline = Date.now() + 3000;
    while ((limited = (await listener("http")).rateLimited) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(limited > before, "port 80 never refused the source");
  });
});
