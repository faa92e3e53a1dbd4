/**
 * routes.d: merging proxy.json with every stack's routes file (pure), reading
 * the directory, and the bundle run with `--routes-dir` exactly as the plan
 * starts it: --check, a fatal start on a bad file, and reloads that add and
 * refuse routes while a live tunnel keeps flowing. Loopback only.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseProxyHeader } from "../../proxy/codec/proxy-header-parser";
import { assembleProxyConfig, SourceFile } from "../../proxy/config/assemble";
import { loadProxyConfig } from "../../proxy/config/load";
import { ProxyConfigInput, ProxyRoutesFileInput } from "../../contract/proxy-config";
import { clientHello } from "../../proxy/fuzz/vectors";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { connectClient, freePort, jsonLinesOf, startBackend, waitFor } from "./helpers/harness";

const base = (port = 443, extra: Partial<ProxyConfigInput> = {}): ProxyConfigInput => ({
  listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port }] }],
  routes: [],
  backends: [],
  ...extra,
});

function fragment(stack: string, hosts: Record<string, number>, address = "127.0.0.1"): ProxyRoutesFileInput {
  const names = Object.keys(hosts);
  return {
    kind: "proxy-routes",
    stack,
    routes: names.map((host, i) => ({ host, backend: `${stack}_${i}` })),
    backends: names.map((host, i) => ({ name: `${stack}_${i}`, servers: [{ name: `${stack}${i}`, address, port: hosts[host]! }] })),
  };
}

const source = (p: string, value: unknown): SourceFile => ({ path: p, text: typeof value === "string" ? value : JSON.stringify(value) });
const D = "/srv/ingress/current/proxy/routes.d";
const CONFIG = "/srv/ingress/current/proxy/proxy.json";

function errorsOf(base: SourceFile, fragments: SourceFile[]): string[] {
  const r = assembleProxyConfig(base, fragments);
  assert.ok(!r.ok, "expected the merge to be refused");
  return r.ok ? [] : [...r.errors];
}

describe("merging routes.d into proxy.json", () => {
  it("appends every file's routes and backends in the order given, keeping proxy.json's own", () => {
    const own = base(443, { routes: [{ host: "own.example", backend: "own" }], backends: [{ name: "own", servers: [{ name: "o", address: "10.0.0.9", port: 443 }] }] });
    const r = assembleProxyConfig(source(CONFIG, own), [
      source(`${D}/demo.json`, fragment("demo", { "demo.example": 443, "api.demo.example": 8443 }, "172.20.0.2")),
      source(`${D}/prod.json`, fragment("prod", { "prod.example": 443 }, "172.24.0.3")),
    ]);
    assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
    if (!r.ok) return;
    assert.deepEqual(r.config.routes.map((x) => x.host), ["own.example", "demo.example", "api.demo.example", "prod.example"]);
    assert.deepEqual(r.config.backends.map((b) => b.name), ["own", "demo_0", "demo_1", "prod_0"]);
    assert.deepEqual(r.fragments.map((f) => f.stack), ["demo", "prod"]);
    // defaults of the fragment schema are filled in like those of the config
    assert.deepEqual([r.config.backends[1]!.retries, r.config.backends[1]!.sendProxyV2], [3, true]);
  });

  it("no routes files: a valid config with no routes", () => {
    const r = assembleProxyConfig(source(CONFIG, base()), []);
    assert.ok(r.ok && r.config.routes.length === 0 && r.config.backends.length === 0);
  });

  it("refuses a hostname claimed by two stacks, after normalisation, naming both stacks and files", () => {
    const errors = errorsOf(source(CONFIG, base()), [
      source(`${D}/demo.json`, fragment("demo", { "demo.example": 443 })),
      source(`${D}/prod.json`, fragment("prod", { "Demo.Example.": 443, "prod.example": 443 })),
    ]);
    assert.deepEqual(errors, [
      `${D}/prod.json: routes[0].host: host "demo.example" is claimed by stack "demo" (demo.json) and stack "prod" (prod.json); remove it from one of them`,
    ]);
  });

  it("refuses a hostname that proxy.json routes itself, and a backend name defined twice", () => {
    const own = base(443, { routes: [{ host: "*.example.com", backend: "shared" }], backends: [{ name: "shared", servers: [{ name: "s", address: "10.0.0.9", port: 443 }] }] });
    const clash: ProxyRoutesFileInput = {
      kind: "proxy-routes",
      stack: "demo",
      routes: [{ host: "*.EXAMPLE.com", backend: "shared" }],
      backends: [{ name: "shared", servers: [{ name: "d", address: "10.0.0.8", port: 443 }] }],
    };
    const errors = errorsOf(source(CONFIG, own), [source(`${D}/demo.json`, clash)]);
    assert.deepEqual(errors, [
      `${D}/demo.json: backends[0].name: backend "shared" is defined by ${CONFIG} and stack "demo" (demo.json)`,
      `${D}/demo.json: routes[0].host: host "*.example.com" is claimed by ${CONFIG} and stack "demo" (demo.json); remove it from one of them`,
    ]);
    const twice = errorsOf(source(CONFIG, base()), [
      source(`${D}/a.json`, fragment("a", { "a.example": 443 })),
      source(`${D}/b.json`, { ...fragment("b", { "b.example": 443 }), backends: [{ name: "b_0", servers: [{ name: "x", address: "127.0.0.1", port: 1 }] }, { name: "a_0", servers: [{ name: "y", address: "127.0.0.1", port: 2 }] }] }),
    ]);
    assert.deepEqual(twice, [`${D}/b.json: backends[1].name: backend "a_0" is defined by stack "a" (a.json) and stack "b" (b.json)`]);
  });

  it("an exact name in one stack and a wildcard over it in another are two routes (exact wins), not a clash", () => {
    const r = assembleProxyConfig(source(CONFIG, base()), [
      source(`${D}/a.json`, fragment("a", { "*.example.com": 443 })),
      source(`${D}/b.json`, fragment("b", { "b.example.com": 443 })),
    ]);
    assert.ok(r.ok);
  });

  it("names the file and the field of an invalid routes file, and reports every file at once", () => {
    const errors = errorsOf(source(CONFIG, base()), [
      source(`${D}/a.json`, { ...fragment("a", { "10.0.0.1": 443 }), extra: 1 }),
      source(`${D}/b.json`, "{ nope"),
      source(`${D}/c.json`, { ...fragment("c", { "c.example": 443 }), routes: [{ host: "c.example", backend: "elsewhere" }] }),
      source(`${D}/d.json`, fragment("other", { "d.example": 443 })),
      source(`${D}/e.json`, { ...fragment("e", { "e.example": 0 }), kind: "routes" }),
      source(`${D}/f.json`, fragment("f", { "under_score.example": 443 })),
    ]);
    const expected = [
      `${D}/a.json: (root): Unrecognized key: "extra"`,
      `${D}/a.json: routes[0].host: "10.0.0.1" cannot be routed: it is an IP literal`,
      `${D}/b.json: (root): not valid JSON`,
      `${D}/c.json: routes[0].backend: stack "c" defines no backend named "elsewhere"`,
      `${D}/d.json: stack: is "other", but the file is named d.json`,
      `${D}/e.json: kind: Invalid input: expected "proxy-routes"`,
      `${D}/e.json: backends[0].servers[0].port: Too small`,
      `${D}/f.json: routes[0].host: "under_score.example" cannot be routed: label "under_score" contains an underscore`,
    ];
    for (const prefix of expected) assert.ok(errors.some((e) => e.startsWith(prefix)), `missing ${prefix} in\n${errors.join("\n")}`);
  });

  it("maps errors only the merged config can see back to the file and its own index", () => {
    const listed: ProxyRoutesFileInput = { ...fragment("demo", { "a.example": 443, "b.example": 443 }) };
    const routes = listed.routes.map((r, i) => (i === 1 ? { ...r, listeners: ["nope"] } : r));
    const errors = errorsOf(source(CONFIG, base()), [source(`${D}/aaa.json`, fragment("aaa", { "x.example": 443 })), source(`${D}/demo.json`, { ...listed, routes })]);
    assert.deepEqual(errors, [`${D}/demo.json: routes[1].listeners[0]: no listener named "nope"`]);
  });

  it("reports an invalid proxy.json with its own path, together with the routes files' errors", () => {
    const errors = errorsOf(source(CONFIG, { ...base(), listeners: [] }), [source(`${D}/a.json`, { kind: "proxy-routes" })]);
    assert.ok(errors.some((e) => e.startsWith(`${CONFIG}: listeners: Too small`)), errors.join("\n"));
    assert.ok(errors.some((e) => e.startsWith(`${D}/a.json: stack:`)), errors.join("\n"));
  });
});

describe("reading the routes directory", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-routes-"));
    writeFileSync(path.join(dir, "proxy.json"), JSON.stringify(base()));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a missing or empty directory is no routes", async () => {
    const missing = await loadProxyConfig(path.join(dir, "proxy.json"), path.join(dir, "nope"));
    assert.ok(missing.ok && missing.config.routes.length === 0 && missing.routeFiles.length === 0);
    mkdirSync(path.join(dir, "empty"));
    const empty = await loadProxyConfig(path.join(dir, "proxy.json"), path.join(dir, "empty"));
    assert.ok(empty.ok && empty.config.routes.length === 0);
  });

  it("reads *.json in name order, skipping hidden and other files", async () => {
    const d = path.join(dir, "routes.d");
    mkdirSync(d);
    writeFileSync(path.join(d, "prod.json"), JSON.stringify(fragment("prod", { "p.example": 443 })));
    writeFileSync(path.join(d, "demo.json"), JSON.stringify(fragment("demo", { "d.example": 443 })));
    writeFileSync(path.join(d, ".demo.json"), "{ half-written");
    writeFileSync(path.join(d, "demo.map"), "not json");
    const r = await loadProxyConfig(path.join(dir, "proxy.json"), d);
    assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
    if (!r.ok) return;
    assert.deepEqual(r.routeFiles, ["demo.json", "prod.json"]);
    assert.deepEqual(r.config.routes.map((x) => x.host), ["d.example", "p.example"]);
    const again = await loadProxyConfig(path.join(dir, "proxy.json"), d);
    assert.equal(again.fingerprint, r.fingerprint);
    writeFileSync(path.join(d, "prod.json"), JSON.stringify(fragment("prod", { "p2.example": 443 })));
    assert.notEqual((await loadProxyConfig(path.join(dir, "proxy.json"), d)).fingerprint, r.fingerprint);
  });

  it("a routes path that is not a directory is an error naming it", async () => {
    const r = await loadProxyConfig(path.join(dir, "proxy.json"), path.join(dir, "proxy.json"));
    assert.ok(!r.ok && r.errors[0]!.startsWith(`${path.join(dir, "proxy.json")}: (directory): cannot list`));
  });
});

describe("the proxy script with --routes-dir", { timeout: 30_000 }, () => {
  let bundle: string;
  let dir: string;
  before(() => {
    bundle = buildProxyScript();
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-routes-run-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Atomic, as the apply script's release swap is: readers never see half a file. */
  const put = (file: string, value: unknown) => {
    writeFileSync(`${file}.tmp`, JSON.stringify(value));
    renameSync(`${file}.tmp`, file);
  };

  it("--check validates the config with its routes files and names a bad file", () => {
    const d = path.join(dir, "check.d");
    mkdirSync(d);
    const config = path.join(dir, "check.json");
    put(config, base());
    put(path.join(d, "demo.json"), fragment("demo", { "demo.example": 443 }));
    put(path.join(d, "prod.json"), fragment("prod", { "prod.example": 443 }));
    const ok = spawnSync(NODE_CURRENT, [bundle, "--config", config, "--routes-dir", d, "--check"]);
    assert.equal(ok.status, 0, ok.stderr.toString());
    assert.match(ok.stdout.toString(), /is valid: 1 listener\(s\), 2 route\(s\), 2 backend\(s\) \(2 routes file\(s\): demo\.json, prod\.json\)/);
    put(path.join(d, "prod.json"), fragment("prod", { "DEMO.example": 443 }));
    const clash = spawnSync(NODE_CURRENT, [bundle, "--config", config, "--routes-dir", d, "--check"]);
    assert.equal(clash.status, 1);
    assert.match(clash.stderr.toString(), /prod\.json: routes\[0\]\.host: host "demo\.example" is claimed by stack "demo" \(demo\.json\) and stack "prod" \(prod\.json\)/);
  });

  it("refuses to start on an invalid routes file, naming file and field", () => {
    const d = path.join(dir, "fatal.d");
    mkdirSync(d);
    const config = path.join(dir, "fatal.json");
    put(config, base(1)); // port 1 is never bound: the proxy must not get that far
    put(path.join(d, "demo.json"), { ...fragment("demo", { "demo.example": 443 }), routes: [{ host: "demo.example", backend: "x" }] });
    const r = spawnSync(NODE_CURRENT, [bundle, "--config", config, "--routes-dir", d], { timeout: 5000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /with routes from .*fatal\.d is invalid; not starting:\n {2}.*demo\.json: routes\[0\]\.backend: stack "demo" defines no backend named "x"/);
    assert.equal(r.stdout.toString(), "", "nothing started, so nothing logged");
  });

  it("a new routes file adds a route without touching a live tunnel; bad files are refused; removing a file removes its routes", async () => {
    const backend = await startBackend((c) => c.socket.on("end", () => c.socket.end(`seen ${c.bytes().length}`)));
    const port = await freePort();
    const d = path.join(dir, "live.d"); // created later: a missing directory is no routes
    const config = path.join(dir, "live.json");
    put(config, { ...base(port), global: { workers: 2, drainGraceMs: 1000 } });
    const proxy = spawn(NODE_CURRENT, [bundle, "--config", config, "--routes-dir", d], { stdio: ["ignore", "pipe", "pipe"] });
    const lines = jsonLinesOf(proxy.stdout!);
    const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
    const roundTrip = async (host: string) => {
      const client = await connectClient(port);
      client.socket.end(clientHello({ serverNames: [{ type: 0, name: host }] }));
      await waitFor(() => client.closed, 3000, `round trip for ${host}`);
      return Buffer.concat(client.received).toString();
    };
    try {
      await waitFor(() => count("ready") === 1, 5000, "ready");
      assert.equal(await roundTrip("demo.example"), "", "no routes yet: dropped");

      mkdirSync(d);
      put(path.join(d, "demo.json"), fragment("demo", { "demo.example": backend.port }));
      await waitFor(() => count("config reloaded") >= 2, 5000, "reload in both workers");
      assert.deepEqual(lines.find((l) => l.msg === "config accepted")!.routeFiles, ["demo.json"]);
      assert.match(await roundTrip("demo.example"), /^seen \d+$/);

      // a live tunnel through demo's route
      const live = await connectClient(port);
      live.socket.write(clientHello({ serverNames: [{ type: 0, name: "demo.example" }] }));
      // The connection is seen before its first bytes: wait for the whole header.
      await waitFor(() => backend.connections.length === 2 && parseProxyHeader(backend.connections[1]!.bytes()).kind === "done", 2000, "live tunnel");
      const header = parseProxyHeader(backend.connections[1]!.bytes());
      assert.ok(header.kind === "done" && header.header.command === "proxy" && header.header.source.port === live.localPort);

      // prod arrives: its route works, the live tunnel is untouched
      put(path.join(d, "prod.json"), fragment("prod", { "prod.example": backend.port }));
      await waitFor(() => count("config reloaded") >= 4, 5000, "second reload");
      assert.match(await roundTrip("prod.example"), /^seen \d+$/);

      // a clash and an invalid file are refused by name; the running routes keep serving
      put(path.join(d, "zz.json"), fragment("zz", { "Prod.Example": backend.port }));
      await waitFor(() => count("config reload refused, keeping the running config") >= 1, 3000, "refusal");
      const refused = lines.find((l) => l.msg === "config reload refused, keeping the running config")!;
      assert.match(JSON.stringify(refused.errors), /zz\.json: routes\[0\]\.host: host \\"prod\.example\\" is claimed by stack \\"prod\\" \(prod\.json\) and stack \\"zz\\" \(zz\.json\)/);
      put(path.join(d, "zz.json"), { kind: "proxy-routes", stack: "zz", routes: [], backends: [], extra: true });
      proxy.kill("SIGHUP");
      await waitFor(() => count("config reload refused, keeping the running config") >= 2, 3000, "second refusal");
      assert.match(JSON.stringify(lines.filter((l) => l.msg === "config reload refused, keeping the running config").at(-1)!.errors), /zz\.json: \(root\): Unrecognized key/);
      assert.match(await roundTrip("prod.example"), /^seen/);
      unlinkSync(path.join(d, "zz.json"));

      // removing demo's file removes its route; the live tunnel through it still flows
      unlinkSync(path.join(d, "demo.json"));
      await waitFor(() => lines.filter((l) => l.msg === "config accepted").at(-1)?.routes === 1, 5000, "demo removed");
      await waitFor(() => count("config reloaded") >= 6, 3000, "removal reached both workers");
      assert.equal(await roundTrip("demo.example"), "", "demo's route is gone");
      assert.equal(live.closed, false);
      live.socket.end("tail");
      await waitFor(() => live.closed, 3000, "live tunnel finishes");
      assert.match(Buffer.concat(live.received).toString(), /^seen \d+$/);
      await waitFor(() => lines.filter((l) => l.event === "connection" && l.sni === "demo.example" && l.ts === "--").length === 2, 2000, "both demo tunnels logged as normal");
    } finally {
      proxy.kill("SIGKILL");
      await backend.close();
    }
  });
});
