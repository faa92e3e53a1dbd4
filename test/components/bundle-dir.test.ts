// The upload directories the program writes, and proof that files/apply.sh accepts them:
// the real script runs on a host bundle and on an attached stack's routes, inside a network
// namespace of this test where socat stands in for the LB's listeners (its health probe
// connects to them). Validators, nft and systemctl are `true`: their own tests cover those.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import { bundleHash, renderRoutesData } from "../../render/stack";
import { assembleHaproxyMap, renderHaproxyRoutes } from "../../render/haproxy";
import { hostBundleFiles, writeHostBundle } from "../../components/program/bundle-dir";
import { renderHostBundles } from "../../components/deploy/host-bundles";
import { readRoutesRenderer } from "../../components/program/program-files";

const APPLY_SH = readFileSync(join(REPO_ROOT, "files", "apply.sh"), "utf8");
const prodTopo = loadTopology("prod");
const prod = planStack(prodTopo);
const demo = planStack(loadTopology("demo"));

test("a host bundle: apply.sh at the root and in the release, every file in MANIFEST as '<path> <mode> <sha256>'", () => {
  const [rendered] = renderHostBundles(demo, APPLY_SH);
  const files = hostBundleFiles(rendered!);
  assert.deepEqual(
    files.map((f) => f.path),
    [
      "apply.sh",
      "etc/containers/systemd/acme.container",
      "etc/containers/systemd/nginx.container",
      "etc/systemd/system/acme.timer",
      "srv/ingress/current/acme/renew.sh",
      "srv/ingress/current/apply.plan",
      "srv/ingress/current/apply.sh",
      "srv/ingress/current/nftables/ingress.nft",
      "srv/ingress/current/nginx/nginx.conf",
      "srv/ingress/current/nginx/sites/backend.demo.fiscalismia.com.conf",
      "srv/ingress/current/nginx/sites/demo.fiscalismia.com.conf",
      "srv/ingress/current/tls/host-certs",
      "MANIFEST",
    ],
  );
  const manifest = files.find((f) => f.path === "MANIFEST")!.content.trimEnd().split("\n");
  assert.equal(manifest.length, 12);
  for (const line of manifest) assert.match(line, /^[a-z][a-z0-9./_-]+ 0[0-7]{3} [0-9a-f]{64}$/);
  assert.match(manifest[0]!, /^apply\.sh 0755 /);
  assert.match(manifest[6]!, /^srv\/ingress\/current\/apply\.sh 0755 /);
  assert.match(manifest[4]!, /^srv\/ingress\/current\/acme\/renew\.sh 0755 /);
});

test("local bundles are named by hash, written once, and replace the host's older ones", (t) => {
  const root = mkdtempSync(join(tmpdir(), "bundles-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const [rendered] = renderHostBundles(demo, APPLY_SH);
  const first = writeHostBundle(root, "demo", rendered!);
  assert.equal(first.hash, bundleHash(rendered!.files));
  assert.equal(first.localDir, join(root, "demo", "demo", first.hash));
  const mtime = statSync(join(first.localDir, "MANIFEST")).mtimeMs;
  assert.deepEqual(writeHostBundle(root, "demo", rendered!), first);
  assert.equal(statSync(join(first.localDir, "MANIFEST")).mtimeMs, mtime, "an identical bundle is not rewritten");
  assert.equal(statSync(join(first.localDir, "apply.sh")).mode & 0o777, 0o755);

  const [changed] = renderHostBundles(demo, `${APPLY_SH}\n# changed\n`);
  const second = writeHostBundle(root, "demo", changed!);
  assert.notEqual(second.hash, first.hash, "apply.sh is part of the hash");
  assert.deepEqual(readdirSync(join(root, "demo", "demo")), [second.hash]);
});

test("an attached stack's routes are one file of data, whatever engine the LB runs", () => {
  const data = renderRoutesData(demo.attach!.fragment);
  assert.equal(data.path, "/srv/ingress/routes/demo/routes.json");
  assert.deepEqual(JSON.parse(data.content), {
    stack: "demo",
    backends: [
      { name: "demo_demo_443", servers: [{ name: "demo", address: "172.20.0.2", port: 443, acmePort: 8402 }], check: { sni: "demo.fiscalismia.com", path: "/healthz" } },
      { name: "demo_demo_8443", servers: [{ name: "demo", address: "172.20.0.2", port: 8443, acmePort: 8402 }], check: { sni: "backend.demo.fiscalismia.com", path: "/healthz" } },
    ],
    routes: [
      { hostname: "demo.fiscalismia.com", backend: "demo_demo_443" },
      { hostname: "backend.demo.fiscalismia.com", backend: "demo_demo_8443" },
    ],
  });
});

const isRoot = process.getuid?.() === 0;

test("files/apply.sh applies the LB bundle, adds the demo routes from stdin and removes them again", { skip: !isRoot && "needs root for a network namespace" }, async (t) => {
  const ns = `comp-apply-${process.pid}`;
  assert.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
  const listeners: ChildProcess[] = [];
  t.after(() => {
    for (const l of listeners) l.kill();
    spawnSync("ip", ["netns", "del", ns]);
  });
  spawnSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
  // The LB's listeners (80, 443, stats) as the probe sees them: dual-stack on loopback.
  for (const port of [80, 443, 8404]) {
    listeners.push(spawn("ip", ["netns", "exec", ns, "socat", `TCP6-LISTEN:${port},ipv6only=0,reuseaddr,fork`, "SYSTEM:true"], { stdio: "ignore" }));
  }
  // The metrics endpoint listens on the LB's private address only, and is probed there.
  spawnSync("ip", ["netns", "exec", ns, "ip", "addr", "add", "172.24.1.3/32", "dev", "lo"]);
  listeners.push(spawn("ip", ["netns", "exec", ns, "socat", "TCP4-LISTEN:8405,bind=172.24.1.3,reuseaddr,fork", "SYSTEM:true"], { stdio: "ignore" }));
  await new Promise((r) => setTimeout(r, 300));

  const work = mkdtempSync(join(tmpdir(), "apply-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const root = join(work, "srv-ingress");
  const quadlet = join(work, "quadlet");
  mkdirSync(quadlet);
  const env = {
    ...process.env,
    INGRESS_ROOT: root,
    QUADLET_DIR: quadlet,
    SYSTEMCTL: "true",
    INGRESS_NFT: "true",
    INGRESS_VALIDATE_HAPROXY: "true",
    INGRESS_VALIDATE_NGINX: "true",
    INGRESS_PROBE_TIMEOUT: "5",
    // The LB's renderer runs in the node image there; here in this test's node.
    INGRESS_RENDER_ROUTES: process.execPath,
  };
  const run = (args: string[], input?: string) => {
    const r = spawnSync("ip", ["netns", "exec", ns, "/bin/bash", ...args], { env, encoding: "utf8", ...(input === undefined ? {} : { input }) });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };

  const lb = renderHostBundles(prod, APPLY_SH, { routesRenderer: readRoutesRenderer(prod)! }).find((r) => r.host === "loadbalancer")!;
  const bundle = writeHostBundle(join(work, "local"), "prod", lb);
  const incoming = join(root, "incoming");
  cpSync(bundle.localDir, join(incoming, bundle.hash), { recursive: true });
  const dir = join(incoming, bundle.hash);
  const applied = run([join(dir, "apply.sh"), "--bundle", dir, "--role", "ingress"]);
  assert.equal(applied.status, 0, applied.out);
  assert.equal(readFileSync(join(root, "current", "apply.sh"), "utf8"), APPLY_SH, "the release carries apply.sh for later route changes");

  // As the program sends them: on stdin, nothing uploaded that a prune or a rebuilt LB could lose.
  const data = renderRoutesData(demo.attach!.fragment).content;
  const added = run([join(root, "current", "apply.sh"), "--routes", "-", "--stack", "demo"], data);
  assert.equal(added.status, 0, added.out);
  assert.deepEqual(readdirSync(join(root, "routes", "demo")), ["routes.json"]);
  assert.equal(readFileSync(join(root, "routes", "demo", "routes.json"), "utf8"), data);
  // Rendered on the LB by prod's renderer with prod's settings, as prod renders its own.
  assert.equal(readFileSync(join(root, "current", "haproxy", "routes.d", "demo.cfg"), "utf8"), renderHaproxyRoutes(demo.attach!.fragment, prod.hosts.find((h) => h.ingress)!.ingress!));
  const bad = run([join(root, "current", "apply.sh"), "--routes", "-", "--stack", "demo"], "backend demo_x\n    bind :443\n");
  assert.equal(bad.status, 1, bad.out);
  assert.match(bad.out, /routes of stack demo refused by this LB's policy; nothing changed/);
  assert.match(bad.out, /stack demo: routes\.json is not JSON/);
  assert.equal(readFileSync(join(root, "routes", "demo", "routes.json"), "utf8"), data, "the previous routes are back");
  const map = readFileSync(join(root, "current", "haproxy", "routes.map"), "utf8");
  assert.match(map, /^demo\.fiscalismia\.com demo_demo_443$/m);
  assert.match(map, /^fiscalismia\.com prod_frontend_443$/m);
  // apply.sh's assembly (awk, on the host) agrees with render's, which the sandbox uses.
  const routesD = join(root, "current", "haproxy", "routes.d");
  assert.equal(map, assembleHaproxyMap(readdirSync(routesD).filter((n) => n.endsWith(".map")).sort().map((n) => readFileSync(join(routesD, n), "utf8"))));

  const removed = run([join(root, "current", "apply.sh"), "--remove-routes", "demo"]);
  assert.equal(removed.status, 0, removed.out);
  assert.doesNotMatch(readFileSync(join(root, "current", "haproxy", "routes.map"), "utf8"), /demo/);
});
