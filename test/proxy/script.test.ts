/**
 * The built bundle as a process: `--check` on Node 20, workers (threads with
 * reusePort on this Node, node:cluster on Node 20), reload by SIGHUP and by
 * file change, a bad config refused while the old one keeps serving, and a
 * SIGTERM drain. Loopback only.
 */
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseProxyHeader } from "../../proxy/codec/proxy-header-parser";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { clientHello } from "../../proxy/fuzz/vectors";
import { buildProxyScript, NODE20, NODE_CURRENT } from "./helpers/script";
import { connectClient, freePort, isListening, jsonLinesOf, startBackend, waitFor } from "./helpers/harness";

let bundle: string;
let dir: string;
before(() => {
  bundle = buildProxyScript();
  dir = mkdtempSync(path.join(os.tmpdir(), "pxt-bundle-run-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configFor(port: number, backendPort: number, workers: number, host = "a.example"): ProxyConfigInput {
  return {
    global: { workers, drainGraceMs: 2000 },
    listeners: [{ name: "https_ingress", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port }] }],
    routes: [{ host, backend: "a" }],
    backends: [{ name: "a", servers: [{ name: "a01", address: "127.0.0.1", port: backendPort }] }],
  };
}

describe("the proxy script --check", () => {
  it("runs on Node 20 and validates", () => {
    const version = execFileSync(NODE20, ["--version"]).toString().trim();
    assert.match(version, /^v20\./);
    const file = path.join(dir, "ok.json");
    writeFileSync(file, JSON.stringify(configFor(443, 8443, 2)));
    const ok = spawnSync(NODE20, [bundle, "--check", "--config", file]);
    assert.equal(ok.status, 0, ok.stderr.toString());
    assert.match(ok.stdout.toString(), /is valid: 1 listener\(s\), 1 route\(s\), 1 backend\(s\)/);
  });

  it("exits non-zero naming the field", () => {
    const file = path.join(dir, "bad.json");
    const bad = configFor(443, 8443, 1) as { backends: { servers: { port: number }[] }[] };
    bad.backends[0]!.servers[0]!.port = 0;
    writeFileSync(file, JSON.stringify(bad));
    for (const node of [NODE20, NODE_CURRENT]) {
      const r = spawnSync(node, [bundle, "--check", "--config", file]);
      assert.equal(r.status, 1);
      assert.match(r.stderr.toString(), /backends\[0\]\.servers\[0\]\.port: Too small/);
    }
    const usage = spawnSync(NODE_CURRENT, [bundle, "--check"]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr.toString(), /--config FILE is required/);
  });
});

interface Running {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

function run(node: string, configFile: string): Running {
  const child = spawn(node, [bundle, "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = jsonLinesOf(child.stdout!);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited };
}

async function roundTrip(port: number, host: string): Promise<Buffer> {
  const client = await connectClient(port);
  client.socket.end(clientHello({ serverNames: [{ type: 0, name: host }] }));
  await waitFor(() => client.closed, 3000, `round trip for ${host}`);
  return Buffer.concat(client.received);
}

for (const [label, node, mode] of [
  ["Node 24, worker threads with reusePort", NODE_CURRENT, "threads"],
  ["Node 20, node:cluster", NODE20, "cluster"],
] as const) {
  describe(`the proxy script with 2 workers on ${label}`, { timeout: 20_000 }, () => {
    it("serves, reloads on SIGHUP and file change, refuses a bad config, drains on SIGTERM", async () => {
      const backend = await startBackend((c) => c.socket.on("end", () => c.socket.end(`seen ${c.bytes().length}`)));
      const port = await freePort();
      const file = path.join(dir, `${mode}.json`);
      writeFileSync(file, JSON.stringify(configFor(port, backend.port, 2)));
      const proxy = run(node, file);
      try {
        await waitFor(() => proxy.lines.some((l) => l.msg === "ready"), 5000, "ready");
        assert.equal(proxy.lines.find((l) => l.msg === "starting")!.mode, mode);
        for (let i = 0; i < 6; i++) assert.match((await roundTrip(port, "a.example")).toString(), /^seen \d+$/);
        const header = parseProxyHeader(backend.connections[0]!.bytes());
        assert.ok(header.kind === "done" && header.header.command === "proxy" && header.header.source.address === "127.0.0.1");

        // invalid config: refused with a log line naming the field; old routes keep serving
        writeFileSync(file, JSON.stringify({ ...configFor(port, backend.port, 2), routes: [{ host: "b.example", backend: "missing" }] }));
        proxy.child.kill("SIGHUP");
        await waitFor(() => proxy.lines.some((l) => l.msg === "config reload refused, keeping the running config"), 3000, "refusal");
        const refusal = proxy.lines.find((l) => l.msg === "config reload refused, keeping the running config")!;
        assert.match(JSON.stringify(refusal.errors), /routes\[0\]\.backend: no backend named/);
        assert.match((await roundTrip(port, "a.example")).toString(), /^seen/);

        // a valid change, picked up from the file without a signal
        const before = backend.connections.length;
        writeFileSync(file, JSON.stringify(configFor(port, backend.port, 2, "b.example")));
        await waitFor(() => proxy.lines.filter((l) => l.msg === "config reloaded").length >= 2, 5000, "file reload in both workers");
        assert.equal((await roundTrip(port, "a.example")).length, 0, "old name is gone");
        assert.match((await roundTrip(port, "b.example")).toString(), /^seen/);
        assert.equal(backend.connections.length, before + 1);

        // SIGTERM with a live tunnel: stop accepting, let it finish within the grace period
        const live = await connectClient(port);
        live.socket.write(clientHello({ serverNames: [{ type: 0, name: "b.example" }] }));
        await waitFor(() => backend.connections.length === before + 2, 2000, "live tunnel");
        proxy.child.kill("SIGTERM");
        await waitFor(() => proxy.lines.filter((l) => l.msg === "draining").length >= 2, 3000, "draining");
        // A worker logs "draining" once it has closed its server; under node:cluster the listening
        // socket is the primary's, closed only when the primary has handled both workers' close
        // messages. Wait for the socket itself to go, then a connect must be refused.
        await waitFor(() => !isListening(port), 3000, `nothing listening on port ${port}`, () => `still listening; lines: ${JSON.stringify(proxy.lines.slice(-4))}`);
        await assert.rejects(connectClient(port), /ECONNREFUSED/);
        live.socket.end();
        await waitFor(() => live.closed, 2000, "live tunnel finishes");
        assert.match(Buffer.concat(live.received).toString(), /^seen/);
        assert.equal(await proxy.exited, 0);
        const workers = new Set(proxy.lines.filter((l) => l.event === "connection").map((l) => l.worker));
        assert.ok(workers.size >= 1);
      } finally {
        proxy.child.kill("SIGKILL");
        await backend.close();
      }
    });
  });
}
