import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { HostPlan, planStack } from "../../topology";
import { assembleProxyConfig } from "../../proxy/config/assemble";
import { proxyRoutesFileSchema } from "../../contract/proxy-config";
import { PROXY_CONFIG, PROXY_ROUTES_D } from "../../topology/paths";
import { validateProxyConfigText } from "../../proxy/config/validate";
import { proxyRoutesOf, renderProxyConfig, renderProxyRoutes, ProxyRoutesFile } from "../../render/proxy-config";
import { renderStack } from "../../render/stack";
import { renderAttachedStacks } from "../../render/attached-routes";
import { routesPolicyOf } from "../../topology/attached-routes";

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
  assert.deepEqual(https.onNoMatch, { action: "drop", holdUntilInspectDeadline: true, maxHeld: 1024 });
  assert.deepEqual(https.rateLimit, { maxConnectionsPerWindow: 50, windowMs: 3000, ipv6PrefixLength: 64, action: "drop", tableSize: 500000, expireMs: 60000 });
  const http = config.listeners.find((l) => l.name === "http")!;
  assert.equal(http.mode, "http-redirect");
  assert.deepEqual(http.binds.map((b) => b.port), [80, 80]);
  if (http.mode !== "http-redirect") throw new Error("unreachable");
  // HAProxy's timeout http-request and rate-limit sessions on the port-80 frontend.
  assert.deepEqual([http.code, http.httpsPort, http.requestTimeoutMs, http.sessionsPerSecond], [301, 443, ingress.timeouts.inspect, ingress.rateLimit.httpSessionsPerSecond]);
  assert.deepEqual(config.timeouts, { clientMs: 30000, serverMs: 30000, tunnelMs: 300000, finMs: 10000 });
  // Every stack's routes come from routes.d, this one's included.
  assert.deepEqual([config.routes, config.backends], [[], []]);
  assert.deepEqual(config.stats, {
    bind: { address: "0.0.0.0", port: 8404 },
    path: "/stats",
    auth: { username: "admin", passwordEnv: "STATS_PASSWORD" },
    allowedSources: [...ingress.stats.allowedCidrs, "127.0.0.1/32", "::1/128"],
  });
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
    servers: [{ name: "web", address: "10.40.0.10", port: 8443, acmePort: 8402 }],
    connectTimeoutMs: 5000,
    retries: 3,
    sendProxyV2: true,
    authorityTlv: false,
    healthCheck: {
      type: "tls",
      intervalMs: 5000,
      timeoutMs: 2000,
      fall: 3,
      rise: 2,
      sni: "api.demo.example.com",
      sendProxyV2: true,
      http: { path: "/healthz", host: "api.demo.example.com", expectStatus: 200 },
    },
  });
});

test("proxy.json plus every stack's routes file (demo attached to a ts LB) is what the proxy merges", () => {
  const demo = planStack(loadTopology("demo"));
  const [attached] = renderStack(demo).filter((h) => h.host.startsWith("_routes-for-"));
  // demo sends data; a ts LB renders it into routes.d/demo.json with its own settings.
  const policy = { ...routesPolicyOf(lb), stacks: [{ stack: "demo", network: "172.20.0.0/16", zones: ["demo.fiscalismia.com"] }] };
  const renderedOnLb = renderAttachedStacks(policy, [{ stack: "demo", data: JSON.parse(attached!.files[0]!.content) }]);
  assert.deepEqual(renderedOnLb.refused, []);
  const config = { path: PROXY_CONFIG, text: renderProxyConfig(lb) };
  const own = { path: `${PROXY_ROUTES_D}/standalone-demo.json`, text: renderProxyRoutes(ingress.fragment, ingress) };
  const demoFile = { path: `${PROXY_ROUTES_D}/demo.json`, text: renderedOnLb.files.find((f) => f.path === "proxy/routes.d/demo.json")!.content };
  // every fragment satisfies the schema the proxy reads routes.d with
  for (const f of [own, demoFile]) assert.ok(proxyRoutesFileSchema.safeParse(JSON.parse(f.text)).success, f.path);
  const result = assembleProxyConfig(config, [demoFile, own]);
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  assert.equal(result.config.routes.length, 4);
  assert.deepEqual(result.fragments.map((f) => f.stack), ["demo", "standalone-demo"]);
  // The same hostname from two stacks is refused naming both, never silently merged.
  const clash = JSON.parse(demoFile.text) as ProxyRoutesFile;
  clash.routes[0] = { ...clash.routes[0]!, host: "Demo.Example.com" };
  const refused = assembleProxyConfig(config, [{ ...demoFile, text: JSON.stringify(clash) }, own]);
  assert.ok(!refused.ok);
  assert.match(refused.errors.join("\n"), /standalone-demo\.json: routes\[0\]\.host: host "demo\.example\.com" is claimed by stack "demo" \(demo\.json\) and stack "standalone-demo" \(standalone-demo\.json\)/);
});

test("without stats the config has no stats section; a haproxy host has no proxy config", () => {
  const noStats: HostPlan = { ...lb, ingress: { ...ingress, stats: { ...ingress.stats, enabled: false } } };
  assert.ok(!("stats" in JSON.parse(renderProxyConfig(noStats))));
  const haproxyLb = planStack(loadTopology("prod")).hosts.find((h) => h.role === "ingress")!;
  assert.throws(() => renderProxyConfig(haproxyLb), /runs engine "haproxy", not ts/);
});

test("metrics: on the LB's private address only, for the scrapers and the LB itself, as HAProxy's metrics frontend", () => {
  const prod = loadTopology("prod");
  if (prod.ingress.mode !== "own") throw new Error("prod owns its ingress");
  const tsLb = planStack({ ...prod, ingress: { ...prod.ingress, engine: "ts" } }).hosts.find((h) => h.role === "ingress")!;
  const result = validateProxyConfigText(renderProxyConfig(tsLb));
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  assert.deepEqual(result.config.metrics, {
    binds: [{ address: "172.24.1.3", port: 8405 }],
    path: "/metrics",
    allowedSources: ["172.24.0.2/32", "172.24.1.3/32"],
  });
  // The standalone example does not enable metrics: no section, nothing bound.
  assert.ok(!("metrics" in JSON.parse(renderProxyConfig(lb))));
});

test("a fragment the proxy would reject fails at render time with the schema's message", () => {
  const bad = { ...ingress.fragment, routes: [{ hostname: "10.0.0.1", backend: ingress.fragment.backends[0]!.name }] };
  assert.throws(() => proxyRoutesOf(bad, ingress), /does not satisfy the proxy's config schema[\s\S]*IP literal[\s\S]*routes\[0\]\.host/);
  const elsewhere = { ...ingress.fragment, routes: [{ hostname: "x.example.com", backend: "prod_frontend_443" }] };
  assert.throws(() => proxyRoutesOf(elsewhere, ingress), /defines no backend named "prod_frontend_443"/);
});

test("rendered proxy files hold no secret, only the name of the variable", () => {
  const text = renderProxyConfig(lb);
  assert.ok(!/password"\s*:/i.test(text));
  assert.match(text, /"passwordEnv": "STATS_PASSWORD"/);
});
