// The program itself (index.ts, unchanged) against the local cloud, as the README's first
// command runs it: fresh machines, the program's own commands over real ssh into files/apply.sh,
// prod then demo, and every lifecycle step an operator takes. Slow by nature (real machines),
// so one cloud serves the whole file, in order.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { run } from "../../lab/command";
import { cloudNetnsPrefix } from "../../local/cloud/cloud";
import { CLIENT, clientLoop, cloudInfo, hostCommands, local, localRun, onServer, outputsOf, said, serverNamed, serverStates, until200, viaLb, waitFor, type LocalRun } from "./support";

const ROOT = join(__dirname, "..", "..");
const PROD_HOSTS = ["monitoring.fiscalismia.com", "fiscalismia.com", "backend.fiscalismia.com"];
const DEMO_HOSTS = ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"];
const STATS_PASSWORD = "local-test-stats-password";

let l: LocalRun;
let lbIp = "";
let lbIpv6 = "";

/** A stack config derived from the shipped one, in this run's dir. */
function configWith(stack: string, edit: (config: Record<string, unknown>) => void): string {
  const doc = parse(readFileSync(join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  edit(doc.config);
  const file = join(l.dir, `Pulumi.${stack}.${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

async function up(stack: string, ...extra: string[]) {
  return local(l, ["up", "--stack", stack, ...extra], { STATSPASSWORD: STATS_PASSWORD });
}

before(async () => {
  l = localRun();
  const prod = await up("prod");
  assert.equal(prod.code, 0, said(prod));
  lbIp = String(outputsOf(prod)["lbIpv4"]);
  lbIpv6 = String(outputsOf(prod)["lbIpv6"]);
  const demo = await up("demo");
  assert.equal(demo.code, 0, said(demo));
});

after(async () => {
  const prefix = cloudNetnsPrefix(await cloudInfo(l));
  const down = await local(l, ["down"]);
  assert.equal(down.code, 0, said(down));
  const left = (await run(["ip", "netns", "list"])).stdout.split("\n").filter((n) => n.startsWith(prefix));
  assert.deepEqual(left, [], "the local cloud leaves no namespace behind");
  // The test's own run dir (the cloud's log and pid file) and temp dir: nothing left in /run or /tmp.
  rmSync(String(l.env["HETZNER_INGRESS_LOCAL_RUN"]), { recursive: true, force: true });
  rmSync(l.dir, { recursive: true, force: true });
});

describe("the local engine runs the program against fresh machines", () => {
  test("the first up of prod then demo serves all five routes through the LB, nginx logs the client's own address, every check is UP", async () => {
    const info = await cloudInfo(l);
    for (const host of [...PROD_HOSTS, ...DEMO_HOSTS]) assert.equal(await viaLb(info, host, lbIp), "200", host);
    // The certificate each site presents is its own (the deploy's self-signed stand-in).
    const cert = await run(["ip", "netns", "exec", info.clientNetns, "sh", "-c", `openssl s_client -connect ${lbIp}:443 -servername backend.demo.fiscalismia.com </dev/null 2>/dev/null | openssl x509 -noout -subject`], { allowFailure: true });
    assert.match(cert.stdout, /CN\s*=\s*backend\.demo\.fiscalismia\.com/);
    const frontend = serverNamed(info, "prod-frontend");
    const log = await onServer(frontend, ["cat", "/var/lib/local-machine/containers/nginx.log"]);
    assert.match(log.stdout, new RegExp(`^${CLIENT.ipv4.replace(/\./g, "\\.")} .*"GET / HTTP/1\\.1" 200`, "m"), log.stdout.slice(-2000));
    // HAProxy's own view, from the operator (the only source the stats port lets in).
    const servers = await serverStates(info, lbIp, STATS_PASSWORD);
    assert.equal(servers.length, 5, JSON.stringify(servers));
    for (const row of servers) assert.match(row.status, /^UP/, JSON.stringify(row));
    // IPv6 end to end: the client's own v6 address reaches nginx through the LB's v6 address.
    const v6 = await run(["ip", "netns", "exec", info.clientNetns, "curl", "-sk", "-g", "--max-time", "5", "--resolve", `fiscalismia.com:443:[${lbIpv6}]`, "https://fiscalismia.com/"], { allowFailure: true });
    assert.match(v6.stdout, new RegExp(`real client IP is ${CLIENT.ipv6.replace(/\./g, "\\.")}\\b`), v6.stderr);
    // The stats port from the internet: dropped by the cloud firewall in front of the LB (its
    // drop counter moves), before the LB's own nftables ever sees it.
    const lbServer = serverNamed(info, "prod-loadbalancer");
    const drops = async () => Number(/counter packets (\d+)/.exec((await run(["ip", "netns", "exec", info.routerNetns, "nft", "list", "chain", "inet", "hcloud_firewalls", `server_${lbServer.id}`])).stdout)?.[1] ?? NaN);
    const before = await drops();
    const fromClient = await run(["ip", "netns", "exec", info.clientNetns, "curl", "-s", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}", `http://${lbIp}:8404/stats`], { allowFailure: true });
    assert.equal(fromClient.stdout, "000", "no answer at all");
    assert.notEqual(fromClient.code, 0);
    assert.ok((await drops()) > before, "the cloud firewall dropped it");
  });

  test("a second up of each stack changes nothing and runs no command on any host", async () => {
    for (const stack of ["prod", "demo"]) {
      const r = await up(stack);
      assert.equal(r.code, 0, said(r));
      assert.deepEqual(hostCommands(r), [], said(r));
      assert.match(r.stdout, /0 to create, 0 to update, 0 to replace, 0 to delete, \d+ unchanged/);
    }
  });

  test("nginx stopped on a server: the LB marks it DOWN (L4CON) within fall x interval and the other routes keep serving; started again, UP within rise x interval", async () => {
    const info = await cloudInfo(l);
    const frontend = serverNamed(info, "prod-frontend");
    // Pulumi.prod.yaml: interval 5 s, fall 3, rise 2.
    const hc = { interval: 5000, fall: 3, rise: 2 };
    const stateOf = async () => (await serverStates(info, lbIp, STATS_PASSWORD)).find((r) => r.server.includes("frontend"));
    let seen = "";
    const stop = await onServer(frontend, ["/usr/local/sbin/systemctl", "stop", "nginx.service"]);
    assert.equal(stop.code, 0, stop.stderr);
    const down = await waitFor("frontend DOWN", async () => {
      const st = await stateOf();
      seen = JSON.stringify(st);
      return st?.status === "DOWN" ? st : undefined;
    }, hc.fall * hc.interval + 5000, () => seen);
    assert.equal(down.checkStatus, "L4CON", "nothing listens: the check's connect is refused");
    assert.notEqual(await viaLb(info, "fiscalismia.com", lbIp), "200");
    for (const host of PROD_HOSTS.filter((h) => h !== "fiscalismia.com")) assert.equal(await viaLb(info, host, lbIp), "200", host);
    const start = await onServer(frontend, ["/usr/local/sbin/systemctl", "start", "nginx.service"]);
    assert.equal(start.code, 0, start.stderr);
    await waitFor("frontend UP", async () => {
      const st = await stateOf();
      seen = JSON.stringify(st);
      return st?.status === "UP" ? st : undefined;
    }, hc.rise * hc.interval + 5000, () => seen);
    assert.equal(await viaLb(info, "fiscalismia.com", lbIp), "200");
  });

  test("a route added to demo runs apply on the LB and the demo server only; prod's web servers run nothing", async () => {
    const info = await cloudInfo(l);
    const prodWeb = ["prod-monitoring", "prod-frontend", "prod-backend"].map((n) => serverNamed(info, n));
    const applyLogs = async () => Promise.all(prodWeb.map(async (s) => (await onServer(s, ["cat", "/srv/ingress/apply.log"])).stdout));
    const before = await applyLogs();
    const file = configWith("demo", (c) => {
      const sites = c["hetzner-ingress:sites"] as Record<string, unknown>[];
      sites.push({ hostname: "api.demo.fiscalismia.com", server: "demo", port: 9443, tls: { source: "self-signed" } });
    });
    // The preview says what the up will do, and does none of it.
    const preview = await local(l, ["preview", "--stack", "demo", "--config", file], { STATSPASSWORD: STATS_PASSWORD });
    assert.equal(preview.code, 0, said(preview));
    assert.deepEqual(hostCommands(preview), [], said(preview));
    assert.match(preview.stdout, /^\+- replace command:remote:Command deploy-demo-apply \(create, triggers\)$/m);
    assert.match(preview.stdout, /^~ update command:remote:Command ingress-routes \(stdin\)$/m);
    assert.notEqual(await viaLb(info, "api.demo.fiscalismia.com", lbIp), "200");
    const r = await up("demo", "--config", file);
    assert.equal(r.code, 0, said(r));
    const ran = hostCommands(r).map((line) => line.trim().split(" ")[1]!.replace(/:$/, ""));
    assert.ok(ran.length > 0, said(r));
    for (const step of ran) assert.match(step, /^(deploy-demo-|ingress-routes$)/, `only demo's deploy and its routes on the LB run: ${ran.join(", ")}`);
    assert.ok(ran.includes("ingress-routes") && ran.includes("deploy-demo-apply"), ran.join(", "));
    assert.deepEqual(await applyLogs(), before, "prod's web servers ran no apply");
    assert.equal(await viaLb(info, "api.demo.fiscalismia.com", lbIp), "200");
    for (const host of [...PROD_HOSTS, ...DEMO_HOSTS]) assert.equal(await viaLb(info, host, lbIp), "200", host);
    // Back to the shipped config: the route leaves again.
    const back = await up("demo");
    assert.equal(back.code, 0, said(back));
    assert.notEqual(await viaLb(info, "api.demo.fiscalismia.com", lbIp), "200");
  });

  test("a change the host's nginx refuses fails the up with apply.sh's message, and the old config keeps serving without a failed request", async () => {
    const info = await cloudInfo(l);
    const file = configWith("demo", (c) => {
      const sites = c["hetzner-ingress:sites"] as Record<string, unknown>[];
      sites.push({ hostname: "bad.demo.fiscalismia.com", server: "demo", port: 9444, tls: { source: "provided", certSecret: "badCert", keySecret: "badKey" } });
    });
    const loop = clientLoop(info, "demo.fiscalismia.com", lbIp);
    const r = await local(l, ["up", "--stack", "demo", "--config", file], { STATSPASSWORD: STATS_PASSWORD, BADCERT: "not a certificate", BADKEY: "not a key" });
    const seen = await loop.stop();
    assert.equal(r.code, 1, said(r));
    assert.match(r.stderr, /deploy-demo-apply/);
    assert.match(r.stderr, /apply: error: nginx rejected release \S+ \(srv\/ingress\/current\/nginx\/nginx\.conf\)/);
    assert.match(r.stderr, /PEM|certificate/i, "nginx's own words reach the operator");
    assert.equal(seen.failed, 0, JSON.stringify(seen));
    assert.ok(seen.ok > 0);
    const again = await up("demo");
    assert.equal(again.code, 0, said(again));
    for (const host of DEMO_HOSTS) assert.equal(await viaLb(info, host, lbIp), "200", host);
  });

  test("replacing the demo server on purpose: a new machine gets the bundle and serves", async () => {
    const before = serverNamed(await cloudInfo(l), "demo-demo");
    const r = await up("demo", "--replace", "server-demo");
    assert.equal(r.code, 0, said(r));
    const info = await cloudInfo(l);
    const after = serverNamed(info, "demo-demo");
    assert.notEqual(after.id, before.id);
    assert.equal(info.servers.filter((s) => s.name === "demo-demo").length, 1, "the old machine is gone");
    const ran = hostCommands(r).map((line) => line.trim().split(" ")[1]!.replace(/:$/, ""));
    for (const step of ["deploy-demo-boot", "deploy-demo-bundle", "deploy-demo-apply"]) assert.ok(ran.includes(step), `${step} ran on the new machine: ${ran.join(", ")}`);
    const nginx = await onServer(after, ["sh", "-c", "read -r pid _ </var/lib/local-machine/containers/nginx.pid && test -d /proc/$pid && echo running"]);
    assert.equal(nginx.stdout.trim(), "running");
    for (const host of DEMO_HOSTS) assert.equal(await until200(info, host, lbIp), "200", host);
  });

  test("switching the engine haproxy -> ts -> haproxy under a client loop fails no request outside the switch window", async () => {
    const info = await cloudInfo(l);
    const ts = configWith("prod", (c) => {
      (c["hetzner-ingress:ingress"] as Record<string, unknown>)["engine"] = "ts";
    });
    for (const [label, args] of [["ts", ["--config", ts]], ["haproxy", []]] as const) {
      const loop = clientLoop(info, "fiscalismia.com", lbIp);
      await new Promise((r) => setTimeout(r, 500));
      const r = await up("prod", ...args);
      await new Promise((r) => setTimeout(r, 500));
      const seen = await loop.stop();
      assert.equal(r.code, 0, said(r));
      assert.equal(String(outputsOf(r)["engine"]), label);
      const window = seen.failures.length === 0 ? 0 : Math.max(...seen.failures) - Math.min(...seen.failures);
      process.stdout.write(`# switch to ${label}: ${seen.failed} failed of ${seen.ok + seen.failed} new connections, within ${(window * 1000).toFixed(0)} ms\n`);
      // docs/runbook.md: about a second at most (0.2-1.0 s measured with both cores busy).
      assert.ok(window <= 3, `failures only inside the switch window: ${JSON.stringify(seen)}`);
      for (const host of [...PROD_HOSTS, ...DEMO_HOSTS]) assert.equal(await viaLb(info, host, lbIp), "200", `${host} on ${label}`);
    }
  });

  test("destroying demo while a client hits prod: demo's routes, attachment and machine go, prod fails no request; an up cut short by Ctrl-C, then another, bring demo back", async () => {
    const info = await cloudInfo(l);
    const lb = serverNamed(info, "prod-loadbalancer");
    const loop = clientLoop(info, "fiscalismia.com", lbIp);
    await new Promise((r) => setTimeout(r, 500));
    const r = await local(l, ["destroy", "--stack", "demo"]);
    await new Promise((r) => setTimeout(r, 500));
    const seen = await loop.stop();
    assert.equal(r.code, 0, said(r));
    assert.equal(seen.failed, 0, JSON.stringify(seen));
    const after = await cloudInfo(l);
    assert.deepEqual(after.servers.map((s) => s.name).sort(), ["prod-backend", "prod-frontend", "prod-loadbalancer", "prod-monitoring"]);
    const addrs = (await onServer(lb, ["ip", "-4", "-o", "addr"])).stdout;
    assert.doesNotMatch(addrs, /172\.20\./, "the LB's demo attachment is gone");
    const routes = (await onServer(lb, ["ls", "/srv/ingress/routes"])).stdout;
    assert.doesNotMatch(routes, /demo/);
    for (const host of DEMO_HOSTS) assert.notEqual(await viaLb(info, host, lbIp), "200", host);

    // Back up, but cut short by Ctrl-C once the server exists: the state names what was made,
    // so the next up finishes the job without a second server or network.
    const cut = spawn(process.execPath, ["--import", "tsx", join(ROOT, "local", "cli.ts"), "up", "--stack", "demo"], { env: { ...l.env, STATSPASSWORD: STATS_PASSWORD }, cwd: ROOT, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => cut.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 600 && !(await cloudInfo(l)).servers.some((s) => s.name === "demo-demo"); i++) await new Promise((r) => setTimeout(r, 50));
    cut.kill("SIGINT");
    assert.equal(await exited, 130);
    const again = await up("demo");
    assert.equal(again.code, 0, said(again));
    assert.doesNotMatch(again.stdout, /\+ create hcloud:index\/(server|network):/, "the interrupted run's server and network are in the state");
    const final = await cloudInfo(l);
    assert.equal(final.servers.filter((s) => s.name === "demo-demo").length, 1);
    for (const host of [...PROD_HOSTS, ...DEMO_HOSTS]) assert.equal(await until200(final, host, lbIp), "200", host);
  });
});
