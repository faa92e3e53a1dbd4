import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cleanupStale, HETZNER_PRIVATE_MTU, isLive, listNetns, type Netns, RoutedNetwork, pollUntil, probeTcp, processesInPrefixedNetns, run, Sandbox, Segment, waitForListening } from "../../lab";

/** What the root namespace looks like; nothing the sandbox does may change it. */
async function rootNetworkState(): Promise<string> {
  const parts = await Promise.all([
    run(["ip", "-br", "link"]),
    run(["ip", "-br", "addr"]),
    run(["ip", "-4", "route", "show", "table", "all"]),
    run(["ip", "-6", "route", "show", "table", "main"]),
  ]);
  return parts.map((p) => p.stdout).join("\n---\n");
}

async function establishedTcpInfo(ns: Netns): Promise<string> {
  return (await ns.exec(["ss", "-Htin", "state", "established"])).stdout;
}

describe("netns library", { timeout: 60_000 }, () => {
  let rootBefore = "";
  before(async () => {
    await cleanupStale();
    rootBefore = await rootNetworkState();
  });

  it("joins two namespaces with a veth; TCP over IPv4 and IPv6 sees MTU 1450", async () => {
    const sb = await Sandbox.create();
    try {
      const a = await sb.namespace("a");
      const b = await sb.namespace("b");
      await sb.veth({ ns: a, ifname: "eth0" }, { ns: b, ifname: "eth0" }, HETZNER_PRIVATE_MTU);
      await a.addAddress("eth0", "198.51.100.1/24");
      await b.addAddress("eth0", "198.51.100.2/24");
      await a.addAddress("eth0", "2001:db8:5::1/64");
      await b.addAddress("eth0", "2001:db8:5::2/64");
      assert.equal(await a.linkMtu("eth0"), 1450);
      assert.equal(await b.linkMtu("eth0"), 1450);

      await b.spawn("echo", ["socat", "TCP6-LISTEN:7000,ipv6only=0,reuseaddr,fork", "SYSTEM:echo hello"]);
      // Holds its connection open so the path MTU can be read from the socket.
      await b.spawn("holder", ["socat", "TCP-LISTEN:7001,reuseaddr", "SYSTEM:sleep 5"]);
      await waitForListening(b, [{ port: 7000 }, { port: 7001 }]);

      for (const peer of ["198.51.100.2", "[2001:db8:5::2]"]) {
        const r = await a.exec(["socat", "-T", "3", "-u", `TCP:${peer}:7000`, "STDOUT"], { timeoutMs: 5000 });
        assert.equal(r.stdout, "hello\n", `reply from ${peer}`);
      }
      const held = await a.spawn("client", ["socat", "-u", "TCP:198.51.100.2:7001", "OPEN:/dev/null"]);
      const info = await pollUntil("an established connection", async () => {
        const out = await establishedTcpInfo(a);
        return out.includes("pmtu:") ? out : undefined;
      }, { timeoutMs: 3000 });
      assert.match(info, /\bpmtu:1450\b/);
      // 1450 - 20 (IPv4) - 20 (TCP) - 12 (timestamps)
      assert.match(info, /\badvmss:1398\b/);
      await held.stop();
    } finally {
      await sb.teardown();
    }
    assert.equal(existsSync(sb.dir), false);
  });

  it("routes a Hetzner-style private network through its gateway at .1", async () => {
    const sb = await Sandbox.create();
    try {
      const net = await RoutedNetwork.create(sb, { name: "prod", ipRange: "172.24.0.0/16" });
      const lb = await sb.namespace("lb");
      const web = await sb.namespace("web");
      const lbLink = await net.attach(lb, { ip: "172.24.1.3" });
      await net.attach(web, { ip: "172.24.0.3", ifname: "ens10" });
      assert.equal(net.gateway, "172.24.0.1");
      assert.equal(await lb.linkMtu(lbLink.ifname), 1450);

      const route = (await lb.exec(["ip", "route", "get", "172.24.0.3"])).stdout;
      assert.match(route, /via 172\.24\.0\.1 dev eth-prod src 172\.24\.1\.3/);
      assert.equal(await lb.readSysctl("net.ipv4.ip_forward"), "0");
      assert.equal(await web.readSysctl("net.ipv4.ip_forward"), "0");
      assert.equal(await net.router.readSysctl("net.ipv4.ip_forward"), "1");

      await web.spawn("listener", ["socat", "TCP-LISTEN:8080,reuseaddr,fork", "SYSTEM:true"]);
      await waitForListening(web, [{ port: 8080 }]);
      assert.equal((await probeTcp(lb, "172.24.0.3", 8080)).outcome, "connected");
      assert.equal((await probeTcp(lb, "172.24.0.3", 8081)).outcome, "refused");
      // The path really runs through the router: stop it forwarding and the SYN vanishes.
      await net.router.setForwarding(false);
      assert.equal((await probeTcp(lb, "172.24.0.3", 8080, 300)).outcome, "timeout");
      await net.router.setForwarding(true);

      // A machine plugged in later leaves the gateway's MAC as the others learnt it (a bridge
      // would otherwise take its lowest port's MAC and strand every neighbour entry).
      const gatewayMac = async () => /lladdr (\S+)/.exec((await lb.exec(["ip", "neigh", "show", "172.24.0.1"])).stdout)?.[1];
      const learnt = await gatewayMac();
      assert.ok(learnt !== undefined, "the LB has a neighbour entry for its gateway");
      const late = await net.attach(await sb.namespace("late"), { ip: "172.24.2.1" });
      // The lowest unicast MAC a port can have: a bridge left to itself would take it.
      await net.router.ip(["link", "set", "dev", late.port, "address", "02:00:00:00:00:01"]);
      assert.equal(await gatewayMac(), learnt);
      assert.equal((await net.router.exec(["cat", "/sys/class/net/br0/address"])).stdout.trim(), learnt);
      assert.equal((await probeTcp(lb, "172.24.0.3", 8080, 300)).outcome, "connected");
      assert.equal(await rootNetworkState(), rootBefore, "root namespace changed while the sandbox ran");
    } finally {
      await sb.teardown();
    }
  });

  it("a public segment joins clients and the LB on-link over IPv4 and IPv6", async () => {
    const sb = await Sandbox.create();
    try {
      const internet = await Segment.create(sb, { name: "internet" });
      const lb = await sb.namespace("lb");
      const client = await sb.namespace("client");
      const lbLink = await internet.attach(lb, { ipv4: "203.0.113.10/24", ipv6: "2001:db8:113::10/64", ifname: "eth0" });
      await internet.attach(client, { ipv4: "203.0.113.20/24", ipv6: "2001:db8:113::20/64" });
      assert.deepEqual({ ipv4: lbLink.ipv4, ipv6: lbLink.ipv6 }, { ipv4: "203.0.113.10", ipv6: "2001:db8:113::10" });
      assert.equal(await lb.linkMtu("eth0"), 1500);
      await lb.spawn("listener", ["socat", "TCP6-LISTEN:443,ipv6only=0,reuseaddr,fork", "SYSTEM:true"]);
      await waitForListening(lb, [{ port: 443 }]);
      assert.equal((await probeTcp(client, "203.0.113.10", 443)).outcome, "connected");
      assert.equal((await probeTcp(client, "2001:db8:113::10", 443)).outcome, "connected");
    } finally {
      await sb.teardown();
    }
  });

  it("teardown leaves no namespace, process or file, and the root namespace as it was", async () => {
    const sb = await Sandbox.create();
    const a = await sb.namespace("a");
    const b = await sb.namespace("b");
    await sb.veth({ ns: a, ifname: "eth0" }, { ns: b, ifname: "eth0" }, 1450);
    const daemon = await a.spawn("sleeper", ["sleep", "30"]);
    // A process the sandbox did not start itself still dies with its namespace.
    await b.exec(["sh", "-c", "setsid sleep 30 >/dev/null 2>&1 < /dev/null &"]);
    // spawn() returns once `ip netns exec` runs, which may be before it has entered the
    // namespace (the background sleep is in b from its fork on): wait for the daemon to be in a.
    await pollUntil(
      "the daemon inside its namespace",
      async () => (processesInPrefixedNetns(sb.namePrefix).includes(daemon.pid) ? true : undefined),
      { timeoutMs: 3000, intervalMs: 10 },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; pids in the namespaces: ${JSON.stringify(processesInPrefixedNetns(sb.namePrefix))}, daemon ${daemon.pid}`);
    });
    assert.equal(processesInPrefixedNetns(sb.namePrefix).length, 2);
    assert.equal(sb.leftovers().namespaces.length, 2);

    await sb.teardown();
    assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
    assert.deepEqual(listNetns().filter((n) => n.startsWith(sb.namePrefix)), []);
    assert.equal(isLive(daemon.pid), false);
    assert.equal(await rootNetworkState(), rootBefore);
    await assert.rejects(sb.namespace("c"), /torn down/);
  });

  for (const mode of ["exit", "signal"] as const) {
    it(`cleans up a run that ends by ${mode === "exit" ? "returning" : "SIGTERM"} without teardown`, async () => {
      const child = await runAbandoned(mode);
      assert.deepEqual(listNetns().filter((n) => n.startsWith(child.info.namePrefix)), []);
      assert.equal(isLive(child.info.pid), false);
      assert.equal(existsSync(child.info.dir), false);
      if (mode === "signal") assert.equal(child.signal, "SIGTERM");
      else assert.equal(child.code, 0);
    });
  }

  it("cleanupStale removes what a SIGKILLed run left, and leaves live runs alone", async () => {
    // A prefix of its own, so that other test files' cleanupStale() cannot get there first.
    const prefix = "igstale";
    const mine = await Sandbox.create({ prefix });
    try {
      await mine.namespace("alive");
      const child = await runAbandoned("sigkill", prefix);
      assert.equal(child.signal, "SIGKILL");
      const stale = listNetns().filter((n) => n.startsWith(child.info.namePrefix));
      assert.equal(stale.length, 1, "a SIGKILLed run leaves its namespace");
      assert.equal(isLive(child.info.pid), true, "and its daemon");

      const cleaned = await cleanupStale(prefix);
      assert.ok(cleaned.namespaces.includes(`${child.info.namePrefix}abandoned`));
      assert.ok(cleaned.dirs.includes(child.info.dir));
      assert.ok(cleaned.live.includes(`${mine.namePrefix}alive`));
      assert.deepEqual(listNetns().filter((n) => n.startsWith(child.info.namePrefix)), []);
      assert.equal(isLive(child.info.pid), false);
      assert.deepEqual(mine.leftovers().namespaces, [`${mine.namePrefix}alive`]);
    } finally {
      await mine.teardown();
    }
  });

  after(async () => {
    assert.equal(await rootNetworkState(), rootBefore);
  });
});

interface AbandonedInfo {
  readonly namePrefix: string;
  readonly dir: string;
  readonly pid: number;
}

/** Runs the fixture in its own process and waits (bounded) for it to end. */
function runAbandoned(mode: "exit" | "signal" | "sigkill", prefix = "ig"): Promise<{ info: AbandonedInfo; code: number | null; signal: NodeJS.Signals | null }> {
  const fixture = join(__dirname, "fixtures", "abandoned-run.ts");
  const child = spawn(process.execPath, ["--import", "tsx", fixture, mode, prefix], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let info: AbandonedInfo | undefined;
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
    const line = out.split("\n")[0];
    if (info === undefined && out.includes("\n") && line !== undefined) {
      info = JSON.parse(line) as AbandonedInfo;
      if (mode === "signal") child.kill("SIGTERM");
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fixture ${mode} did not finish: ${err}`));
    }, 20_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (info === undefined) reject(new Error(`fixture ${mode} printed nothing (code ${code}, ${signal}): ${err}`));
      else resolve({ info, code, signal });
    });
  });
}
