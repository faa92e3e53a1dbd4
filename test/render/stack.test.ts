import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { loadTopology, readStackConfig, REPO_ROOT, stackFile } from "../../scripts/stack-files";
import { DEFAULT_IMAGES, planStack, StackPlan, validateStackConfig } from "../../topology";
import { bundleHash, RenderedHost, renderStack } from "../../render";

const STANDALONE = join(REPO_ROOT, "examples/Pulumi.standalone-demo.yaml");

function renderAll(): Record<string, RenderedHost[]> {
  return {
    prod: renderStack(planStack(loadTopology("prod"))),
    demo: renderStack(planStack(loadTopology("demo"))),
    "standalone-demo": renderStack(planStack(loadTopology("standalone-demo", STANDALONE))),
  };
}

/** Files of this module's renderers; haproxy and nginx text has its own golden tests. */
const OWN = /\.container$|\/nftables\/|\/proxy\/|\/apply\.plan$/;
const GOLDEN = join(REPO_ROOT, "test/golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

function golden(file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (UPDATE) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `no golden file ${relative(REPO_ROOT, path)}; run with UPDATE_GOLDEN=1 and review the diff`);
  assert.equal(actual, readFileSync(path, "utf8"), `${relative(REPO_ROOT, path)} differs; run with UPDATE_GOLDEN=1 and review the diff`);
}

test("golden files: quadlet units, nftables rules, proxy configs, user data and every bundle's layout", () => {
  const all = renderAll();
  for (const [stack, hosts] of Object.entries(all)) {
    const layout = hosts.flatMap((h) => h.files.map((f) => `${h.host}\t${f.mode.toString(8).padStart(4, "0")}\t${f.path}\n`)).join("");
    golden(`${stack}/LAYOUT.tsv`, layout);
    for (const h of hosts) for (const f of h.files) if (OWN.test(f.path)) golden(join(stack, h.host, f.path), f.content);
  }
  golden("user-data.yaml", all.prod![0]!.userData!);
});

test("the same input renders byte-identical output", () => {
  assert.deepEqual(renderAll(), renderAll());
});

test("each stack renders the hosts and on-host paths its plan names, plus the routes for another LB", () => {
  const all = renderAll();
  assert.deepEqual(all.prod!.map((h) => h.host), ["loadbalancer", "monitoring", "frontend", "backend"]);
  assert.deepEqual(all.demo!.map((h) => h.host), ["demo", "_routes-for-prod"]);
  assert.deepEqual(all["standalone-demo"]!.map((h) => h.host), ["lb", "web"]);
  assert.deepEqual(all.prod![0]!.files.map((f) => f.path), [
    "/etc/containers/systemd/haproxy.container",
    "/srv/ingress/current/apply.plan",
    "/srv/ingress/current/attached/node-image",
    "/srv/ingress/current/attached/policy.json",
    "/srv/ingress/current/haproxy/errors/503.http",
    "/srv/ingress/current/haproxy/haproxy.cfg",
    "/srv/ingress/current/haproxy/routes.d/prod.cfg",
    "/srv/ingress/current/haproxy/routes.d/prod.map",
    "/srv/ingress/current/nftables/ingress.nft",
  ]);
  // What apply.sh does comes from the plan: the unit and what reloads it, the check in the
  // unit's image with its mounts and env file, the LB's 80, 443 and stats port, the metrics port
  // on its private address (the only address it binds), the firewall file and its table, the
  // route map it assembles.
  const plan = all.prod![0]!.files.find((f) => f.path.endsWith("/apply.plan"))!.content.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  assert.deepEqual(plan.map((l) => l.split("\t")), [
    ["unit", "haproxy", "haproxy"],
    [
      "check", "haproxy", "haproxy/haproxy.cfg",
      "podman", "run", "--rm", "--network", "none", "--security-opt", "label=disable",
      "-v", "/srv/ingress:/srv/ingress:ro", "--env-file", "{env:/srv/ingress/secrets/stats.env}",
      DEFAULT_IMAGES.haproxy, "haproxy", "-c", "-f", "{dir}/haproxy/haproxy.cfg", "-f", "{dir}/haproxy/routes.d",
    ],
    ["probe", "127.0.0.1", "80", "haproxy", "http"],
    ["probe", "127.0.0.1", "443", "haproxy", "https"],
    ["probe", "127.0.0.1", "8404", "haproxy", "stats"],
    ["probe", "172.24.1.3", "8405", "haproxy", "metrics"],
    ["nft", "nftables/ingress.nft", "ingress"],
    ["volume", "/srv/ingress"],
    ["map", "haproxy/routes.map", "haproxy/routes.d"],
  ]);
  const routes = all.demo![1]!;
  assert.equal(routes.userData, undefined);
  assert.deepEqual(routes.files.map((f) => f.path), ["/srv/ingress/routes/demo/routes.json"]);
  for (const h of Object.values(all).flat()) {
    for (const f of h.files) {
      assert.match(f.path, /^\/(etc\/containers\/systemd\/|etc\/systemd\/system\/[a-z0-9-]+\.timer$|srv\/ingress\/(current|routes)\/)/, `${h.host}: ${f.path}`);
      assert.ok(!f.path.startsWith("/srv/ingress/secrets"), "secret files are never rendered");
    }
  }
});

test("an LB that lets stacks attach carries the owner's policy, its node image and (when given) the renderer", () => {
  const prod = planStack(loadTopology("prod"));
  const lbFiles = (hosts: RenderedHost[]) => hosts.find((h) => h.host === "loadbalancer")!.files;
  const policy = JSON.parse(lbFiles(renderStack(prod)).find((f) => f.path === "/srv/ingress/current/attached/policy.json")!.content);
  assert.deepEqual(policy.stacks, [{ stack: "demo", network: "172.20.0.0/16", zones: ["demo.fiscalismia.com"] }]);
  assert.deepEqual(policy.reserved.hostnames, ["backend.fiscalismia.com", "fiscalismia.com", "monitoring.fiscalismia.com"]);
  assert.equal(policy.engine, "haproxy");
  assert.equal(lbFiles(renderStack(prod)).find((f) => f.path.endsWith("/attached/node-image"))!.content, `${DEFAULT_IMAGES.node}\n`);
  assert.equal(lbFiles(renderStack(prod)).some((f) => f.path.endsWith("render-routes.js")), false);
  assert.equal(lbFiles(renderStack(prod, { routesRenderer: "// renderer\n" })).find((f) => f.path.endsWith("/attached/render-routes.js"))!.content, "// renderer\n");
  // An LB no stack attaches to has none of it.
  const alone = renderStack(planStack(loadTopology("standalone-demo", STANDALONE)), { routesRenderer: "// renderer\n" });
  assert.equal(alone.flatMap((h) => h.files).some((f) => f.path.includes("/attached/")), false);
});

function changedFiles(a: RenderedHost[], b: RenderedHost[]): string[] {
  const index = (hosts: RenderedHost[]) => new Map(hosts.flatMap((h) => h.files.map((f) => [`${h.host} ${f.path}`, `${f.mode} ${f.content}`] as const)));
  const [ia, ib] = [index(a), index(b)];
  return [...new Set([...ia.keys(), ...ib.keys()])].filter((k) => ia.get(k) !== ib.get(k)).sort();
}

function prodWith(change: (raw: { sites: { hostname: string; port: number }[] }) => void): StackPlan {
  const raw = structuredClone(readStackConfig(stackFile("prod"))) as { sites: { hostname: string; port: number }[] };
  change(raw);
  return planStack(validateStackConfig("prod", raw));
}

test("moving one site to another port changes only the LB's routes and that one server's files", () => {
  const before = renderStack(planStack(loadTopology("prod")));
  const after = renderStack(prodWith((raw) => (raw.sites.find((s) => s.hostname === "fiscalismia.com")!.port = 8443)));
  assert.deepEqual(changedFiles(before, after), [
    "frontend /srv/ingress/current/apply.plan",
    "frontend /srv/ingress/current/nftables/ingress.nft",
    "frontend /srv/ingress/current/nginx/nginx.conf",
    "frontend /srv/ingress/current/nginx/sites/fiscalismia.com.conf",
    // The backend's name moved with its port: attached stacks may not take the new one.
    "loadbalancer /srv/ingress/current/attached/policy.json",
    "loadbalancer /srv/ingress/current/haproxy/routes.d/prod.cfg",
    "loadbalancer /srv/ingress/current/haproxy/routes.d/prod.map",
  ]);
  // The deploy keys on bundleHash: exactly those two hosts redeploy.
  const hashes = (hosts: RenderedHost[]) => new Map(hosts.map((h) => [h.host, bundleHash(h.files)]));
  const [hb, ha] = [hashes(before), hashes(after)];
  assert.deepEqual([...hb.keys()].filter((h) => hb.get(h) !== ha.get(h)), ["loadbalancer", "frontend"]);
});

test("bundleHash covers path, mode and content, and ignores order", () => {
  const files = [
    { path: "/a", mode: 0o644, content: "x" },
    { path: "/b", mode: 0o644, content: "y" },
  ];
  const h = bundleHash(files);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(bundleHash([...files].reverse()), h);
  assert.notEqual(bundleHash([{ ...files[0]!, mode: 0o600 }, files[1]!]), h);
  assert.notEqual(bundleHash([{ ...files[0]!, path: "/c" }, files[1]!]), h);
  assert.notEqual(bundleHash([{ ...files[0]!, content: "x\n" }, files[1]!]), h);
  assert.notEqual(bundleHash([{ path: "/a", mode: 0o644, content: "xy" }]), bundleHash([{ path: "/a", mode: 0o644, content: "x" }, { path: "/b", mode: 0o644, content: "y" }]));
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

test("npm run render writes the upload layout apply.sh reads, and user data, byte-identical on a second run", () => {
  const out = mkdtempSync(join(tmpdir(), "render-"));
  const tsx = join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs");
  const run = (dir: string, stack: string, ...extra: string[]) =>
    execFileSync(process.execPath, [tsx, join(REPO_ROOT, "scripts/render.ts"), "--stack", stack, "--out", dir, ...extra], { encoding: "utf8" });
  try {
    assert.ok(existsSync(tsx));
    run(join(out, "1"), "demo");
    const log = run(join(out, "2"), "demo");
    assert.match(log, /routes go to the LB of prod as data; that LB renders them with its own settings/);
    const files = walk(join(out, "1")).map((p) => relative(join(out, "1"), p)).sort();
    assert.deepEqual(files, [
      "_routes-for-prod/routes.json",
      "demo.user-data.yaml",
      "demo/MANIFEST",
      "demo/apply.sh",
      "demo/etc/containers/systemd/acme.container",
      "demo/etc/containers/systemd/nginx.container",
      "demo/etc/systemd/system/acme.timer",
      "demo/srv/ingress/current/acme/renew.sh",
      "demo/srv/ingress/current/apply.plan",
      "demo/srv/ingress/current/apply.sh",
      "demo/srv/ingress/current/nftables/ingress.nft",
      "demo/srv/ingress/current/nginx/nginx.conf",
      "demo/srv/ingress/current/nginx/sites/backend.demo.fiscalismia.com.conf",
      "demo/srv/ingress/current/nginx/sites/demo.fiscalismia.com.conf",
      "demo/srv/ingress/current/tls/host-certs",
    ]);
    for (const f of files) assert.equal(readFileSync(join(out, "1", f), "utf8"), readFileSync(join(out, "2", f), "utf8"), f);
    const manifest = readFileSync(join(out, "1/demo/MANIFEST"), "utf8").trim().split("\n").map((l) => l.split(" "));
    assert.equal(manifest.length, files.filter((f) => f.startsWith("demo/") && f !== "demo/MANIFEST").length);
    for (const [path, mode, sha] of manifest) {
      const onDisk = join(out, "1/demo", path!);
      assert.equal(createHash("sha256").update(readFileSync(onDisk)).digest("hex"), sha, path);
      assert.equal((statSync(onDisk).mode & 0o7777).toString(8).padStart(4, "0"), mode, path);
    }
    // prod's LB, which demo attaches to, carries the renderer the program ships.
    run(join(out, "4"), "prod");
    assert.match(readFileSync(join(out, "4/loadbalancer/srv/ingress/current/attached/render-routes.js"), "utf8"), /render-routes|--newcomer/);
    // A standalone stack from another directory: no attachment, two hosts.
    run(join(out, "3"), "standalone-demo", "--config", STANDALONE);
    assert.deepEqual(readdirSync(join(out, "3")).sort(), ["lb", "lb.user-data.yaml", "web", "web.user-data.yaml"]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
