/**
 * A worker that dies: every connection it held ends with exactly one line, and the primary
 * says how many were lost, in its exit line and when the replacement is ready. The crash is
 * injected from outside the proxy's code: a module preloaded into every thread (`--import`,
 * which worker threads inherit) throws in the worker whose thread id a file names. Threads
 * mode, on this Node; loopback only.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { clientHello } from "../../proxy/fuzz/vectors";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { connectClient, freePort, jsonLinesOf, startBackend, waitFor } from "./helpers/harness";

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "pxt-crash-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Throws, in a worker thread, once the flag file names its thread id. */
const CRASH_HOOK = `
import { existsSync, readFileSync } from "node:fs";
import { isMainThread, threadId } from "node:worker_threads";
if (!isMainThread) {
  const flag = process.env.CRASH_FLAG;
  const timer = setInterval(() => {
    if (existsSync(flag) && readFileSync(flag, "utf8").trim() === String(threadId)) {
      clearInterval(timer);
      throw new Error("injected crash in thread " + threadId);
    }
  }, 20);
  timer.unref();
}
`;

test("a crashed worker's connections each get one line, and the primary counts them in its exit and replacement lines", { timeout: 60_000 }, async () => {
  const echo = await startBackend((c) => c.socket.on("data", (d: Buffer) => c.socket.write(d)));
  const port = await freePort();
  const config = path.join(dir, "proxy.json");
  writeFileSync(
    config,
    JSON.stringify({
      global: { workers: 2, drainGraceMs: 300 },
      listeners: [{ name: "https_ingress", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port }] }],
      routes: [{ host: "a.example", backend: "a" }],
      backends: [{ name: "a", servers: [{ name: "a01", address: "127.0.0.1", port: echo.port }] }],
    }),
  );
  const hook = path.join(dir, "crash-hook.mjs");
  writeFileSync(hook, CRASH_HOOK);
  const flag = path.join(dir, "crash");
  const child = spawn(NODE_CURRENT, ["--import", hook, buildProxyScript(), "--config", config], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CRASH_FLAG: flag } });
  const lines = jsonLinesOf(child.stdout!);
  try {
    await waitFor(() => lines.some((l) => l["msg"] === "ready"), 10_000, "ready");
    // Open tunnels: the kernel spreads them over both workers' sockets (reusePort). Each is up
    // once its hello comes back through it (the backend echoes).
    const N = 40;
    const clients = await Promise.all(Array.from({ length: N }, () => connectClient(port)));
    for (const c of clients) c.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
    await waitFor(() => clients.every((c) => c.received.length > 0), 10_000, `${N} tunnels up`);
    writeFileSync(flag, "1");
    const find = (msg: string) => lines.find((l) => l["msg"] === msg);
    await waitFor(() => find("worker exited, respawning") !== undefined, 10_000, "the exit line");
    const exitLine = find("worker exited, respawning")!;
    const crashLine = lines.find((l) => l["msg"] === "worker crashed, its connections cut");
    assert.ok(crashLine, "the worker said it crashed");
    const cut = crashLine["connections"] as number;
    const cutLines = lines.filter((l) => l["msg"] === "connection" && l["reason"] === "worker-crash");
    assert.equal(cutLines.length, cut, "one line per connection it cut");
    for (const l of cutLines) assert.equal(l["ts"], "ID", JSON.stringify(l));
    assert.equal(exitLine["connectionsCut"], cut);
    assert.equal(exitLine["linesWritten"], true);
    // The clients see exactly that many cut; the other worker's tunnels live on.
    await waitFor(() => clients.filter((c) => c.closed).length === cut, 5000, `${cut} clients cut`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(clients.filter((c) => c.closed).length, cut);
    assert.ok(cut > 0 && cut < N, `the crashed worker held ${cut} of ${N} (the kernel spreads them)`);
    await waitFor(() => find("worker replaced") !== undefined, 10_000, "the replacement");
    assert.equal(find("worker replaced")!["connectionsCut"], cut);
    for (const c of clients) c.socket.destroy();
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    await echo.close();
  }
});
