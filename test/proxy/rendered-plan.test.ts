/**
 * The real prod + demo stacks with engine ts, end to end: the prod topology
 * (Pulumi.prod.yaml with ingress.engine switched to "ts") is planned and
 * rendered with the built bundle; demo's routes data is rendered by the LB's
 * renderer (render/attached-routes.ts) with the policy in the LB's release, as
 * the on-host apply has it done, into the LB's routes.d; then the release is
 * started with the plan's own command line (paths under a temp /srv/ingress),
 * in namespaces that carry the plans' private addresses. A TLS client's SNI
 * picks the stack's server, which sees the client through PROXY v2; an
 * unknown name is dropped without a byte.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ProxyRoutesFile } from "../../contract/proxy-config";
import { renderAttachedStacks } from "../../render/attached-routes";
import { RenderedFile, renderStack } from "../../render/stack";
import { routesPolicySchema } from "../../topology/attached-routes";
import { loadTopology } from "../../scripts/stack-files";
import { planStack, Topology } from "../../topology";
import * as paths from "../../topology/paths";
import { sandboxNginxMain, startNginx, waitForListening } from "../../lab/daemons";
import type { Netns } from "../../lab/netns";
import type { ManagedProcess } from "../../lab/process";
import { Sandbox } from "../../lab/sandbox";
import { selfSignedCertificate } from "../../lab/tls";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { nginxHttp, PP2_TLS_BACKEND_SCRIPT } from "./helpers/daemons";
import { waitFor } from "./helpers/harness";
import { jsonLines, link, logLines, namespaces } from "./helpers/sandbox";

// The public side (documentation ranges; they exist only in the namespaces below).
// Documentation addresses that exist only in this test's namespaces (not 192.0.2.0/24, which
// may be the machine's real uplink).
const CLIENT4 = "203.0.113.10";
const LB4 = "203.0.113.1";
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
  let demoData: RenderedFile;
  let demoRoutes: string;
  let sb: Sandbox;
  let ns: Record<"client" | "lb" | "web", Netns>;
  let nginxDir: string;
  let proxy: ManagedProcess;
  const lines = () => jsonLines(proxy);
  /** Every backend server the merged routes files name: SNI -> address:port. */
  const targets = new Map<string, { address: string; port: number }>();

  /** The plan's command line with /srv/ingress moved to the test's root. */
  const argv = () => command.slice(1).map((a) => (a.startsWith(`${paths.INGRESS_ROOT}/`) ? `${root}${a.slice(paths.INGRESS_ROOT.length)}` : a));

  before(async () => {
    bundle = buildProxyScript();
    sb = await Sandbox.create({ prefix: "pxt" });
    root = await sb.subdir("srv-ingress");
    lbFiles = renderStack(prodPlan, { proxyScript: readFileSync(bundle, "utf8") }).find((h) => h.host === lb.name)!.files;
    demoData = renderStack(demoPlan).find((h) => h.host === "_routes-for-prod")!.files[0]!;
    const policy = routesPolicySchema.parse(JSON.parse(lbFiles.find((f) => f.path === paths.ATTACHED_POLICY)!.content));
    const rendered = renderAttachedStacks(policy, [{ stack: "demo", data: JSON.parse(demoData.content) }]);
    assert.deepEqual(rendered.refused, []);
    assert.deepEqual(rendered.files.map((f) => f.path), ["proxy/routes.d/demo.json"]);
    demoRoutes = rendered.files[0]!.content;

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
    const pushed = path.join(root, demoData.path.slice(paths.INGRESS_ROOT.length + 1));
    mkdirSync(path.dirname(pushed), { recursive: true });
    writeFileSync(pushed, demoData.content);
    writeFileSync(path.join(release, "proxy", "routes.d", "demo.json"), demoRoutes);

    for (const text of [lbFiles.find((f) => f.path === `${paths.PROXY_ROUTES_D}/prod.json`)!.content, demoRoutes]) {
      const file = JSON.parse(text) as ProxyRoutesFile;
      for (const route of file.routes) targets.set(route.host, file.backends.find((b) => b.name === route.backend)!.servers[0]!);
    }

    // client --public-- lb --prod network-- web (monitoring, frontend, backend)
    //                      --demo network-- web (demo)
    const lbPrivate = (topo: Topology, network: string, ip: string) => `${ip}${prefixOf(topo, network)}`;
    const prodLbIp = lb.privateIps.find((p) => p.network === "prod")!.ip;
    const servers = (stack: Topology, network: string) => stack.servers.map((s) => `${s.networks[network]!}${prefixOf(stack, network)}`);
    ns = await namespaces(sb, ["client", "lb", "web"]);
    await link(sb, { ns: ns.client, ifname: "public", addresses: [`${CLIENT4}/24`, `${CLIENT6}/64`] }, { ns: ns.lb, ifname: "public", addresses: [`${LB4}/24`, `${LB6}/64`] });
    await link(sb, { ns: ns.lb, ifname: "prod", addresses: [lbPrivate(prodTopo, "prod", prodLbIp)] }, { ns: ns.web, ifname: "prod", addresses: servers(prodTopo, "prod") });
    await link(sb, { ns: ns.lb, ifname: "demo", addresses: [lbPrivate(demoTopo, "demo", demoPlan.attach!.ip)] }, { ns: ns.web, ifname: "demo", addresses: servers(demoTopo, "demo") });

    // Backends: the demo site is a TLS server that demands PROXY v2 and reports the header;
    // every other site is nginx with `listen ... ssl proxy_protocol` trusting the LB.
    const { certPath: cert, keyPath: key } = await selfSignedCertificate(await sb.subdir("certs"), [...targets.keys()]);
    const demo = targets.get(DEMO)!;
    const pp2 = await ns.web.spawn("pp2-backend", [NODE_CURRENT, "-e", PP2_TLS_BACKEND_SCRIPT, demo.address, String(demo.port), cert, key]);
    const others = [...targets.values()].filter((t) => t !== demo);
    const nginx = await startNginx(sb, ns.web, {
      name: "nginx",
      config: sandboxNginxMain({
        http: nginxHttp({
          listen: [...new Set(others.map((t) => `${t.address}:${t.port}`))],
          trusted: [prodLbIp, demoPlan.attach!.ip],
          cert,
          key,
          logFormat: "$server_addr:$server_port $proxy_protocol_addr $remote_addr $ssl_server_name",
        }),
      }),
      waitFor: others.map((t) => ({ address: t.address, port: t.port })),
    });
    nginxDir = nginx.dir;
    await waitForListening(ns.web, [{ address: demo.address, port: demo.port }], { process: pp2 });

    proxy = await ns.lb.spawn("proxy", [NODE_CURRENT, ...argv()]);
    await waitFor(() => lines().some((l) => l.msg === "ready") || !proxy.running, 10_000, "proxy ready");
    assert.ok(lines().some((l) => l.msg === "ready"), `proxy did not start: ${logLines(proxy).join("\n")}`);
  });

  after(async () => {
    await sb?.teardown();
  });

  const curl = async (host: string, lbAddress: string) =>
    (await ns.client.exec(["curl", "-sS", "-k", "--max-time", "5", "--resolve", `${host}:443:${lbAddress.includes(":") ? `[${lbAddress}]` : lbAddress}`, `https://${host}/`])).stdout;
  const connections = () => lines().filter((l) => l.event === "connection");

  it("runs the plan's command line from the release, with the rendered bundle", () => {
    assert.deepEqual(command, ["node", paths.PROXY_SCRIPT, "--config", paths.PROXY_CONFIG, "--routes-dir", paths.PROXY_ROUTES_D]);
    assert.deepEqual(
      lbFiles.filter((f) => f.path.startsWith(`${paths.CURRENT}/proxy/`)).map((f) => f.path),
      [paths.PROXY_SCRIPT, paths.PROXY_CONFIG, `${paths.PROXY_ROUTES_D}/prod.json`],
    );
    assert.equal(demoData.path, `${paths.ROUTES_DIR}/demo/routes.json`);
    // what apply.sh runs before the swap: the unit's command plus --check
    const check = spawnSync(NODE_CURRENT, [...argv(), "--check"]);
    assert.equal(check.status, 0, check.stderr.toString());
    assert.match(check.stdout.toString(), /is valid: 2 listener\(s\), 5 route\(s\), 5 backend\(s\) \(2 routes file\(s\): demo\.json, prod\.json\)/);
    const starting = lines().find((l) => l.msg === "starting")!;
    assert.equal(starting.routes, 5);
    assert.equal(starting.mode, "threads", "no workers setting: one per CPU, as threads on Node 24");
  });

  it(`TLS with SNI ${DEMO} reaches the demo server, which reads a PROXY v2 header carrying the client's address`, async () => {
    const demo = targets.get(DEMO)!;
    assert.deepEqual(demo, { name: "demo", address: "172.20.0.2", port: 443, acmePort: 8402 });
    const header = JSON.parse(await curl(DEMO, LB4)) as Record<string, unknown>;
    assert.equal(header.version, 2);
    assert.equal(header.command, "PROXY");
    assert.equal(header.family, "TCP4");
    assert.match(String(header.src), new RegExp(`^${CLIENT4.replace(/\./g, "\\.")}:\\d+$`));
    assert.equal(header.dst, `${LB4}:443`);
    await waitFor(() => connections().some((l) => l.sni === DEMO), 3000, "connection log line");
    const line = connections().find((l) => l.sni === DEMO)!;
    assert.deepEqual([line.ci, line.b, line.s, line.ts], [CLIENT4, "demo_demo_443", "demo", "--"]);
  });

  it("over IPv6 too: the [::]:443 bind, a TCP6 header with the client's address", async () => {
    const header = JSON.parse(await curl(DEMO, LB6)) as Record<string, unknown>;
    assert.equal(header.family, "TCP6");
    assert.match(String(header.src), /^\[2001:db8:0:0:0:0:0:10\]:\d+$/);
  });

  it("every other site of both stacks reaches its own server, and nginx sees the client", async () => {
    const accessLog = () => readFileSync(path.join(nginxDir, "access.log"), "utf8").trim().split("\n");
    for (const [host, target] of targets) {
      if (host === DEMO) continue;
      assert.equal(await curl(host, LB4), `real client ${CLIENT4} via ${CLIENT4}\n`, host);
      // nginx writes the line after the response, so it may land just after curl exits
      const expected = `${target.address}:${target.port} ${CLIENT4} ${CLIENT4} ${host}`;
      await waitFor(() => accessLog().includes(expected), 2000, `access log line for ${host}`);
    }
  });

  it("an unknown SNI is dropped without a byte, and logged", async () => {
    // The rendered drop holds the connection until the inspect deadline, then closes it.
    const waitMs = lb.ingress!.timeouts.inspect + 3000;
    const script = `const s=require("tls").connect({host:"${LB4}",port:443,servername:"unknown.fiscalismia.com",rejectUnauthorized:false});let n=0;s.on("data",d=>n+=d.length);s.on("error",e=>{process.stdout.write(n+" "+e.message);process.exit(0)});setTimeout(()=>process.exit(3),${waitMs}).unref();`;
    const { stdout: out } = await ns.client.exec([NODE_CURRENT, "-e", script]);
    // a FIN before any byte (drop), not a reset (reject)
    assert.match(out, /^0 Client network socket disconnected before secure TLS connection was established/);
    await waitFor(() => connections().some((l) => l.sni === "unknown.fiscalismia.com"), 3000, "drop log line");
    const line = connections().find((l) => l.sni === "unknown.fiscalismia.com")!;
    assert.deepEqual([line.ci, line.ts, line.reason, line.s], [CLIENT4, "PR", "unknown-sni", "<NOSRV>"]);
  });
});
