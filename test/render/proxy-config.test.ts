import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { HostPlan, planStack } from "../../topology";
import { proxyConfigSchema } from "../../proxy/config/schema";
import { validateProxyConfigText } from "../../proxy/config/validate";
import { proxyRoutesOf, renderProxyConfig, renderProxyRoutes, ProxyRoutesFile } from "../../render/proxy-config";
import { lbSettingsOf, renderStack } from "../../render/bundle";

const standalone = planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples/Pulumi.standalone-demo.yaml")));
const lb = standalone.hosts.find((h) => h.name === "lb")!;
const ingress = lb.ingress!;

test("proxy.json passes the proxy's own validation and maps the plan's listeners and timeouts", () => {
  const result = validateProxyConfigText(renderProxyConfig(lb));
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  const config = result.config;
  const https = config.listeners.find((l) => l.name === "https")!;
  assert.equal(https.mode, "tls-passthrough");
  assert.deepEqual(https.binds, [
    { address: "0.0.0.0", port: 443 },
    { address: "::", port: 443 },
  ]);
  if (https.mode !== "tls-passthrough") throw new Error("unreachable");
  assert.equal(https.inspectTimeoutMs, ingress.timeouts.inspect);
  assert.equal(https.onNoMatch.action, "drop");
  assert.deepEqual(https.rateLimit, { maxConnectionsPerWindow: 50, windowMs: 3000, action: "drop", tableSize: 500000, expireMs: 60000 });
  const http = config.listeners.find((l) => l.name === "http")!;
  assert.equal(http.mode, "http-redirect");
  assert.deepEqual(http.binds.map((b) => b.port), [80, 80]);
  assert.deepEqual(config.timeouts, { clientMs: 30000, serverMs: 30000, tunnelMs: 300000, finMs: 10000 });
  // Every stack's routes come from routes.d, this one's included.
  assert.deepEqual([config.routes, config.backends], [[], []]);
  assert.deepEqual(config.stats, { bind: { address: "0.0.0.0", port: 8404 }, path: "/stats", auth: { username: "admin", passwordEnv: "STATS_PASSWORD" } });
});

test("the routes file carries the stack's routes and backends with the LB's connect and check settings", () => {
  const file = JSON.parse(renderProxyRoutes(ingress.fragment, ingress)) as ProxyRoutesFile;
  assert.equal(file.kind, "proxy-routes");
  assert.equal(file.stack, "standalone-demo");
  assert.deepEqual(file.routes, [
    { host: "demo.example.com", backend: "standalone-demo_web_443" },
    { host: "api.demo.example.com", backend: "standalone-demo_web_8443" },
  ]);
  assert.deepEqual(file.backends[1], {
    name: "standalone-demo_web_8443",
    servers: [{ name: "web", address: "10.40.0.10", port: 8443 }],
    connectTimeoutMs: 5000,
    retries: 3,
    sendProxyV2: true,
    authorityTlv: false,
    healthCheck: { type: "tls", intervalMs: 5000, timeoutMs: 2000, fall: 3, rise: 2, sni: "api.demo.example.com" },
  });
});

test("proxy.json plus every stack's routes file (demo attached to a ts LB) is one valid config", () => {
  const demo = planStack(loadTopology("demo"));
  const [attached] = renderStack(demo, { attachedLb: { ...lbSettingsOf(undefined), engine: "ts" } }).filter((h) => h.host.startsWith("_routes-for-"));
  assert.deepEqual(attached!.files.map((f) => f.path), ["/srv/ingress/routes/demo/proxy/routes.d/demo.json"]);
  const fragments = [renderProxyRoutes(ingress.fragment, ingress), attached!.files[0]!.content].map((t) => JSON.parse(t) as ProxyRoutesFile);
  const merged = { ...JSON.parse(renderProxyConfig(lb)), routes: fragments.flatMap((f) => f.routes), backends: fragments.flatMap((f) => f.backends) };
  const result = proxyConfigSchema.safeParse(merged);
  assert.ok(result.success, result.success ? "" : result.error.message);
  assert.equal(result.data.routes.length, 4);
  // The same hostname from two stacks is refused by the proxy's schema, never silently merged.
  const clash = { ...merged, routes: [...merged.routes, { host: "demo.example.com", backend: "demo_demo_443" }] };
  assert.ok(!proxyConfigSchema.safeParse(clash).success);
});

test("without stats the config has no stats section; a haproxy host has no proxy config", () => {
  const noStats: HostPlan = { ...lb, ingress: { ...ingress, stats: { ...ingress.stats, enabled: false } } };
  assert.ok(!("stats" in JSON.parse(renderProxyConfig(noStats))));
  const haproxyLb = planStack(loadTopology("prod")).hosts.find((h) => h.role === "ingress")!;
  assert.throws(() => renderProxyConfig(haproxyLb), /runs engine "haproxy", not ts/);
});

test("a fragment the proxy would reject fails at render time with the schema's message", () => {
  const bad = { ...ingress.fragment, routes: [{ hostname: "10.0.0.1", backend: ingress.fragment.backends[0]!.name }] };
  assert.throws(() => proxyRoutesOf(bad, ingress), /does not satisfy the proxy's config schema[\s\S]*routes/);
});

test("rendered proxy files hold no secret, only the name of the variable", () => {
  const text = renderProxyConfig(lb);
  assert.ok(!/password"\s*:/i.test(text));
  assert.match(text, /"passwordEnv": "STATS_PASSWORD"/);
});
