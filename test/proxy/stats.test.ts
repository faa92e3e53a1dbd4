/**
 * The stats endpoint and the part-2 runtime as the bundle runs them: two worker threads, the
 * primary's health checks and stats page, the shared rate table. Loopback only.
 */
import assert from "node:assert/strict";
import { ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { clientHello } from "../../proxy/fuzz/vectors";
import { basicAuthOk, statsFormat } from "../../proxy/stats/stats-server";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { freePort, startBackend, waitFor } from "./helpers/harness";

describe("stats request parsing", () => {
  it("picks the format from the path and query", () => {
    assert.equal(statsFormat("/stats", "/stats"), "html");
    assert.equal(statsFormat("/stats?json", "/stats"), "json");
    assert.equal(statsFormat("/stats;json", "/stats"), null);
    assert.equal(statsFormat("/stats?x=1&json", "/stats"), "json");
    assert.equal(statsFormat("/stats.json", "/stats"), "json");
    assert.equal(statsFormat("/stats?text", "/stats"), "text");
    assert.equal(statsFormat("/other", "/stats"), null);
  });

  it("checks basic auth exactly", () => {
    const header = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;
    assert.ok(basicAuthOk(header("admin:pw"), "admin", "pw"));
    assert.ok(!basicAuthOk(header("admin:pwx"), "admin", "pw"));
    assert.ok(!basicAuthOk(header("admin2:pw"), "admin", "pw"));
    assert.ok(!basicAuthOk(undefined, "admin", "pw"));
    assert.ok(!basicAuthOk("Bearer x", "admin", "pw"));
  });
});

const run = promisify(execFile);
const curl = async (...args: string[]) => (await run("curl", ["-sS", "--max-time", "3", ...args])).stdout;

describe("bundle with two worker threads: health, stats, shared rate table", () => {
  let dir: string;
  let proxy: ChildProcess;
  let output = "";
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let tlsPort: number;
  let statsPort: number;
  let deadPort: number;
  let socketPath: string;

  before(async () => {
    const bundle = buildProxyScript();
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-stats-"));
    backend = await startBackend((c) => c.socket.on("end", () => c.socket.end()));
    [tlsPort, statsPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    socketPath = path.join(dir, "stats.sock");
    const config: ProxyConfigInput = {
      global: { workers: 2 },
      log: { format: "text" },
      listeners: [
        {
          name: "https",
          mode: "tls-passthrough",
          binds: [{ address: "127.0.0.1", port: tlsPort }],
          inspectTimeoutMs: 300,
          rateLimit: { maxConnectionsPerWindow: 6, windowMs: 60_000 },
        },
      ],
      routes: [{ host: "a.example", backend: "live" }],
      backends: [
        { name: "live", servers: [{ name: "up1", address: "127.0.0.1", port: backend.port }], healthCheck: { intervalMs: 200, timeoutMs: 200, fall: 1, rise: 1, sendProxyV2: false } },
        { name: "dead", servers: [{ name: "gone", address: "127.0.0.1", port: deadPort }], healthCheck: { intervalMs: 200, timeoutMs: 200, fall: 1, rise: 1 } },
      ],
      stats: { bind: { address: "127.0.0.1", port: statsPort }, auth: { username: "admin", passwordEnv: "PXT_STATS_PASSWORD" }, allowedSources: ["127.0.0.1/32"] },
    };
    const file = path.join(dir, "proxy.json");
    writeFileSync(file, JSON.stringify(config));
    proxy = spawn(NODE_CURRENT, [bundle, "--config", file, "--stats-socket", socketPath], { env: { ...process.env, PXT_STATS_PASSWORD: "s3cret" }, stdio: ["ignore", "pipe", "pipe"] });
    proxy.stdout!.on("data", (d) => (output += d));
    proxy.stderr!.on("data", (d) => (output += d));
    await waitFor(() => output.includes("ready"), 10_000, "proxy ready");
  });
  after(async () => {
    proxy.kill("SIGKILL");
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("401 without or with wrong credentials, 200 with them; JSON shows the check results", async () => {
    const url = `http://127.0.0.1:${statsPort}/stats`;
    const code = ["-o", "/dev/null", "-w", "%{http_code}"];
    assert.equal(await curl(...code, url), "401");
    assert.equal(await curl(...code, "-u", "admin:wrong", url), "401");
    assert.equal(await curl(...code, "-u", "admin:s3cret", url), "200");
    await waitFor(() => output.includes("Server dead/gone is DOWN, reason: Layer4 connection problem"), 3000, "DOWN log line");
    type Report = { backends: { name: string; status: string; servers: { statusDetail: string; checkStatus: string; checkDescription: string; checkInfo: string }[] }[] };
    // The two checks run on their own schedules: on a loaded machine `dead` can be DOWN while
    // `live` has not finished its first check (INI). Wait until both have a result.
    let report: Report = { backends: [] };
    const settled = async () => {
      report = JSON.parse(await curl("-u", "admin:s3cret", `${url}?json`)) as Report;
      const live = report.backends.find((b) => b.name === "live")?.servers[0];
      return live !== undefined && live.checkStatus !== "INI";
    };
    const deadline = Date.now() + 10_000;
    while (!(await settled())) {
      assert.ok(Date.now() < deadline, `live never finished its first check: ${JSON.stringify(report)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const dead = report.backends.find((b) => b.name === "dead")!;
    assert.deepEqual([dead.status, dead.servers[0]!.checkStatus, dead.servers[0]!.checkDescription, dead.servers[0]!.checkInfo], ["DOWN", "L4CON", "Layer4 connection problem", "Connection refused"]);
    const live = report.backends.find((b) => b.name === "live")!;
    assert.deepEqual([live.servers[0]!.statusDetail, live.servers[0]!.checkStatus], ["UP", "L4OK"]);
    assert.match(await curl("-u", "admin:s3cret", `${url}?text`), /^server dead\/gone DOWN L4CON /m);
    assert.match(await curl("-u", "admin:s3cret", url), /<table>/);
  });

  it("the unix socket serves the same report without auth", async () => {
    const report = JSON.parse(await curl("--unix-socket", socketPath, "http://localhost/stats.json")) as { workers: number };
    assert.equal(report.workers, 2);
  });

  it("one rate table for both threads: the limit holds per host, and the stats count every session", async () => {
    const connect = () =>
      new Promise<number>((resolve) => {
        const s = net.connect(tlsPort, "127.0.0.1", () => s.end(clientHello({ serverNames: [{ type: 0, name: "a.example" }] })));
        let bytes = 0;
        s.on("data", (d: Buffer) => (bytes += d.length));
        s.on("error", () => undefined);
        s.on("close", () => resolve(bytes));
      });
    // The backend also sees the (empty, tcp) health checks: count connections that carried a hello.
    const served = () => backend.connections.filter((c) => c.bytes().length > 0).length;
    for (let i = 0; i < 12; i++) await connect();
    // The 6th connection reaches the threshold: 5 served whatever thread the kernel picked.
    await waitFor(() => served() >= 5, 2000, "five served");
    assert.equal(served(), 5);
    const report = JSON.parse(await curl("--unix-socket", socketPath, "http://localhost/stats.json")) as { listeners: { name: string; rateLimited: number }[]; backends: { name: string; sessions: number }[] };
    assert.equal(report.listeners.find((l) => l.name === "https")?.rateLimited, 7);
    assert.equal(report.backends.find((b) => b.name === "live")?.sessions, 5);
  });

  it("403 from a source outside allowedSources, whatever the credentials", async () => {
    const r = await curl("-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.2", "-u", "admin:s3cret", `http://127.0.0.1:${statsPort}/stats`);
    assert.equal(r, "403");
  });
});
