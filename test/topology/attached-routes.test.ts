// What an attached stack may route on another stack's LB: the policy check of its pushed data,
// claims between stacks, and a seeded fuzz run that sends hostile values into every field and
// checks that whatever is accepted renders to config made only of the owner's own lines.
import { haproxyCheckInfoRules } from "../../contract/certificate-info";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../../proxy/fuzz/mutator";
import { assembleProxyConfig } from "../../proxy/config/assemble";
import { renderAttachedStacks } from "../../render/attached-routes";
import { renderProxyConfig } from "../../render/proxy-config";
import { loadTopology } from "../../scripts/stack-files";
import { checkRoutesData, planStack, routesPolicyOf, type RoutesPolicy } from "../../topology";
import { PROXY_CONFIG, PROXY_ROUTES_D } from "../../topology/paths";

const prodLb = planStack(loadTopology("prod")).hosts.find((h) => h.role === "ingress")!;
const POLICY: RoutesPolicy = routesPolicyOf(prodLb);
const demo = planStack(loadTopology("demo")).attach!.fragment;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

test("prod's policy: demo may route demo.fiscalismia.com and below to 172.20.0.0/16; prod's own names and backends are reserved", () => {
  assert.deepEqual(POLICY.stacks, [{ stack: "demo", network: "172.20.0.0/16", zones: ["demo.fiscalismia.com"] }]);
  assert.deepEqual(POLICY.reserved, {
    hostnames: ["backend.fiscalismia.com", "fiscalismia.com", "monitoring.fiscalismia.com"],
    backends: ["prod_backend_443", "prod_frontend_443", "prod_monitoring_443"],
  });
  const r = checkRoutesData(POLICY, "demo", clone(demo));
  assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
  assert.deepEqual(r.fragment, demo);
});

test("everything outside the policy is refused, each problem named with its field", () => {
  const errorsOf = (stack: string, data: unknown) => {
    const r = checkRoutesData(POLICY, stack, data);
    return r.ok ? [] : r.errors;
  };
  const edit = (f: (d: ReturnType<typeof clone<typeof demo>> & Record<string, unknown>) => void) => {
    const d = clone(demo) as ReturnType<typeof clone<typeof demo>> & Record<string, unknown>;
    f(d);
    return d;
  };
  type Mutable = { -readonly [K in keyof typeof demo]: unknown } & { backends: Array<Record<string, unknown> & { servers: Array<Record<string, unknown>>; check: Record<string, unknown> }>; routes: Array<Record<string, unknown>> };
  const m = (f: (d: Mutable) => void) => edit((d) => f(d as unknown as Mutable));
  const cases: Array<[string, unknown, string]> = [
    ["demo", "frontend x\n    bind :443\n", '(document): Invalid input: expected object, received string'],
    ["demo", m((d) => (d.routes[0]!["hostname"] = "fiscalismia.com")), 'routes[0].hostname: "fiscalismia.com" is outside the zones stack prod delegates to stack demo (demo.fiscalismia.com)'],
    ["demo", m((d) => (d.routes[0]!["hostname"] = "x.co.uk")), '"x.co.uk" is outside the zones'],
    ["demo", m((d) => (d.routes[0]!["hostname"] = "evildemo.fiscalismia.com")), '"evildemo.fiscalismia.com" is outside the zones'],
    ["demo", m((d) => (d.routes[0]!["hostname"] = "DEMO.fiscalismia.com.")), ""],
    ["demo", m((d) => (d.routes[0]!["hostname"] = "*.demo.fiscalismia.com")), "wildcards are not allowed here"],
    ["demo", m((d) => (d.routes[1]!["hostname"] = "demo.fiscalismia.com")), 'routes[1].hostname: "demo.fiscalismia.com" is routed twice'],
    ["demo", m((d) => (d.backends[0]!.servers[0]!["address"] = "172.24.0.3")), 'backends[0].servers[0].address: "172.24.0.3" is not an address in stack demo\'s network 172.20.0.0/16'],
    ["demo", m((d) => (d.backends[0]!.servers[0]!["address"] = "::1")), '"::1" is not an address in stack demo\'s network'],
    ["demo", m((d) => (d.backends[0]!.servers[0]!["port"] = 0)), "backends[0].servers[0].port: Too small"],
    // The challenge responder is one fixed port: never the LB's own port 80, or any other service.
    ["demo", m((d) => (d.backends[0]!.servers[0]!["acmePort"] = 80)), "backends[0].servers[0].acmePort: must be 8402, the web servers' ACME challenge responder, or left out"],
    ["demo", m((d) => delete d.backends[0]!.servers[0]!["acmePort"]), ""],
    ["demo", m((d) => (d.backends[0]!["name"] = "prod_frontend_443")), 'backends[0].name: "prod_frontend_443" must start with "demo_"'],
    ["demo", m((d) => (d.backends[0]!["name"] = "demo_a b")), 'backends[0].name: "demo_a b" must be 1-64 letters'],
    ["demo", m((d) => (d.backends[1]!["name"] = d.backends[0]!["name"])), 'backends[1].name: backend "demo_demo_443" is defined twice'],
    ["demo", m((d) => (d.backends[0]!.check["path"] = "/healthz\n    http-request deny")), 'backends[0].check.path: "/healthz\\n    http-request deny" must be an absolute URL path'],
    ["demo", m((d) => (d.backends[0]!.check["sni"] = "fiscalismia.com")), 'backends[0].check.sni: "fiscalismia.com" is outside the zones'],
    ["demo", m((d) => (d.routes[0]!["backend"] = "prod_frontend_443")), 'routes[0].backend: "prod_frontend_443" is not one of this stack\'s backends'],
    ["demo", m((d) => (d.backends[0]!["mode"] = "http")), 'backends[0]: Unrecognized key: "mode"'],
    ["demo", m((d) => ((d as Record<string, unknown>)["stack"] = "prod")), 'stack: the data says "prod" but was pushed as stack demo'],
    ["prod", clone(demo), "stack prod may not attach to this LB: stack prod does not list it in ingress.attachedStacks"],
  ];
  for (const [stack, data, message] of cases) {
    const errors = errorsOf(stack, data);
    if (message === "") assert.deepEqual(errors, [], `${JSON.stringify(data)} should pass`);
    else assert.ok(errors.some((e) => e.includes(message)), `want "${message}", got:\n${errors.join("\n")}`);
  }
  const many = { ...clone(demo), routes: Array.from({ length: 257 }, (_, i) => ({ hostname: `h${i}.demo.fiscalismia.com`, backend: "demo_demo_443" })) };
  assert.ok(errorsOf("demo", many).some((e) => e.startsWith("routes: Too big")));
});

test("a stack's backend names stay out of a longer stack's namespace, and what an engine refuses is that stack's refusal", () => {
  const policy: RoutesPolicy = { ...POLICY, stacks: [...POLICY.stacks, { stack: "demo_x", network: "172.21.0.0/16", zones: ["x.example.com"] }] };
  const squat = { ...clone(demo), backends: demo.backends.map((b, i) => (i === 0 ? { ...b, name: "demo_x_web" } : b)), routes: demo.routes.map((r, i) => (i === 0 ? { ...r, backend: "demo_x_web" } : r)) };
  const r = checkRoutesData(policy, "demo", squat);
  assert.ok(!r.ok && r.errors.some((e) => e.includes('"demo_x_web" lies in the names of stack demo_x')), JSON.stringify(r));
  // 65 characters: longer than the proxy takes. Refused with the reason, for either engine.
  const long = { ...clone(demo), backends: demo.backends.map((b, i) => (i === 0 ? { ...b, name: `demo_${"a".repeat(60)}` } : b)), routes: demo.routes.map((x, i) => (i === 0 ? { ...x, backend: `demo_${"a".repeat(60)}` } : x)) };
  const tsPolicy: RoutesPolicy = { ...POLICY, engine: "ts" };
  assert.match(renderAttachedStacks(tsPolicy, [{ stack: "demo", data: long }]).refused[0]!.errors.join(" "), /must be 1-64 letters/);
});

test("between stacks, a name is kept by whoever held it first: the stack being pushed goes last", () => {
  const policy: RoutesPolicy = { ...POLICY, stacks: [...POLICY.stacks, { stack: "a", network: "172.21.0.0/16", zones: ["fiscalismia.com"] }] };
  const aData = { stack: "a", backends: [{ name: "a_web", servers: [{ name: "web", address: "172.21.0.2", port: 443 }], check: { sni: "demo.fiscalismia.com", path: "/" } }], routes: [{ hostname: "demo.fiscalismia.com", backend: "a_web" }] };
  const pushed = [{ stack: "demo", data: clone(demo) }, { stack: "a", data: aData }];
  // "a" sorts first, but is the newcomer: demo keeps its name and "a" is refused.
  const r = renderAttachedStacks(policy, pushed, "a");
  assert.deepEqual(r.refused, [{ stack: "a", errors: ['hostname "demo.fiscalismia.com" is routed by stack demo; remove it from one of them'] }]);
  assert.deepEqual(r.files.map((f) => f.path), ["haproxy/routes.d/demo.cfg", "haproxy/routes.d/demo.map"]);
  // With no newcomer (the owner's own deploy) the order is by name.
  assert.deepEqual(renderAttachedStacks(policy, pushed).refused.map((x) => x.stack), ["demo"]);
});

test("on a ts LB the same data renders the proxy's routes file, which the proxy merges with the owner's", () => {
  const tsPlan = planStack({ ...loadTopology("prod"), ingress: { ...(loadTopology("prod").ingress as Extract<ReturnType<typeof loadTopology>["ingress"], { mode: "own" }>), engine: "ts" } });
  const tsLb = tsPlan.hosts.find((h) => h.role === "ingress")!;
  const r = renderAttachedStacks(routesPolicyOf(tsLb), [{ stack: "demo", data: clone(demo) }]);
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.files.map((f) => f.path), ["proxy/routes.d/demo.json"]);
  const merged = assembleProxyConfig({ path: PROXY_CONFIG, text: renderProxyConfig(tsLb) }, [{ path: `${PROXY_ROUTES_D}/demo.json`, text: r.files[0]!.content }]);
  assert.ok(merged.ok, merged.ok ? "" : merged.errors.join("\n"));
});

// The only lines an accepted stack's HAProxy fragment may hold: the renderer's own.
const ALLOWED_CFG_LINE = [
  /^$/,
  /^# /,
  /^#$/,
  /^backend (acme:)?demo_[A-Za-z0-9_.-]+$/,
  /^ {4}(mode tcp|mode http|balance first|http-request redirect scheme https code 301|option httpchk|http-check expect status 200|retries 3|balance roundrobin|default-server .*)$/,
  /^ {4}timeout (connect|server|tunnel|check) \d+(ms|s|m)?$/,
  /^ {4}http-check send meth GET uri \/[A-Za-z0-9._~/-]* hdr Host [a-z0-9.-]+$/,
  /^ {4}server [A-Za-z0-9_.-]+ 172\.20\.\d+\.\d+:\d+( [a-z0-9 .-]+)?$/,
  /^ {4}option [a-z-]+$/,
];
// The certificate rules of every check are fixed text, the same for every stack's data.
const CHECK_INFO_LINES = new Set(Object.values(haproxyCheckInfoRules(200)).flat().map((l) => `    ${l}`));

test("fuzz: hostile values in every field are refused, or render to nothing but the owner's own config lines", () => {
  const rng = new Rng(20261201);
  const hostile = [
    "\n    frontend takeover\n    bind :443",
    "demo.fiscalismia.com\n  global",
    "${STATS_PASSWORD}",
    '"quoted"',
    "a".repeat(300),
    "",
    " ",
    "demo.fiscalismia.com ",
    "x.demo.fiscalismia.com",
    "demo.fiscalismia.com#",
    "demo.fiscalismia.com\u0000",
    "demo.fiscalısmia.com",
    "172.20.0.2",
    "172.20.0.2\n",
    "172.20.0.2 backup",
    "172.20.999.1",
    "10.0.0.1",
    "0.0.0.0",
    "/healthz ",
    "/x%0a",
    "demo_demo_443",
    "demo_x",
    "prod_frontend_443",
    "..",
  ];
  // Values a field may hold, so that what is accepted varies too.
  const edges = [
    "x.demo.fiscalismia.com",
    "DEMO.Fiscalismia.COM.",
    "xn--bcher-kva.demo.fiscalismia.com",
    "172.20.255.254",
    "172.20.0.0",
    "/a/b~c.d_e-f",
    "demo_web.1",
    "s-1",
    1,
    65535,
  ];
  const values: unknown[] = [...hostile, 0, -1, 65536, 1.5, null, true, [], {}, { a: 1 }, ["demo.fiscalismia.com"]];
  const paths = (d: unknown, prefix: (string | number)[] = []): (string | number)[][] => {
    if (Array.isArray(d)) return [prefix, ...d.flatMap((v, i) => paths(v, [...prefix, i]))];
    if (typeof d === "object" && d !== null) return [prefix, ...Object.entries(d).flatMap(([k, v]) => paths(v, [...prefix, k]))];
    return [prefix];
  };
  let accepted = 0;
  for (let i = 0; i < 6000; i++) {
    const d = clone(demo) as unknown as Record<string, unknown>;
    for (let n = 1 + rng.int(3); n > 0; n--) {
      const all = paths(d).filter((p) => p.length > 0);
      const p = rng.pick(all);
      let parent: Record<string | number, unknown> = d;
      for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      const last = p[p.length - 1]!;
      if (rng.int(10) === 0 && !Array.isArray(parent)) parent[`extra${rng.int(3)}`] = rng.pick(values);
      else parent[last] = rng.int(2) === 0 ? rng.pick(edges) : rng.pick(values);
    }
    const result = renderAttachedStacks(POLICY, [{ stack: "demo", data: d }]);
    if (result.refused.length > 0) continue;
    accepted++;
    for (const f of result.files) {
      for (const line of f.content.split("\n")) {
        if (f.path.endsWith(".map")) assert.match(line, /^$|^[a-z0-9.-]+\.demo\.fiscalismia\.com demo_[A-Za-z0-9_.-]+$|^demo\.fiscalismia\.com demo_[A-Za-z0-9_.-]+$/, `seed run ${i}: ${JSON.stringify(d)}`);
        else assert.ok(CHECK_INFO_LINES.has(line) || ALLOWED_CFG_LINE.some((re) => re.test(line)), `seed run ${i}: line ${JSON.stringify(line)} of ${JSON.stringify(d)}`);
      }
    }
  }
  // Some mutations keep the data valid (a value set to one it may hold): those must render.
  // Seeded, so the count is fixed; mutations that keep the data valid must have rendered.
  assert.ok(accepted >= 100, `only ${accepted} mutated inputs were accepted; the fuzz run proves too little`);
});
