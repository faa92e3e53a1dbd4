import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { originalSetup } from "./helpers/configs";
import { validateProxyConfig, validateProxyConfigText } from "../../proxy/config/validate";
import { CidrSet } from "../../proxy/net/cidr-set";
import { RouteTable } from "../../proxy/routing/route-table";
import { normaliseServerName } from "../../proxy/routing/server-name";
import { chooseWorkerMode, supportsReusePort } from "../../proxy/runtime/worker-mode";
import { parseArgs } from "../../proxy/cli";

describe("SNI normalisation", () => {
  const cases: [string, string][] = [
    ["Demo.Fiscalismia.COM", "demo.fiscalismia.com"],
    ["fiscalismia.com.", "fiscalismia.com"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["under_score.example", "under_score.example"],
  ];
  for (const [input, name] of cases) it(`${input} -> ${name}`, () => assert.deepEqual(normaliseServerName(input), { ok: true, name }));

  const rejects: [string | Uint8Array, string][] = [
    ["a..b", "empty-label"],
    ["a.com..", "empty-label"],
    [".a.com", "empty-label"],
    [".", "empty"],
    ["a\u0000.com", "control-byte"],
    ["a\u007f.com", "control-byte"],
    ["a\n.com", "control-byte"],
    [Uint8Array.from([0x62, 0xc3, 0xbc, 0x63]), "non-ascii"],
    ["192.168.0.1", "ip-literal"],
    ["1.2.3", "ip-literal"],
    ["::1", "ip-literal"],
    ["[::1]", "ip-literal"],
    ["a b.com", "invalid-character"],
    ["a/b.com", "invalid-character"],
    ["*.com", "invalid-character"],
    ["a".repeat(64) + ".com", "label-too-long"],
    [Array(64).fill("abc").join("."), "too-long"],
  ];
  for (const [input, reason] of rejects) {
    it(`rejects ${JSON.stringify(typeof input === "string" ? input : Array.from(input))} as ${reason}`, () =>
      assert.deepEqual(normaliseServerName(input), { ok: false, reason }));
  }
});

describe("route table", () => {
  const table = new RouteTable([
    { host: "fiscalismia.com", backend: "frontend" },
    { host: "backend.demo.fiscalismia.com", backend: "demo_backend" },
    { host: "*.fiscalismia.com", backend: "wild" },
    { host: "*.demo.fiscalismia.com", backend: "demo_wild" },
  ]);
  const cases: [string, string | null][] = [
    ["fiscalismia.com", "frontend"],
    ["backend.demo.fiscalismia.com", "demo_backend"],
    ["x.demo.fiscalismia.com", "demo_wild"],
    ["a.b.demo.fiscalismia.com", "demo_wild"],
    ["monitoring.fiscalismia.com", "wild"],
    ["demo.fiscalismia.com", "wild"],
    ["fiscalismia.org", null],
    ["xfiscalismia.com", null],
  ];
  for (const [name, backend] of cases) it(`${name} -> ${backend}`, () => assert.equal(table.lookup(name), backend));
});

describe("CIDR set", () => {
  it("matches v4, v6 and v4-mapped peers", () => {
    const set = new CidrSet(["10.0.0.0/8", "172.24.1.3/32", "fd00::/8"]);
    assert.ok(set.has("10.1.2.3"));
    assert.ok(set.has("::ffff:10.1.2.3"));
    assert.ok(set.has("172.24.1.3"));
    assert.ok(!set.has("172.24.1.4"));
    assert.ok(set.has("fd12::1"));
    assert.ok(!set.has("fe80::1"));
    assert.ok(!set.has("11.0.0.1"));
    assert.ok(new CidrSet(["0.0.0.0/0"]).has("8.8.8.8"));
    assert.ok(new CidrSet(["10.0.0.0/9"]).has("10.127.0.1") && !new CidrSet(["10.0.0.0/9"]).has("10.128.0.1"));
  });
});

describe("config schema", () => {
  it("expresses the original HAProxy setup and fills documented defaults", () => {
    const r = validateProxyConfig(originalSetup);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    if (!r.ok) return;
    const l = r.config.listeners[0]!;
    assert.equal(l.mode, "tls-passthrough");
    if (l.mode !== "tls-passthrough") return;
    assert.equal(l.inspectTimeoutMs, 5000);
    assert.equal(l.maxHelloBytes, 16384);
    assert.deepEqual(l.onNoMatch, { action: "drop", holdUntilInspectDeadline: false, maxHeld: 1024 });
    const b = r.config.backends[0]!;
    assert.deepEqual([b.connectTimeoutMs, b.retries, b.sendProxyV2, b.authorityTlv], [10_000, 3, true, false]);
    assert.deepEqual(r.config.log, { format: "json", level: "info" });
    assert.equal(r.config.timeouts.finMs, 10_000);
  });

  it("validates the part-2 sections and fills their defaults", () => {
    const withPart2 = {
      ...originalSetup,
      listeners: [
        { ...originalSetup.listeners[0]!, rateLimit: { maxConnectionsPerWindow: 50 }, acceptProxy: { trustedSources: ["10.0.0.0/8"] } },
        { name: "http_ingress", mode: "http-redirect", binds: [{ address: "0.0.0.0", port: 80 }] },
      ],
      backends: originalSetup.backends.map((b) => ({ ...b, healthCheck: { type: "tls", sni: "demo.fiscalismia.com" } })),
      stats: { bind: { address: "127.0.0.1", port: 8404 }, auth: { username: "admin", passwordEnv: "STATS_PASSWORD" } },
    };
    const r = validateProxyConfig(withPart2);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    const http = r.config.listeners[1]!;
    assert.deepEqual(http.mode === "http-redirect" && [http.code, http.httpsPort, http.requestTimeoutMs, http.maxHeaderBytes], [301, 443, 5000, 8192]);
    assert.deepEqual(r.config.backends[0]!.healthCheck, { type: "tls", sni: "demo.fiscalismia.com", intervalMs: 10_000, timeoutMs: 2000, fall: 3, rise: 2, sendProxyV2: true });
    const bad = validateProxyConfig({
      ...withPart2,
      listeners: [{ ...withPart2.listeners[0]!, rateLimit: { maxConnectionsPerWindow: 50, windowMs: 10 } }],
      backends: [{ ...originalSetup.backends[0]!, healthCheck: { http: { path: "no-slash", expectStatus: 700 } } }],
      stats: { bind: { address: "127.0.0.1", port: 8404 }, allowedSources: ["10.0.0.1"] },
    });
    assert.ok(!bad.ok);
    assert.deepEqual(
      bad.errors.map((e) => e.split(":")[0]),
      ["listeners[0].rateLimit.windowMs", "backends[0].healthCheck.http.path", "backends[0].healthCheck.http.expectStatus", "stats.allowedSources[0]"],
    );
  });

  it("names the offending field in every error", () => {
    const bad = {
      listeners: [
        { name: "a", mode: "tls-passthrough", binds: [{ address: "0.0.0.0", port: 70000 }], onNoMatch: { action: "tarpit" } },
        { name: "a", mode: "tls-passthrough", binds: [{ address: "localhost", port: 443 }], acceptProxy: { trustedSources: ["10.0.0.1"] } },
      ],
      routes: [
        { host: "10.0.0.1", backend: "x" },
        { host: "a.example", backend: "b1", listeners: ["nope"] },
        { host: "A.example", backend: "b1" },
      ],
      backends: [{ name: "b1", servers: [{ name: "s", address: "10.0.0.1", port: 443 }], retries: -1, extra: true }],
    };
    const r = validateProxyConfig(bad);
    assert.ok(!r.ok);
    if (r.ok) return;
    const joined = r.errors.join("\n");
    for (const path of [
      "listeners[0].binds[0].port:",
      "listeners[0].onNoMatch",
      "listeners[1].binds[0].address:",
      "listeners[1].acceptProxy.trustedSources[0]:",
      "routes[0].host:",
      "backends[0].retries:",
      "backends[0]: Unrecognized key",
    ]) {
      assert.ok(joined.includes(path), `missing ${path} in\n${joined}`);
    }
  });

  it("reports cross-reference errors once the shapes are right", () => {
    const r = validateProxyConfig({
      ...originalSetup,
      listeners: [...originalSetup.listeners, { ...originalSetup.listeners[0]! }],
      routes: [...originalSetup.routes, { host: "FISCALISMIA.com.", backend: "missing" }],
    });
    assert.ok(!r.ok);
    if (r.ok) return;
    assert.ok(r.errors.some((e) => e.startsWith('listeners[1].name: duplicate listener name "https_ingress"')), r.errors.join("\n"));
    assert.ok(r.errors.some((e) => e.startsWith("listeners[1].binds[0]: address and port already bound")));
    assert.ok(r.errors.some((e) => e.startsWith('routes[5].backend: no backend named "missing"')));
    assert.ok(r.errors.some((e) => e.startsWith('routes[5].host: host "fiscalismia.com" is routed twice')));
  });

  it("checks configured hosts with the stack config's rules (topology/hostname.ts), stricter than the wire", () => {
    const hostErrors = (host: string) => {
      const r = validateProxyConfig({ ...originalSetup, routes: [{ host, backend: "fiscalismia_frontend" }] });
      return r.ok ? [] : r.errors;
    };
    for (const ok of ["Fiscalismia.COM.", "*.demo.fiscalismia.com", "xn--bcher-kva.example"]) assert.deepEqual(hostErrors(ok), [], ok);
    for (const [host, reason] of [
      ["under_score.example", /contains an underscore/],
      ["*.com", /wildcard needs at least two labels/],
      ["-edge.example", /inner hyphens/],
      ["a.*.example", /label "\*"/],
      ["1.2.3.4", /IP literal/],
    ] as const) {
      const errors = hostErrors(host);
      assert.equal(errors.length, 1, host);
      assert.match(errors[0]!, /^routes\[0\]\.host: "/);
      assert.match(errors[0]!, reason);
    }
    // the wire is more lenient: such a name is parsed, then simply matches no route
    assert.deepEqual(normaliseServerName("under_score.example"), { ok: true, name: "under_score.example" });
  });

  it("reports JSON syntax errors", () => {
    const r = validateProxyConfigText("{ nope");
    assert.ok(!r.ok && r.errors[0]!.startsWith("(root): not valid JSON"));
  });
});

describe("runtime choices", () => {
  it("uses reusePort threads from Node 22.12, cluster before", () => {
    assert.equal(supportsReusePort("22.11.0", "linux"), false);
    assert.equal(supportsReusePort("22.12.0", "linux"), true);
    assert.equal(supportsReusePort("24.1.0", "linux"), true);
    assert.equal(supportsReusePort("20.20.2", "linux"), false);
    assert.equal(chooseWorkerMode(1, true), "single");
    assert.equal(chooseWorkerMode(4, true), "threads");
    assert.equal(chooseWorkerMode(4, false), "cluster");
  });

  it("parses the command line", () => {
    assert.deepEqual(parseArgs(["--config", "x.json"]), { kind: "run", configPath: "x.json" });
    assert.deepEqual(parseArgs(["--check", "--config=x.json"]), { kind: "check", configPath: "x.json" });
    assert.equal(parseArgs([]).kind, "usage-error");
    assert.equal(parseArgs(["--config"]).kind, "usage-error");
    assert.equal(parseArgs(["--nope"]).kind, "usage-error");
    // exactly the plan's command line (topology/plan.ts), and the apply script's --check after it
    assert.deepEqual(
      parseArgs(["--config", "/srv/ingress/current/proxy/proxy.json", "--routes-dir", "/srv/ingress/current/proxy/routes.d", "--check"]),
      { kind: "check", configPath: "/srv/ingress/current/proxy/proxy.json", routesDir: "/srv/ingress/current/proxy/routes.d" },
    );
    assert.deepEqual(parseArgs(["--routes-dir=d", "--config=x.json"]), { kind: "run", configPath: "x.json", routesDir: "d" });
    assert.equal(parseArgs(["--config", "x.json", "--routes-dir"]).kind, "usage-error");
  });
});
