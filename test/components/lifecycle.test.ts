// The lifecycle table: the real index.ts walked through a sequence of stack-config edits under
// mocks that stand in for the providers (local/engine/provider-schema.ts: which changed inputs
// replace a resource, what the provider stores), with state carried from one `up` to the
// next. Each edit's plan (created, updated, replaced and in which order, deleted) is compared
// with what docs/deploy.md promises. A plan the engine would refuse (a protected resource
// replaced) shows as `refused`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stackFile } from "../../scripts/stack-files";
import { configFromYaml } from "./harness";
import { keyOf, planOf, type Plan, type StackState } from "../../local/engine/diff";
import type { RunRequest, RunResult } from "./lifecycle/run-program";

const work = mkdtempSync(join(tmpdir(), "lifecycle-"));
test.after(() => rmSync(work, { recursive: true, force: true }));
let nextId = 1000;
let runs = 0;

interface Up {
  readonly state: StackState;
  readonly exports: Record<string, unknown>;
  readonly plan: Plan;
}

/** One `pulumi up` of `stack` with `config` over `prior`; `replace` = `--replace` targets. */
function up(stack: string, prior: StackState, config: Record<string, string>, extra: Partial<RunRequest> = {}): Up {
  const request: RunRequest = { stack, config, prior, replace: [], bundleDir: join(work, "bundles"), nextId, ...extra };
  const file = join(work, `request-${runs++}.json`);
  writeFileSync(file, JSON.stringify(request));
  const run = spawnSync(process.execPath, ["--import", "tsx", join(__dirname, "lifecycle", "run-program.ts")], {
    env: { ...process.env, LIFECYCLE_REQUEST: file },
    encoding: "utf8",
  });
  const last = run.stdout.trimEnd().split("\n").pop() ?? "";
  const result = JSON.parse(last || "{}") as RunResult & { error?: string };
  if (result.error !== undefined || !result.state) throw new Error(`program failed: ${result.error ?? run.stderr}`);
  nextId = result.nextId;
  return { state: result.state, exports: result.exports, plan: planOf(prior, result.state, request.replace) };
}

// --- configs ----------------------------------------------------------------------------

const NS = "hetzner-ingress";
type Raw = Record<string, unknown>;
/** A copy of `config` with one structured key edited. */
function edit(config: Record<string, string>, key: string, mutate: (value: any) => unknown): Record<string, string> {
  const full = `${NS}:${key}`;
  const raw = config[full];
  const value = raw === undefined ? undefined : raw.startsWith("{") || raw.startsWith("[") ? JSON.parse(raw) : raw;
  const out = mutate(value);
  const next = out === undefined ? value : out;
  return { ...config, [full]: typeof next === "string" ? next : JSON.stringify(next) };
}
const serverNamed = (name: string) => (servers: Raw[]) => servers.find((s) => s["name"] === name)!;

const PROD = configFromYaml(stackFile("prod"));
const DEMO = configFromYaml(stackFile("demo"));
const SECRETS = { statsPassword: "first password" };

// --- names ------------------------------------------------------------------------------

const K = {
  server: (h: string) => keyOf("hcloud:index/server:Server", `server-${h}`),
  serverNetwork: (h: string, net: string) => keyOf("hcloud:index/serverNetwork:ServerNetwork", `server-${h}-network-${net}`),
  firewall: (h: string) => keyOf("hcloud:index/firewall:Firewall", `firewall-${h}`),
  step: (h: string, step: "boot" | "secrets" | "apply") => keyOf("command:remote:Command", `deploy-${h}-${step}`),
  copy: (h: string) => keyOf("command:remote:CopyToRemote", `deploy-${h}-bundle`),
  standinKey: (h: string, site: string) => keyOf("tls:index/privateKey:PrivateKey", `deploy-${h}-tls-key-${site.replace(/\./g, "-")}`),
  standinCert: (h: string, site: string) => keyOf("tls:index/selfSignedCert:SelfSignedCert", `deploy-${h}-tls-cert-${site.replace(/\./g, "-")}`),
  primaryIp: (v: "ipv4" | "ipv6") => keyOf("hcloud:index/primaryIp:PrimaryIp", `ips-loadbalancer-${v}`),
  routes: keyOf("command:remote:Command", "ingress-routes"),
  lbAttachment: keyOf("hcloud:index/serverNetwork:ServerNetwork", "ingress-network-demo"),
};
/** A host's copy and apply, replaced by a new bundle hash (create-first: nothing to clash). */
const redeploy = (h: string) => [
  { key: K.copy(h), inputs: ["triggers"], deleteFirst: false },
  { key: K.step(h, "apply"), inputs: ["triggers"], deleteFirst: false },
];

function sortPlan(p: Plan): Plan {
  const byKey = <T extends { key: string }>(a: T, b: T) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return {
    create: [...p.create].sort(),
    update: [...p.update].sort(byKey),
    replace: [...p.replace].sort(byKey),
    delete: [...p.delete].sort(byKey),
    refused: [...p.refused].sort(),
  };
}
const EMPTY: Plan = { create: [], update: [], replace: [], delete: [], refused: [] };
function expectPlan(actual: Plan, expected: Partial<Plan>, what: string): void {
  assert.deepEqual(sortPlan(actual), sortPlan({ ...EMPTY, ...expected }), what);
}
/** Never a server replaced or deleted by a config edit. */
function noServerTouched(p: Plan, what: string): void {
  const servers = [...p.replace.map((r) => r.key), ...p.delete.map((d) => d.key)].filter((k) => k.startsWith("hcloud:index/server:Server "));
  assert.deepEqual(servers, [], `${what}: a config edit replaced or deleted a server`);
}

// --- prod -------------------------------------------------------------------------------

let prod: Up;
let prodAfterLbReplace: Up;

test("prod: the first up creates everything and nothing else; a second up with no change plans nothing", () => {
  prod = up("prod", {}, PROD, { secrets: SECRETS });
  assert.deepEqual(prod.plan.update, []);
  assert.deepEqual(prod.plan.replace, []);
  assert.ok(prod.plan.create.includes(K.server("loadbalancer")) && prod.plan.create.includes(K.primaryIp("ipv4")));
  const again = up("prod", prod.state, PROD, { secrets: SECRETS });
  // Before the deploy key was trimmed, this planned a replacement of the SshKey every time.
  expectPlan(again.plan, {}, "no change");
});

test("prod: each config edit does only what the table says, and never touches a server", () => {
  const base = prod.state;
  const cases: { what: string; config: Record<string, string>; secrets?: Record<string, string>; expected: Partial<Plan> }[] = [
    {
      what: "add a route (a site on frontend:8443)",
      config: edit(PROD, "sites", (sites: Raw[]) => [...sites, { hostname: "www.fiscalismia.com", server: "frontend", port: 8443, tls: { source: "host", path: "/etc/letsencrypt/live/www.fiscalismia.com" } }]),
      expected: {
        create: [K.standinKey("frontend", "www.fiscalismia.com"), K.standinCert("frontend", "www.fiscalismia.com")],
        update: [{ key: K.step("frontend", "secrets"), inputs: ["stdin"] }],
        replace: [...redeploy("loadbalancer"), ...redeploy("frontend")],
      },
    },
    {
      what: "move a site (backend.fiscalismia.com from backend to frontend:8443)",
      config: edit(PROD, "sites", (sites: Raw[]) => sites.map((s) => (s["hostname"] === "backend.fiscalismia.com" ? { ...s, server: "frontend", port: 8443 } : s))),
      expected: {
        create: [K.standinKey("frontend", "backend.fiscalismia.com"), K.standinCert("frontend", "backend.fiscalismia.com")],
        delete: [
          { key: K.standinKey("backend", "backend.fiscalismia.com"), runs: true },
          { key: K.standinCert("backend", "backend.fiscalismia.com"), runs: true },
          { key: K.step("backend", "secrets"), runs: true },
        ],
        update: [{ key: K.step("frontend", "secrets"), inputs: ["stdin"] }],
        replace: [...redeploy("loadbalancer"), ...redeploy("frontend"), ...redeploy("backend")],
      },
    },
    {
      what: "an LB-only setting (the rate limit)",
      config: edit(PROD, "ingress", (i: Raw) => ({ ...i, rateLimit: { ...(i["rateLimit"] as Raw), threshold: 80 } })),
      expected: { replace: redeploy("loadbalancer") },
    },
    {
      what: "stats password change",
      config: PROD,
      secrets: { statsPassword: "second password" },
      expected: { update: [{ key: K.step("loadbalancer", "secrets"), inputs: ["stdin"] }] },
    },
    {
      what: "engine switch haproxy -> ts",
      config: edit(PROD, "ingress", (i: Raw) => ({ ...i, engine: "ts" })),
      expected: {
        // The LB's files change; the secrets command now restarts the proxy instead of haproxy.
        update: [{ key: K.step("loadbalancer", "secrets"), inputs: ["update"] }],
        replace: redeploy("loadbalancer"),
      },
    },
    {
      what: "add a server (api, with one site)",
      config: edit(
        edit(PROD, "servers", (servers: Raw[]) => [...servers, { name: "api", serverType: "cx23", image: "debian-13", networks: { prod: "172.24.0.5" } }]),
        "sites",
        (sites: Raw[]) => [...sites, { hostname: "api.fiscalismia.com", server: "api", port: 443, tls: { source: "host", path: "/etc/letsencrypt/live/api.fiscalismia.com" } }],
      ),
      expected: {
        create: [
          K.firewall("api"),
          K.server("api"),
          K.serverNetwork("api", "prod"),
          K.step("api", "boot"),
          K.copy("api"),
          K.step("api", "secrets"),
          K.step("api", "apply"),
          K.standinKey("api", "api.fiscalismia.com"),
          K.standinCert("api", "api.fiscalismia.com"),
        ],
        replace: redeploy("loadbalancer"),
      },
    },
    // Ignored on existing servers (docs/deploy.md says how to apply them on purpose).
    { what: "server type change", config: edit(PROD, "servers", (s: Raw[]) => void (serverNamed("frontend")(s)["serverType"] = "cx33")), expected: {} },
    { what: "image change", config: edit(PROD, "servers", (s: Raw[]) => void (serverNamed("frontend")(s)["image"] = "ubuntu-24.04")), expected: {} },
    { what: "location change (same network zone)", config: { ...PROD, [`${NS}:location`]: "nbg1" }, expected: {} },
  ];
  for (const c of cases) {
    const r = up("prod", base, c.config, { secrets: c.secrets ?? SECRETS });
    expectPlan(r.plan, c.expected, c.what);
    noServerTouched(r.plan, c.what);
  }
});

test("prod: removing a site takes its route off the LB and its stand-in off its server", () => {
  const withWww = edit(PROD, "sites", (sites: Raw[]) => [...sites, { hostname: "www.fiscalismia.com", server: "frontend", port: 8443, tls: { source: "host", path: "/etc/letsencrypt/live/www.fiscalismia.com" } }]);
  const added = up("prod", prod.state, withWww, { secrets: SECRETS });
  const removed = up("prod", added.state, PROD, { secrets: SECRETS });
  expectPlan(
    removed.plan,
    {
      delete: [
        { key: K.standinKey("frontend", "www.fiscalismia.com"), runs: true },
        { key: K.standinCert("frontend", "www.fiscalismia.com"), runs: true },
      ],
      update: [{ key: K.step("frontend", "secrets"), inputs: ["stdin"] }],
      replace: [...redeploy("loadbalancer"), ...redeploy("frontend")],
    },
    "remove a site",
  );
  noServerTouched(removed.plan, "remove a site");
});

test("prod: TLS key rotation rewrites that server's secret files and nothing else", () => {
  const provided = edit(PROD, "sites", (sites: Raw[]) =>
    sites.map((s) => (s["hostname"] === "fiscalismia.com" ? { ...s, tls: { source: "provided", certSecret: "frontendCert", keySecret: "frontendKey" } } : s)),
  );
  const first = { ...SECRETS, frontendCert: "-----BEGIN CERTIFICATE-----\ncert 1\n", frontendKey: "-----BEGIN PRIVATE KEY-----\nkey 1\n" };
  const before = up("prod", prod.state, provided, { secrets: first });
  noServerTouched(before.plan, "switch to provided TLS");
  const rotated = up("prod", before.state, provided, { secrets: { ...first, frontendCert: "-----BEGIN CERTIFICATE-----\ncert 2\n", frontendKey: "-----BEGIN PRIVATE KEY-----\nkey 2\n" } });
  expectPlan(rotated.plan, { update: [{ key: K.step("frontend", "secrets"), inputs: ["stdin"] }] }, "TLS key rotation");
});

test("prod: the LB replaced on purpose: refused while protected; then delete first, same addresses, every step again", () => {
  const refused = up("prod", prod.state, PROD, { secrets: SECRETS, replace: [K.server("loadbalancer")] });
  // The server and the attachment that follows it are both protected in prod.
  assert.deepEqual(refused.plan.refused, [`${K.server("loadbalancer")}: protected, cannot be replaced`, `${K.serverNetwork("loadbalancer", "prod")}: protected, cannot be replaced`]);

  // docs/deploy.md: set protect: false and `pulumi up` first (Hetzner's protection flags follow).
  const unprotectedConfig = { ...PROD, [`${NS}:protect`]: "false" };
  const unprotected = up("prod", prod.state, unprotectedConfig, { secrets: SECRETS });
  assert.deepEqual(unprotected.plan.create, []);
  assert.deepEqual(unprotected.plan.replace, []);
  assert.deepEqual(
    unprotected.plan.update.map((u) => `${u.key}: ${u.inputs.join(",")}`).sort(),
    [
      ...["loadbalancer", "monitoring", "frontend", "backend"].map((h) => `${K.server(h)}: deleteProtection,rebuildProtection`),
      `${keyOf("hcloud:index/network:Network", "network-prod")}: deleteProtection`,
      `${K.primaryIp("ipv4")}: deleteProtection`,
      `${K.primaryIp("ipv6")}: deleteProtection`,
    ].sort(),
  );

  prodAfterLbReplace = up("prod", unprotected.state, unprotectedConfig, { secrets: SECRETS, replace: [K.server("loadbalancer")] });
  expectPlan(
    prodAfterLbReplace.plan,
    {
      replace: [
        { key: K.server("loadbalancer"), inputs: ["(--replace)"], deleteFirst: true },
        // serverId is ForceNew: the attachment follows, detached before the server goes.
        { key: K.serverNetwork("loadbalancer", "prod"), inputs: ["serverId"], deleteFirst: true },
        // The server's id is in every step's triggers: the new LB is booted, copied to, applied.
        { key: K.step("loadbalancer", "boot"), inputs: ["triggers"], deleteFirst: false },
        { key: K.copy("loadbalancer"), inputs: ["triggers"], deleteFirst: false },
        { key: K.step("loadbalancer", "secrets"), inputs: ["triggers"], deleteFirst: false },
        { key: K.step("loadbalancer", "apply"), inputs: ["triggers"], deleteFirst: false },
      ],
    },
    "LB replaced",
  );
  // The primary IPs stay: DNS and every attached stack's connection still point at the LB.
  assert.equal(prodAfterLbReplace.exports["lbIpv4"], prod.exports["lbIpv4"]);
  assert.equal(prodAfterLbReplace.exports["lbIpv6"], prod.exports["lbIpv6"]);
  assert.notEqual(prodAfterLbReplace.exports["lbServerId"], prod.exports["lbServerId"]);
});

// --- demo -------------------------------------------------------------------------------

const PROD_REF = "organization/hetzner-ingress/prod";
const refs = (exports: Record<string, unknown>, name = PROD_REF) => ({ [name]: exports });

test("demo: create, no change, a new demo route updates the LB's routes in place", () => {
  const demo = up("demo", {}, DEMO, { stackReferences: refs(prod.exports) });
  assert.ok(demo.plan.create.includes(K.routes));
  expectPlan(up("demo", demo.state, DEMO, { stackReferences: refs(prod.exports) }).plan, {}, "demo: no change");

  const more = edit(DEMO, "sites", (sites: Raw[]) => [...sites, { hostname: "api.demo.fiscalismia.com", server: "demo", port: 9443, tls: { source: "host", path: "/etc/letsencrypt/live/api.demo.fiscalismia.com" } }]);
  expectPlan(
    up("demo", demo.state, more, { stackReferences: refs(prod.exports) }).plan,
    {
      create: [K.standinKey("demo", "api.demo.fiscalismia.com"), K.standinCert("demo", "api.demo.fiscalismia.com")],
      update: [
        { key: K.step("demo", "secrets"), inputs: ["stdin"] },
        // New routes data on stdin: `update` runs the same push in place, no removal first.
        { key: K.routes, inputs: ["stdin"] },
      ],
      replace: redeploy("demo"),
    },
    "demo: add a route",
  );
});

/** Delete first, then create: demo's ServerNetwork into the LB, and its routes. */
const REATTACH: Partial<Plan> = {
  replace: [
    { key: K.lbAttachment, inputs: ["serverId"], deleteFirst: true },
    { key: K.routes, inputs: ["triggers"], deleteFirst: true },
  ],
};

test("demo: prod's LB replaced, or another owner: the old LB loses the routes first, then the new one gets them", () => {
  const demo = up("demo", {}, DEMO, { stackReferences: refs(prod.exports) });
  const afterRebuild = up("demo", demo.state, DEMO, { stackReferences: refs(prodAfterLbReplace.exports) });
  expectPlan(
    afterRebuild.plan,
    REATTACH,
    "demo after prod's LB was replaced",
  );
  // The delete of the old routes runs over the old connection: the same primary IP, now the new LB.
  assert.equal((demo.state[K.routes]!.inputs["connection"] as Raw)["host"], prodAfterLbReplace.exports["lbIpv4"]);

  const otherRef = "organization/hetzner-ingress/prod2";
  const other = { ...prod.exports, lbServerId: "777", lbIpv4: "198.51.100.77", routesKeys: { demo: "-----BEGIN OPENSSH PRIVATE KEY-----\nprod2\n-----END OPENSSH PRIVATE KEY-----\n" } };
  const moved = up("demo", demo.state, edit(DEMO, "ingress", (i: Raw) => ({ ...i, stack: "prod2" })), { stackReferences: refs(other, otherRef) });
  expectPlan(
    moved.plan,
    REATTACH,
    "demo moved to another owner",
  );
  noServerTouched(moved.plan, "ingress.stack change");
});

test("demo destroyed: its routes' delete runs on the LB, the host steps go with their server, prod's plan is unchanged", () => {
  const demo = up("demo", {}, DEMO, { stackReferences: refs(prod.exports) });
  const destroy = planOf(demo.state, {});
  assert.deepEqual(destroy.create, []);
  assert.deepEqual(destroy.refused, [], "demo is not protected");
  const runs = Object.fromEntries(destroy.delete.map((d) => [d.key, d.runs]));
  assert.equal(runs[K.routes], true, "apply.sh --remove-routes demo runs on prod's LB");
  for (const step of [K.step("demo", "boot"), K.copy("demo"), K.step("demo", "secrets"), K.step("demo", "apply")]) {
    assert.equal(runs[step], false, `${step}: deletedWith the demo server, not run against a vanishing host`);
  }
  assert.deepEqual(Object.keys(runs).sort(), Object.keys(demo.state).sort(), "everything of demo is deleted");
  expectPlan(up("prod", prod.state, PROD, { secrets: SECRETS }).plan, {}, "prod after demo is gone");
});
