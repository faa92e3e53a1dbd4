/**
 * The real prod + demo stacks with engine ts, end to end: the prod topology
 * (Pulumi.prod.yaml with ingress.engine switched to "ts") is planned and
 * rendered with the built bundle; demo's routes file, rendered for that LB, is
 * placed into the LB's routes.d as the on-host apply does; then the release is
 * started with the plan's own command line (paths under a temp /srv/ingress),
 * in namespaces that carry the plans' private addresses. A TLS client's SNI
 * picks the stack's server, which sees the client through PROXY v2; an
 * unknown name is dropped without a byte.
 */
import assert from "node:assert/strict";
import { ChildProcess, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ProxyRoutesFile } from "../../proxy/config/schema";
import { lbSettingsOf, RenderedFile, renderStack } from "../../render/bundle";
import { loadTopology } from "../../scripts/stack-files";
import { planStack, Topology } from "../../topology";
import * as paths from "../../topology/paths";
import { buildBundle, NODE_CURRENT } from "./helpers/bundle";
import { makeCert, nginxConfig, PP2_TLS_BACKEND_SCRIPT } from "./helpers/daemons";
import { waitFor } from "./helpers/harness";
import { createNamespaces, Namespaces, waitListening } from "./helpers/netns";

// The public side (documentation ranges; they exist only in the namespaces below).
const CLIENT4 = "192.0.2.10";
const LB4 = "192.0.2.1";
const CLIENT6 = "2001:db8::10";
const LB6 = "2001:db8::1";
const DEMO = "demo.fiscalismia.com";

function prodWithTsEngine(): Topology {
  const prod = loadTopology("prod");
  if (prod.ingress.mode !== "own") throw new Error("prod owns the LB");
  return { ...prod, ingress: { ...prod.ingress, engine: "ts" } };
}

function prefixOf(topo: Topology, network: string): string {
  const range = topo.networks.find((n) => n.name === network)?.ipRange;
  if (range === undefined) throw new Error(`no network ${network} in ${topo.stack}`);
  return range.slice(range.indexOf("/"));
}

describe("rendered prod + demo plans on the ts engine", { timeout: 60_000 }, () => {
  const prodTopo = prodWithTsEngine();
  const demoTopo = loadTopology("demo");
  const prodPlan = planStack(prodTopo);
  const demoPlan = planStack(demoTopo);
  const lb = prodPlan.hosts.find((h) => h.role === "ingress")!;
  const command = lb.containers.find((c) => c.name === "proxy")!.command;

  let bundle: string;
  let root: string;
  let lbFiles: readonly RenderedFile[];
  let demoRoutes: RenderedFile;
  let net: Namespaces<"client" | "lb" | "web">;
  let proxy: ChildProcess;
  let stderr = "";
  const lines: Record<string, unknown>[] = [];
  /** Every backend server the merged routes files name: SNI -> address:port. */
  const targets = new Map<string, { address: string; port: number }>();

  /** The plan's command line with /srv/ingress moved to the test's root. */
  const argv = () => command.slice(1).map((a) => (a.startsWith(`${paths.INGRESS_ROOT}/`) ? `${root}${a.slice(paths.INGRESS_ROOT.length)}` : a));

  before(async () => {
    bundle = buildBundle();
    root = mkdtempSync(path.join(os.tmpdir(), "pxt-srv-ingress-"));
    lbFiles = renderStack(prodPlan, { proxyBundle: readFileSync(bundle, "utf8") }).find((h) => h.host === lb.name)!.files;
    const attached = renderStack(demoPlan, { attachedLb: lbSettingsOf(prodTopo) }).find((h) => h.host === "_routes-for-prod")!;
    demoRoutes = attached.files[0]!;

    // A release laid out as on the host: current -> releases/<id>, demo's pushed routes
    // under routes/demo/, and copied into the release's proxy/routes.d as apply.sh does.
    const release = path.join(root, "releases", "r1");
    for (const file of lbFiles) {
      if (!file.path.startsWith(`${paths.CURRENT}/`)) continue;
      const target = path.join(release, file.path.slice(paths.CURRENT.length + 1));
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, file.content);
    }
    symlinkSync("releases/r1", path.join(root, "current"));
    const pushed = path.join(root, demoRoutes.path.slice(paths.INGRESS_ROOT.length + 1));
    mkdirSync(path.dirname(pushed), { recursive: true });
    writeFileSync(pushed, demoRoutes.content);
    writeFileSync(path.join(release, "proxy", "routes.d", path.basename(pushed)), demoRoutes.content);

    for (const text of [lbFiles.find((f) => f.path === `${paths.PROXY_ROUTES_D}/prod.json`)!.content, demoRoutes.content]) {
      const file = JSON.parse(text) as ProxyRoutesFile;
      for (const route of file.routes) targets.set(route.host, file.backends.find((b) => b.name === route.backend)!.servers[0]!);
    }

    // client --public-- lb --prod network-- web (monitoring, frontend, backend)
    //                      --demo network-- web (demo)
    const lbPrivate = (topo: Topology, network: string, ip: string) => `${ip}${prefixOf(topo, network)}`;
    const prodLbIp = lb.privateIps.find((p) => p.network === "prod")!.ip;
    const servers = (stack: Topology, network: string) => stack.servers.map((s) => `${s.networks[network]!}${prefixOf(stack, network)}`);
    net = createNamespaces("rp", ["client", "lb", "web"], [
      { a: "client", b: "lb", addressesA: [`${CLIENT4}/24`, `${CLIENT6}/64`], addressesB: [`${LB4}/24`, `${LB6}/64`] },
      { a: "lb", b: "web", addressesA: [lbPrivate(prodTopo, "prod", prodLbIp)], addressesB: servers(prodTopo, "prod") },
      { a: "lb", b: "web", addressesA: [lbPrivate(demoTopo, "demo", demoPlan.attach!.ip)], addressesB: servers(demoTopo, "demo") },
    ]);

    // Backends: the demo site is a TLS server that demands PROXY v2 and reports the header;
    // every other site is nginx with `listen ... ssl proxy_protocol` trusting the LB.
    const dir = path.join(root, "backends");
    mkdirSync(dir);
    const { cert, key } = makeCert(dir, [...targets.keys()]);
    const demo = targets.get(DEMO)!;
    const pp2 = net.spawnIn(net.ns.web, NODE_CURRENT, ["-e", PP2_TLS_BACKEND_SCRIPT, demo.address, String(demo.port), cert, key]);
    pp2.stderr!.on("data", (d: Buffer) => (stderr += `pp2 backend: ${d.toString()}`));
    const others = [...targets.entries()].filter(([host]) => host !== DEMO).map(([, t]) => `${t.address}:${t.port}`);
    const conf = nginxConfig(dir, {
      listen: [...new Set(others)],
      trusted: [prodLbIp, demoPlan.attach!.ip],
      cert,
      key,
      logFormat: "$server_addr:$server_port $proxy_protocol_addr $remote_addr $ssl_server_name",
    });
    net.spawnIn(net.ns.web, "nginx", ["-c", conf, "-g", "daemon off;"]);

    proxy = net.spawnIn(net.ns.lb, NODE_CURRENT, argv());
    let pending = "";
    proxy.stdout!.on("data", (d: Buffer) => {
      const parts = (pending + d.toString()).split("\n");
      pending = parts.pop()!;
      for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    proxy.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => lines.some((l) => l.msg === "ready") || proxy.exitCode !== null, 10_000, "proxy ready");
    assert.ok(lines.some((l) => l.msg === "ready"), `proxy did not start: ${stderr}`);
    await Promise.all([...new Set([...targets.values()].map((t) => t.port))].map((port) => waitListening(net, net.ns.web, port)));
  });

  after(async () => {
    await net?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
    if (bundle) rmSync(path.dirname(bundle), { recursive: true, force: true });
  });

  const curl = (host: string, lbAddress: string) =>
    net.execIn(net.ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `${host}:443:${lbAddress.includes(":") ? `[${lbAddress}]` : lbAddress}`, `https://${host}/`]);
  const connections = () => lines.filter((l) => l.event === "connection");

  it("runs the plan's command line from the release, with the rendered bundle", () => {
    assert.deepEqual(command, ["node", paths.PROXY_BUNDLE, "--config", paths.PROXY_CONFIG, "--routes-dir", paths.PROXY_ROUTES_D]);
    assert.deepEqual(
      lbFiles.filter((f) => f.path.startsWith(`${paths.CURRENT}/proxy/`)).map((f) => f.path),
      [paths.PROXY_BUNDLE, paths.PROXY_CONFIG, `${paths.PROXY_ROUTES_D}/prod.json`],
    );
    assert.equal(demoRoutes.path, `${paths.ROUTES_DIR}/demo/proxy/routes.d/demo.json`);
    // what apply.sh runs before the swap: the unit's command plus --check
    const check = spawnSync(NODE_CURRENT, [...argv(), "--check"]);
    assert.equal(check.status, 0, check.stderr.toString());
    assert.match(check.stdout.toString(), /is valid: 2 listener\(s\), 5 route\(s\), 5 backend\(s\) \(2 routes file\(s\): demo\.json, prod\.json\)/);
    const starting = lines.find((l) => l.msg === "starting")!;
    assert.equal(starting.routes, 5);
    assert.equal(starting.mode, "threads", "no workers setting: one per CPU, as threads on Node 24");
  });

  it(`TLS with SNI ${DEMO} reaches the demo server, which reads a PROXY v2 header carrying the client's address`, async () => {
    const demo = targets.get(DEMO)!;
    assert.deepEqual(demo, { name: "demo", address: "172.20.0.2", port: 443 });
    const header = JSON.parse(curl(DEMO, LB4)) as Record<string, unknown>;
    assert.equal(header.version, 2);
    assert.equal(header.command, "PROXY");
    assert.equal(header.family, "TCP4");
    assert.match(String(header.src), new RegExp(`^${CLIENT4.replace(/\./g, "\\.")}:\\d+$`));
    assert.equal(header.dst, `${LB4}:443`);
    await waitFor(() => connections().some((l) => l.sni === DEMO), 3000, "connection log line");
    const line = connections().find((l) => l.sni === DEMO)!;
    assert.deepEqual([line.ci, line.b, line.s, line.ts], [CLIENT4, "demo_demo_443", "demo", "--"]);
  });

  it("over IPv6 too: the [::]:443 bind, a TCP6 header with the client's address", () => {
    const header = JSON.parse(curl(DEMO, LB6)) as Record<string, unknown>;
    assert.equal(header.family, "TCP6");
    assert.match(String(header.src), /^\[2001:db8:0:0:0:0:0:10\]:\d+$/);
  });

  it("every other site of both stacks reaches its own server, and nginx sees the client", async () => {
    const accessLog = () => readFileSync(path.join(root, "backends", "access.log"), "utf8").trim().split("\n");
    for (const [host, target] of targets) {
      if (host === DEMO) continue;
      assert.equal(curl(host, LB4), `real client ${CLIENT4} via ${CLIENT4}\n`, host);
      // nginx writes the line after the response, so it may land just after curl exits
      const expected = `${target.address}:${target.port} ${CLIENT4} ${CLIENT4} ${host}`;
      await waitFor(() => accessLog().includes(expected), 2000, `access log line for ${host}`);
    }
  });

  it("an unknown SNI is dropped without a byte, and logged", async () => {
    // The rendered drop holds the connection until the inspect deadline, then closes it.
    const waitMs = lb.ingress!.timeouts.inspect + 3000;
    const script = `const s=require("tls").connect({host:"${LB4}",port:443,servername:"unknown.fiscalismia.com",rejectUnauthorized:false});let n=0;s.on("data",d=>n+=d.length);s.on("error",e=>{process.stdout.write(n+" "+e.message);process.exit(0)});setTimeout(()=>process.exit(3),${waitMs}).unref();`;
    const out = net.execIn(net.ns.client, NODE_CURRENT, ["-e", script]);
    // a FIN before any byte (drop), not a reset (reject)
    assert.match(out, /^0 Client network socket disconnected before secure TLS connection was established/);
    await waitFor(() => connections().some((l) => l.sni === "unknown.fiscalismia.com"), 3000, "drop log line");
    const line = connections().find((l) => l.sni === "unknown.fiscalismia.com")!;
    assert.deepEqual([line.ci, line.ts, line.reason, line.s], [CLIENT4, "PR", "unknown-sni", "<NOSRV>"]);
  });
});
