// apply.sh on an ingress host, over real ssh, with real haproxy (-W master-worker):
// attached stacks' route fragments merged into routes.map, conflicts refused, removal,
// invalid haproxy/nftables configs refused, nftables loaded into the host namespace.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { attachedKeysFile, routesPayload } from "../../components/deploy-commands";
import { sshArgv } from "../../sandbox";
import { join } from "node:path";
import { CURRENT, haproxyBundle, nftRuleset, QUADLET, routeFragment, type HaproxyBundleOptions } from "./support/bundle";
import { HostRoot, httpGet, liveId, output, releaseId, startLab, waitForBody, type ApplyLab } from "./support/host";

let lab: ApplyLab;
before(async () => {
  lab = await startLab(1);
});
after(async () => {
  const sb = lab?.sb;
  await sb?.teardown();
  if (sb) assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
});

let nextPort = 8300;

/** An ingress host owned by stack "prod" with app.example.test routed; release v1 live. */
async function ingressHost(label: string) {
  const port = nextPort++;
  const h = await HostRoot.create(lab, label, (r) => [
    {
      name: "haproxy",
      signal: "USR2",
      start: ["/usr/sbin/haproxy", "-W", "-db", "-f", `${r.root}/current/haproxy/haproxy.cfg`, "-f", `${r.root}/current/haproxy/routes.d`],
    },
  ]);
  const bundle = (o: Partial<HaproxyBundleOptions>) =>
    haproxyBundle({ root: h.root, stack: "prod", port, version: "v1", routes: { "app.example.test": "prod-app" }, nftElement: 1, ...o });
  const r = await h.applyBundle(bundle({}), "ingress");
  assert.equal(r.code, 0, output(r));
  await waitForBody(lab, port, "v1", "/version");
  await waitForBody(lab, port, "prod-app", "/", "app.example.test");
  // An attached stack's push runs the copy of apply.sh inside the live release.
  const script = join(h.root, "current", "apply.sh");
  return { h, port, bundle, script, first: liveId(r) };
}

describe("apply.sh on an ingress host", () => {
  test("the first bundle loads its nftables ruleset into the host", async () => {
    const { h, bundle } = await ingressHost("nft");
    const before = await lab.host.exec(["nft", "list", "set", "inet", "apply_test", "marks"]);
    assert.match(before.stdout, /elements = \{ 1 \}/);
    const r = await h.applyBundle(bundle({ nftElement: 2 }), "ingress");
    assert.equal(r.code, 0, output(r));
    assert.match(r.stdout, /loading nftables\/ingress\.nft/);
    const after = await lab.host.exec(["nft", "list", "set", "inet", "apply_test", "marks"]);
    assert.match(after.stdout, /elements = \{ 2 \}/);
  });

  test("a firewall table that went missing is loaded again, and a release whose table cannot be loaded is rolled back", async () => {
    const { h, bundle, port } = await ingressHost("nft-missing");
    // Someone flushed the ruleset (Debian's nftables.service does): the next deploy, rules unchanged, restores it.
    await lab.host.exec(["nft", "delete", "table", "inet", "apply_test"]);
    const restored = await h.applyBundle(bundle({ version: "v2", nftElement: 1 }), "ingress");
    assert.equal(restored.code, 0, output(restored));
    assert.match(restored.stdout, /loading nftables\/ingress\.nft/);
    assert.match((await lab.host.exec(["nft", "list", "set", "inet", "apply_test", "marks"])).stdout, /elements = \{ 1 \}/);
    const live = await h.current();

    // An nft that accepts the file but loads nothing: the probe sees no table and the release goes back.
    const noop = join(h.stateDir, "nft-noop");
    await writeFile(noop, '#!/bin/bash\n[[ $1 == -f ]] && exit 0\nexec nft "$@"\n', { mode: 0o755 });
    await lab.host.exec(["nft", "delete", "table", "inet", "apply_test"]);
    const r = await h.applyBundle(bundle({ version: "v3", nftElement: 3 }), "ingress", { INGRESS_NFT: noop });
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /firewall check: the host firewall table inet apply_test is not loaded/);
    assert.equal(await h.current(), live);
    // Checked before any unit was touched: haproxy never saw v3.
    assert.doesNotMatch(r.stdout, /reloading haproxy/);
    assert.equal(await httpGet(lab, port, "/version"), "v2");
  });

  test("a unit's Exec= line reaches a validator as quoted words, never as shell syntax", async () => {
    const port = nextPort++;
    const marker = join(lab.sb.dir, `pwned-${port}`);
    const h = await HostRoot.create(lab, "exec-quoting", () => [{ name: "proxy", signal: "HUP", start: ["socat", `TCP-LISTEN:${port},reuseaddr,fork`, "SYSTEM:true"] }]);
    const files = {
      [`${CURRENT}/proxy/proxy.json`]: "{}\n",
      [`${CURRENT}/listeners`]: `127.0.0.1 ${port} proxy https\n`,
      [`${QUADLET}/proxy.container`]: `[Container]\nImage=docker.io/library/node:24-alpine\nExec=/bin/echo $(touch ${marker}); touch ${marker}\n`,
    };
    const r = await h.applyBundle(files, "ingress", { INGRESS_VALIDATE_PROXY: "{exec} --check" });
    assert.equal(r.code, 0, output(r));
    assert.equal(existsSync(marker), false, "the Exec= line ran as shell code in the check");
  });

  test("an attached stack's routes are merged and served, kept across bundle applies, and removed", async () => {
    const { h, port, bundle, script, first } = await ingressHost("attach");
    const calls = (await h.calls()).length;

    const pushed = await h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), script);
    assert.equal(pushed.code, 0, output(pushed));
    assert.notEqual(liveId(pushed), first);
    await waitForBody(lab, port, "demo-app", "/", "demo.example.test");
    assert.equal(await h.readFile("current/haproxy/routes.map"), "demo.example.test demo_b0\napp.example.test prod_b0\n");
    assert.deepEqual((await h.calls()).slice(calls), ["reload-or-restart haproxy.service"]);

    // Pushing the same routes again is a no-op.
    const again = await h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), script);
    assert.equal(again.code, 0, output(again));
    assert.match(again.stdout, /unchanged/);

    // A new bundle of the owning stack keeps the attached routes.
    const v2 = await h.applyBundle(bundle({ version: "v2" }), "ingress");
    assert.equal(v2.code, 0, output(v2));
    await waitForBody(lab, port, "v2", "/version");
    assert.equal(await httpGet(lab, port, "/", "demo.example.test"), "demo-app");

    const removed = await h.run(script, ["--remove-routes", "demo"]);
    assert.equal(removed.code, 0, output(removed));
    await waitForBody(lab, port, "no route", "/", "demo.example.test");
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
    assert.deepEqual(await h.routesDirs(), []);

    const twice = await h.run(script, ["--remove-routes", "demo"]);
    assert.equal(twice.code, 0, output(twice));
    assert.match(twice.stdout, /unchanged: no routes of stack demo are installed/);
  });

  test("a hostname claimed by two stacks is refused, naming it and both stacks; nothing changes", async () => {
    const { h, port, script } = await ingressHost("conflict");
    const ok = await h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), script);
    assert.equal(ok.code, 0, output(ok));
    const live = await h.current();
    const calls = await h.calls();

    for (const [stack, host, message] of [
      ["demo2", "demo.example.test", 'hostname "demo.example.test" is claimed by stack "demo" and stack "demo2"'],
      // Map files merge in name order, so the bundle's own "prod" comes second here.
      ["evil", "APP.example.test", 'hostname "app.example.test" is claimed by stack "evil" and stack "prod"'],
    ] as const) {
      const r = await h.pushRoutes(stack, routeFragment(stack, { [host]: `${stack}-app` }), script);
      assert.equal(r.code, 1, output(r));
      assert.ok(r.stderr.includes(message), output(r));
      assert.match(r.stdout, /nothing changed/);
      assert.equal(await h.current(), live);
      // The refused fragment is not left behind to break the next bundle apply.
      assert.deepEqual(await h.routesDirs(), ["demo"]);
    }
    assert.deepEqual(await h.calls(), calls);
    assert.equal(await httpGet(lab, port, "/", "demo.example.test"), "demo-app");
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("routes for the other engine only are refused, naming the stack, instead of dropping its hostnames", async () => {
    const { h, port, script } = await ingressHost("wrong-engine");
    const live = await h.current();
    // A ts-engine fragment alone (as pushed before stacks shipped both engines) on an haproxy LB.
    const r = await h.pushRoutes("demo", { "demo.json": '{"kind":"proxy-routes","stack":"demo","routes":[],"backends":[]}\n' }, script);
    assert.equal(r.code, 1, output(r));
    assert.ok(r.stderr.includes("routes of attached stack demo have no file for the engine this release runs"), output(r));
    assert.equal(await h.current(), live);
    assert.deepEqual(await h.routesDirs(), []);
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("an attached stack's fragment may only add backends and hostnames", async () => {
    const { h, port, script } = await ingressHost("sections");
    const live = await h.current();
    const sneaky = {
      "demo.cfg": "backend demo_b0\n    http-request return status 200 string ok\n\nfrontend takeover\n    bind :9999\n",
      "demo.map": "demo.example.test demo_b0\n",
    };
    const r = await h.pushRoutes("demo", sneaky, script);
    assert.equal(r.code, 1, output(r));
    assert.ok(r.stderr.includes("routes of attached stack demo: demo.cfg may only hold backend sections, found: frontend takeover"), output(r));
    const badMap = await h.pushRoutes("demo", { ...routeFragment("demo", { "demo.example.test": "demo-app" }), "demo.map": "demo.example.test demo_b0 extra\n" }, script);
    assert.equal(badMap.code, 1, output(badMap));
    assert.match(badMap.stderr, /demo\.map holds a line that is not "<hostname> <backend>"/);
    assert.equal(await h.current(), live);
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("a fragment that breaks haproxy is refused and the previous routes of that stack are restored", async () => {
    const { h, port, script } = await ingressHost("bad-fragment");
    assert.equal((await h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), script)).code, 0);
    const live = await h.current();
    const broken = { "demo.cfg": "backend demo_b0\n    no_such_keyword here\n", "demo.map": "demo.example.test demo_b0\n" };
    const r = await h.pushRoutes("demo", broken, script);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /haproxy rejected release/);
    assert.ok(r.stderr.includes(`${h.root}/current/haproxy/routes.d/demo.cfg:2`), output(r));
    assert.match(r.stdout, /routes of stack demo restored to their previous state/);
    assert.equal(await h.current(), live);
    assert.match(await h.readFile("routes/demo/demo.cfg"), /demo-app/);
    assert.equal(await httpGet(lab, port, "/", "demo.example.test"), "demo-app");
  });

  test("an attached stack's key runs only its forced command: add or remove that stack's routes, nothing else", async () => {
    const { h, port } = await ingressHost("forced");
    // demo's routes key, and the line the LB's secrets step writes for it (deploy-commands.ts),
    // its command pointed at a wrapper that sets this test's roots, as the host's paths would be.
    const keyPath = join(h.stateDir, "demo-routes-key");
    await lab.client.exec(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "demo", "-f", keyPath]);
    const publicKey = (await readFile(`${keyPath}.pub`, "utf8")).split(" ").slice(0, 2).join(" ");
    const wrapper = join(h.stateDir, "apply-as-host");
    const env = Object.entries(h.env()).map(([k, v]) => `export ${k}=${JSON.stringify(v)}`).join("\n");
    await writeFile(wrapper, `#!/bin/bash\n${env}\nexec /bin/bash ${h.root}/current/apply.sh "$@"\n`, { mode: 0o755 });
    const line = attachedKeysFile([{ stack: "demo", publicKey }]);
    assert.match(line, /^restrict,command="\/bin\/bash \/srv\/ingress\/current\/apply\.sh --attached demo" ssh-ed25519 /);
    await appendFile(lab.ssh.keys.authorizedKeysPath, line.replace("/bin/bash /srv/ingress/current/apply.sh", wrapper));

    const asDemo = async (command: string, input?: string) => {
      const argv = (await sshArgv(lab.ssh)).map((a) => (a === lab.ssh.keys.clientKeyPath ? keyPath : a));
      return lab.client.exec([...argv, command], { allowFailure: true, timeoutMs: 30_000, ...(input === undefined ? {} : { input }) });
    };
    for (const attempt of ["id", "routes; id", "routes --stack prod", "/bin/bash -i", "remove-routes prod"]) {
      const r = await asDemo(attempt);
      assert.equal(r.code, 2, `${attempt}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /this key may only run "routes" \(route files on stdin\) or "remove-routes" for stack demo/);
      assert.doesNotMatch(r.stdout, /uid=/);
    }
    const added = await asDemo("routes", routesPayload(Object.entries(routeFragment("demo", { "demo.example.test": "demo-app" })).map(([path, content]) => ({ path, content }))));
    assert.equal(added.code, 0, `${added.stdout}${added.stderr}`);
    await waitForBody(lab, port, "demo-app", "/", "demo.example.test");
    const removed = await asDemo("remove-routes");
    assert.equal(removed.code, 0, `${removed.stdout}${removed.stderr}`);
    await waitForBody(lab, port, "no route", "/", "demo.example.test");
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("a fragment that makes haproxy quote the stats password leaks it nowhere: not in stdout, stderr or apply.log", async () => {
    const { h, bundle, script } = await ingressHost("secret-echo");
    const password = "S3cr3t-Passw0rd-4711";
    await mkdir(join(h.root, "secrets"), { recursive: true, mode: 0o700 });
    await writeFile(join(h.root, "secrets", "stats.env"), `STATS_USER=admin\nSTATS_PASSWORD=${password}\n`, { mode: 0o600 });
    // The validator runs as podman would: with the unit's EnvironmentFile= loaded (--env-file).
    const withEnv = join(h.stateDir, "with-env-files");
    await writeFile(
      withEnv,
      '#!/bin/bash\nwhile [[ $1 == --env-file ]]; do while IFS="=" read -r k v; do [[ -n $k ]] && export "$k=$v"; done <"$2"; shift 2; done\nexec "$@"\n',
      { mode: 0o755 },
    );
    const env = { INGRESS_VALIDATE_HAPROXY: `${withEnv} {envfile} /usr/sbin/haproxy -c -f {dir}/haproxy/haproxy.cfg -f {dir}/haproxy/routes.d` };
    const applied = await h.applyBundle(bundle({ version: "v2", unitLines: [`EnvironmentFile=${h.root}/secrets/stats.env`] }), "ingress", env);
    assert.equal(applied.code, 0, output(applied));

    // haproxy expands "${VAR}" before it reads a keyword, and names an unknown keyword in its error.
    const echo = { "demo.cfg": 'backend demo_b0\n    "${STATS_PASSWORD}"\n', "demo.map": "demo.example.test demo_b0\n" };
    const r = await h.run(script, ["--routes", await h.writeRoutes("demo", echo), "--stack", "demo"], env);
    assert.equal(r.code, 1, output(r));
    // The check saw a placeholder, never the password, and still refused the fragment.
    assert.match(r.stderr, /haproxy rejected release/);
    assert.match(r.stderr, /placeholder-for-STATS_PASSWORD/);
    const log = await h.readFile("apply.log");
    for (const [where, text] of [["stdout", r.stdout], ["stderr", r.stderr], ["apply.log", log]] as const) {
      assert.ok(!text.includes(password), `${where} holds the stats password`);
    }
    assert.equal((await stat(join(h.root, "apply.log"))).mode & 0o777, 0o600, "apply.log is root's alone");

    // Second line: output that carries a real secret value anyway (a checker reading the real
    // file) is masked wherever apply.sh prints or logs it.
    const leaky = { INGRESS_VALIDATE_HAPROXY: `cat ${h.root}/secrets/stats.env; exit 1` };
    const masked = await h.run(script, ["--routes", await h.writeRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" })), "--stack", "demo"], leaky);
    assert.equal(masked.code, 1, output(masked));
    assert.match(masked.stderr, /STATS_PASSWORD=<secret>/);
    for (const text of [masked.stdout, masked.stderr, await h.readFile("apply.log")]) assert.ok(!text.includes(password));
  });

  test("a ts-engine release is probed on the listeners its plan names: a proxy that never binds is rolled back", async () => {
    const port = nextPort++;
    // The proxy unit's process: `bind` listens on the port like the real proxy, `nobind` never does.
    const h = await HostRoot.create(lab, "ts-probe", (r) => [{ name: "proxy", signal: "HUP", start: ["/bin/bash", "-c", `[[ $(cat ${r.root}/current/proxy/proxy.json) == *nobind* ]] && exec sleep 600; exec socat TCP-LISTEN:${port},reuseaddr,fork SYSTEM:true`] }]);
    const proxyBundle = (mode: "bind" | "nobind") => ({
      [`${CURRENT}/proxy/proxy.json`]: `{"mode": "${mode}"}\n`,
      [`${CURRENT}/listeners`]: `127.0.0.1 ${port} proxy https\n`,
      [`${QUADLET}/proxy.container`]: "[Container]\nImage=docker.io/library/node:24-alpine\nNetwork=host\nExec=node /srv/ingress/current/proxy/proxy.js --config /srv/ingress/current/proxy/proxy.json\n",
    });
    const env = { INGRESS_VALIDATE_PROXY: "true" };
    const good = await h.applyBundle(proxyBundle("bind"), "ingress", env);
    assert.equal(good.code, 0, output(good));
    assert.match(good.stdout, /health probe ok/);
    const live = await h.current();

    const dead = await h.applyBundle(proxyBundle("nobind"), "ingress", env);
    assert.equal(dead.code, 1, output(dead));
    assert.match(dead.stderr, new RegExp(`health probe: nothing accepts connections on 127\\.0\\.0\\.1 port ${port}`));
    assert.match(dead.stdout, /rolled back/);
    assert.equal(await h.current(), live);
  });

  test("invalid haproxy or nftables files in a bundle are refused by their own checkers", async () => {
    const { h, port, bundle, first } = await ingressHost("invalid");
    const calls = await h.calls();
    const cases = [
      { o: { version: "v2", haproxyText: "global\n    maxconn 256\nfrontend web\n    bind *:1\n    bogus_keyword\n" }, what: "haproxy", file: "haproxy/haproxy.cfg:5" },
      { o: { version: "v2", nftText: nftRuleset(3).replace("type inet_service", "type no_such_type") }, what: "nftables", file: "nftables/ingress.nft" },
    ];
    for (const c of cases) {
      const r = await h.applyBundle(bundle(c.o), "ingress");
      assert.equal(r.code, 1, output(r));
      assert.match(r.stderr, new RegExp(`${c.what} rejected release`));
      assert.ok(r.stderr.includes(c.file), output(r));
      assert.equal(releaseId(await h.current()), first);
    }
    assert.deepEqual(await h.releases(), [first]);
    assert.deepEqual(await h.calls(), calls);
    assert.equal(await httpGet(lab, port, "/version"), "v1");
  });

  test("a bundle apply and a routes push at the same time take turns and both land", async () => {
    const { h, port, bundle, script } = await ingressHost("concurrent");
    const [applied, pushed] = await Promise.all([
      h.applyBundle(bundle({ version: "v2" }), "ingress"),
      h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), script),
    ]);
    assert.equal(applied.code, 0, output(applied));
    assert.equal(pushed.code, 0, output(pushed));
    await waitForBody(lab, port, "v2", "/version");
    await waitForBody(lab, port, "demo-app", "/", "demo.example.test");
    assert.match(await h.readFile("current/haproxy/routes.map"), /^demo\.example\.test demo_b0$/m);
  });

  test("routes pushed before the ingress host has a release are kept for its first bundle", async () => {
    const port = nextPort++;
    const h = await HostRoot.create(lab, "early", (r) => [
      { name: "haproxy", signal: "USR2", start: ["/usr/sbin/haproxy", "-W", "-db", "-f", `${r.root}/current/haproxy/haproxy.cfg`, "-f", `${r.root}/current/haproxy/routes.d`] },
    ]);
    const { APPLY_SH } = await import("./support/bundle");
    const early = await h.pushRoutes("demo", routeFragment("demo", { "demo.example.test": "demo-app" }), APPLY_SH);
    assert.equal(early.code, 0, output(early));
    assert.match(early.stdout, /no live release yet/);
    const r = await h.applyBundle(haproxyBundle({ root: h.root, stack: "prod", port, version: "v1", routes: { "app.example.test": "prod-app" } }), "ingress");
    assert.equal(r.code, 0, output(r));
    await waitForBody(lab, port, "demo-app", "/", "demo.example.test");
  });
});
