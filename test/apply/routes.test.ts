// apply.sh on an ingress host, over real ssh, with real haproxy (-W master-worker):
// attached stacks' routes data rendered by the owner's renderer and served over TLS
// passthrough, everything outside the owner's policy refused, removal, invalid
// haproxy/nftables configs refused, nftables loaded into the host namespace.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { attachedKeysFile } from "../../components/deploy/deploy-commands";
import { pollUntil, sshArgv, waitForListening } from "../../lab";
import { join } from "node:path";
import type { RoutesPolicy } from "../../topology/attached-routes";
import { selfSignedCertificate } from "../../lab/tls";
import { applyPlan, CURRENT, HAPROXY_CHECK, haproxyBundle, nftRuleset, QUADLET, routesData, type HaproxyBundleOptions } from "./support/bundle";
import { ApplyHost, httpGet, liveId, output, releaseId, startLab, waitForBody, type ApplyLab } from "./support/host";

let lab: ApplyLab;
/** The attached stacks' web servers: one haproxy answering TLS + PROXY v2 with "app for <SNI>". */
const DEMO_WEB = { address: "172.20.0.2", port: 9443 };
const DEMO2_WEB = { address: "172.21.0.2", port: 9443 };
before(async () => {
  lab = await startLab(1);
  await lab.host.addAddress("lo", `${DEMO_WEB.address}/32`);
  await lab.host.addAddress("lo", `${DEMO2_WEB.address}/32`);
  const dir = await lab.sb.subdir("attached-web");
  const cert = await selfSignedCertificate(dir, ["demo.example.test", "demo2.example.test"]);
  const pem = join(dir, "web.pem");
  await writeFile(pem, (await readFile(cert.certPath, "utf8")) + (await readFile(cert.keyPath, "utf8")));
  const cfg = join(dir, "web.cfg");
  await writeFile(
    cfg,
    [
      "global",
      "    maxconn 64",
      "defaults",
      "    mode http",
      "    timeout connect 2s",
      "    timeout client 5s",
      "    timeout server 5s",
      "frontend web",
      ...[DEMO_WEB, DEMO2_WEB].map((w) => `    bind ${w.address}:${w.port} ssl crt ${pem} accept-proxy`),
      '    http-request return status 200 content-type text/plain lf-string "app for %[ssl_fc_sni]"',
      "",
    ].join("\n"),
  );
  const web = await lab.host.spawn("attached-web", ["/usr/sbin/haproxy", "-db", "-f", cfg]);
  await waitForListening(lab.host, [DEMO_WEB, DEMO2_WEB], { process: web });
});
after(async () => {
  const sb = lab?.sb;
  await sb?.teardown();
  if (sb) assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
});

let nextPort = 8300;

/**
 * What prod lets attach in these tests. demo2's zone covers the others' names on purpose
 * (validation would refuse that in a stack's config): the LB must still settle such claims.
 */
const POLICY: RoutesPolicy = {
  owner: "prod",
  engine: "haproxy",
  healthCheck: { interval: 1000, timeout: 1000, fall: 2, rise: 1 },
  timeouts: { connect: 2000, client: 5000, server: 5000, tunnel: 60000, inspect: 5000 },
  reserved: { hostnames: ["app.example.test"], backends: ["prod_b0"] },
  stacks: [
    { stack: "demo", network: "172.20.0.0/16", zones: ["demo.example.test"] },
    { stack: "demo2", network: "172.21.0.0/16", zones: ["example.test"] },
  ],
};

const demoData = (hostnames: readonly string[] = ["demo.example.test"]) => routesData("demo", hostnames, DEMO_WEB.address, DEMO_WEB.port);

/** HTTPS through the LB's TLS passthrough frontend, by SNI; "" with the error when it fails. */
async function httpsGet(port: number, hostname: string): Promise<string> {
  const r = await lab.client.exec(["curl", "-sS", "-k", "--max-time", "2", "--resolve", `${hostname}:${port}:${lab.hostIp}`, `https://${hostname}:${port}/`], { allowFailure: true });
  return r.code === 0 ? r.stdout : `${r.stderr.trim()}`;
}

async function waitForHttps(port: number, hostname: string, want: (body: string) => boolean): Promise<string> {
  let last = "";
  try {
    return await pollUntil(`https://${hostname}:${port}/`, async () => (want((last = await httpsGet(port, hostname))) ? last : undefined), { timeoutMs: 15_000, intervalMs: 100 });
  } catch (e) {
    throw new Error(`${(e as Error).message}; last answer: ${last}`);
  }
}

/** An ingress host owned by stack "prod" with app.example.test routed; release v1 live. */
async function ingressHost(label: string) {
  const port = nextPort++;
  const tlsPort = port + 1000;
  const h = await ApplyHost.create(lab, label, (r) => [
    {
      name: "haproxy",
      signal: "USR2",
      start: ["/usr/sbin/haproxy", "-W", "-db", "-f", `${r.root}/current/haproxy/haproxy.cfg`, "-f", `${r.root}/current/haproxy/routes.d`],
    },
  ]);
  const bundle = (o: Partial<HaproxyBundleOptions>) =>
    haproxyBundle({ root: h.root, stack: "prod", port, tlsPort, policy: POLICY, version: "v1", routes: { "app.example.test": "prod-app" }, nftElement: 1, ...o });
  const r = await h.applyBundle(bundle({}), "ingress");
  assert.equal(r.code, 0, output(r));
  await waitForBody(lab, port, "v1", "/version");
  await waitForBody(lab, port, "prod-app", "/", "app.example.test");
  // An attached stack's push runs the copy of apply.sh inside the live release.
  const script = join(h.root, "current", "apply.sh");
  return { h, port, tlsPort, bundle, script, first: liveId(r) };
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

  test("a check record's words reach the checker as words, never as shell syntax", async () => {
    const port = nextPort++;
    const marker = join(lab.sb.dir, `pwned-${port}`);
    const h = await ApplyHost.create(lab, "exec-quoting", () => [{ name: "proxy", signal: "HUP", start: ["socat", `TCP-LISTEN:${port},reuseaddr,fork`, "SYSTEM:true"] }]);
    const files = {
      [`${CURRENT}/proxy/proxy.json`]: "{}\n",
      [`${CURRENT}/apply.plan`]: applyPlan([
        ["unit", "proxy", "proxy"],
        ["check", "proxy", "proxy/proxy.json", "/bin/echo", `$(touch ${marker});`, `touch ${marker}`, "`touch", `${marker}\``],
        ["probe", "127.0.0.1", port, "proxy", "https"],
      ]),
      [`${QUADLET}/proxy.container`]: "[Container]\nImage=docker.io/library/node:24-alpine\n",
    };
    const r = await h.applyBundle(files, "ingress");
    assert.equal(r.code, 0, output(r));
    assert.match(r.stdout, /proxy: proxy\/proxy\.json ok/);
    assert.equal(existsSync(marker), false, "a word of the check ran as shell code");
  });

  test("an attached stack's routes data is rendered by the owner's renderer, served, kept across bundle applies, and removed", async () => {
    const { h, port, tlsPort, bundle, script, first } = await ingressHost("attach");
    const calls = (await h.calls()).length;

    const pushed = await h.pushRoutes("demo", demoData(), script);
    assert.equal(pushed.code, 0, output(pushed));
    assert.notEqual(liveId(pushed), first);
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
    assert.equal(await h.readFile("current/haproxy/routes.map"), "demo.example.test demo_web_9443\napp.example.test prod_b0\n");
    // The owner's renderer with the owner's settings: PROXY v2 and the TLS check, from data.
    assert.match(await h.readFile("current/haproxy/routes.d/demo.cfg"), /server web 172\.20\.0\.2:9443 .*send-proxy-v2 .*check-sni demo\.example\.test/);
    assert.match(await h.readFile("current/haproxy/routes.d/demo.cfg"), /inter 1s/);
    assert.deepEqual(await h.routesDirs(), ["demo"]);
    assert.deepEqual((await h.calls()).slice(calls), ["reload-or-restart haproxy.service"]);

    // Pushing the same routes again is a no-op.
    const again = await h.pushRoutes("demo", demoData(), script);
    assert.equal(again.code, 0, output(again));
    assert.match(again.stdout, /unchanged/);

    // A new bundle of the owning stack keeps the attached routes.
    const v2 = await h.applyBundle(bundle({ version: "v2" }), "ingress");
    assert.equal(v2.code, 0, output(v2));
    await waitForBody(lab, port, "v2", "/version");
    assert.equal(await waitForHttps(tlsPort, "demo.example.test", (b) => b.startsWith("app for")), "app for demo.example.test");

    const removed = await h.run(script, ["--remove-routes", "demo"]);
    assert.equal(removed.code, 0, output(removed));
    await waitForHttps(tlsPort, "demo.example.test", (b) => !b.startsWith("app for"));
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
    assert.deepEqual(await h.routesDirs(), []);

    const twice = await h.run(script, ["--remove-routes", "demo"]);
    assert.equal(twice.code, 0, output(twice));
    assert.match(twice.stdout, /unchanged: no routes of stack demo are installed/);
  });

  test("an attached stack may route only its own names to its own servers: everything else is refused, naming it, and nothing changes", async () => {
    const { h, port, tlsPort, script } = await ingressHost("policy");
    const good = demoData();
    const ok = await h.pushRoutes("demo", good, script);
    assert.equal(ok.code, 0, output(ok));
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
    const live = await h.current();
    const calls = await h.calls();

    const json = (o: unknown) => JSON.stringify(o);
    const cases: Array<[stack: string, data: string, message: string]> = [
      // The attack of the config-text days: an indented frontend taking port 443, and Lua.
      ["demo", "backend demo_b0\n    server s 172.20.0.9:443\n  frontend takeover\n    bind :443\n  global\n    lua-load /srv/ingress/secrets/x\n", "stack demo: routes.json is not JSON"],
      ["demo", demoData(["www.example.test"]), 'stack demo: routes[0].hostname: "www.example.test" is outside the zones stack prod delegates to stack demo (demo.example.test)'],
      ["demo", demoData(["*.demo.example.test"]), "stack demo: routes[0].hostname: \"*.demo.example.test\" is not a hostname: wildcards are not allowed here"],
      ["demo", routesData("demo", ["demo.example.test"], "172.24.0.3", 443), "stack demo: backends[0].servers[0].address: \"172.24.0.3\" is not an address in stack demo's network 172.20.0.0/16"],
      ["demo", good.replace('"demo_web_9443"', '"demo_x\\n  bind :443"'), 'stack demo: backends[0].name: "demo_x\\n  bind :443" must be 1-64 letters'],
      ["demo", json({ ...JSON.parse(good), cfg: "frontend x" }), 'stack demo: (document): Unrecognized key: "cfg"'],
      ["demo2", routesData("demo2", ["app.example.test"], DEMO2_WEB.address, DEMO2_WEB.port), 'stack demo2: routes[0].hostname: "app.example.test" is routed by stack prod'],
      ["demo2", routesData("demo2", ["demo.example.test"], DEMO2_WEB.address, DEMO2_WEB.port), 'stack demo2: hostname "demo.example.test" is routed by stack demo; remove it from one of them'],
      ["demo2", routesData("demo", ["demo2.example.test"], DEMO2_WEB.address, DEMO2_WEB.port), 'stack demo2: stack: the data says "demo" but was pushed as stack demo2'],
      ["evil", routesData("evil", ["evil.example.test"], DEMO_WEB.address, DEMO_WEB.port), "stack evil: stack evil may not attach to this LB: stack prod does not list it in ingress.attachedStacks"],
    ];
    for (const [stack, data, message] of cases) {
      const r = await h.pushRoutes(stack, data, script);
      assert.equal(r.code, 1, output(r));
      assert.ok(r.stderr.includes(message), `${message}\n${output(r)}`);
      assert.match(r.stderr, new RegExp(`routes of stack ${stack} refused by this LB's policy; nothing changed`));
      assert.equal(await h.current(), live);
      // The refused data is not left behind, and demo's previous routes are back.
      assert.deepEqual(await h.routesDirs(), ["demo"]);
      assert.equal(await h.readFile("routes/demo/routes.json"), good);
    }
    assert.deepEqual(await h.calls(), calls);
    assert.equal(await httpsGet(tlsPort, "demo.example.test"), "app for demo.example.test");
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("when the owner takes a name an attached stack routes, the owner's deploy goes on and leaves that stack out with a warning", async () => {
    const { h, port, tlsPort, bundle, script } = await ingressHost("owner-wins");
    assert.equal((await h.pushRoutes("demo", demoData(), script)).code, 0);
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");

    const taken = { ...POLICY, reserved: { hostnames: ["app.example.test", "demo.example.test"], backends: ["prod_b0", "prod_b1"] } };
    const r = await h.applyBundle(bundle({ version: "v2", policy: taken, routes: { "app.example.test": "prod-app", "demo.example.test": "prod-now" } }), "ingress");
    assert.equal(r.code, 0, output(r));
    assert.match(r.stderr, /warning: routes of attached stacks left out \(not served\) by this LB's policy:/);
    assert.ok(r.stderr.includes('stack demo: routes[0].hostname: "demo.example.test" is routed by stack prod'), output(r));
    await waitForBody(lab, port, "v2", "/version");
    assert.equal(await httpGet(lab, port, "/", "demo.example.test"), "prod-now");
    assert.equal(await h.readFile("current/haproxy/routes.map"), "app.example.test prod_b0\ndemo.example.test prod_b1\n");
    // demo's data stays: once the owner gives the name back, demo's routes come back with it.
    assert.deepEqual(await h.routesDirs(), ["demo"]);
    const back = await h.applyBundle(bundle({ version: "v3" }), "ingress");
    assert.equal(back.code, 0, output(back));
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
  });

  test("an LB whose stack lets no stack attach refuses routes, and an owner deploy with leftover routes goes on", async () => {
    const { h, bundle, script } = await ingressHost("no-policy");
    const none = await h.applyBundle(bundle({ version: "v2", policy: undefined }), "ingress");
    assert.equal(none.code, 0, output(none));
    const live = await h.current();
    const r = await h.pushRoutes("demo", demoData(), script);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /this LB lets no stack attach \(its stack lists none in ingress\.attachedStacks\): routes of stack demo refused/);
    assert.equal(await h.current(), live);
    assert.deepEqual(await h.routesDirs(), []);

    // Routes demo pushed while it was still listed: the owner's deploy warns and goes on.
    await mkdir(join(h.root, "routes", "demo"));
    await writeFile(join(h.root, "routes", "demo", "routes.json"), demoData());
    const leftover = await h.applyBundle(bundle({ version: "v3", policy: undefined }), "ingress");
    assert.equal(leftover.code, 0, output(leftover));
    assert.match(leftover.stderr, /warning: routes in .*\/routes are not served: this LB's stack lets no stack attach/);
    assert.doesNotMatch(await h.readFile("current/haproxy/routes.map"), /demo/);
  });

  test("an attached stack's key runs only its forced command: add or remove that stack's routes, nothing else", async () => {
    const { h, tlsPort, port } = await ingressHost("forced");
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
      assert.match(r.stderr, /this key may only run "routes" \(routes data on stdin\) or "remove-routes" for stack demo/);
      assert.doesNotMatch(r.stdout, /uid=/);
    }
    // demo's key pushing another stack's data is still demo's push, judged as demo's.
    const spoof = await asDemo("routes", routesData("demo2", ["demo2.example.test"], DEMO2_WEB.address, DEMO2_WEB.port));
    assert.equal(spoof.code, 1, `${spoof.stdout}${spoof.stderr}`);
    assert.match(spoof.stderr, /stack demo: stack: the data says "demo2" but was pushed as stack demo/);
    const added = await asDemo("routes", demoData());
    assert.equal(added.code, 0, `${added.stdout}${added.stderr}`);
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
    const removed = await asDemo("remove-routes");
    assert.equal(removed.code, 0, `${removed.stdout}${removed.stderr}`);
    await waitForHttps(tlsPort, "demo.example.test", (b) => !b.startsWith("app for"));
    assert.equal(await httpGet(lab, port, "/", "app.example.test"), "prod-app");
  });

  test("a config that makes haproxy quote the stats password leaks it nowhere: not in stdout, stderr or apply.log", async () => {
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
    const unitLines = [`EnvironmentFile=${h.root}/secrets/stats.env`];
    const check = [withEnv, "--env-file", `{env:${h.root}/secrets/stats.env}`, ...HAPROXY_CHECK];
    const applied = await h.applyBundle(bundle({ version: "v2", unitLines, check }), "ingress");
    assert.equal(applied.code, 0, output(applied));
    const live = await h.current();

    // haproxy expands "${VAR}" before it reads a keyword, and names an unknown keyword in its error.
    const echo = 'global\n    maxconn 256\ndefaults\n    mode tcp\n    timeout client 5s\nfrontend f\n    bind :1\n    "${STATS_PASSWORD}"\n';
    const r = await h.applyBundle(bundle({ version: "v3", unitLines, check, haproxyText: echo }), "ingress");
    assert.equal(r.code, 1, output(r));
    // The check saw a placeholder, never the password, and still refused the release.
    assert.match(r.stderr, /haproxy rejected release/);
    assert.match(r.stderr, /placeholder-for-STATS_PASSWORD/);
    assert.equal(await h.current(), live);
    const log = await h.readFile("apply.log");
    for (const [where, text] of [["stdout", r.stdout], ["stderr", r.stderr], ["apply.log", log]] as const) {
      assert.ok(!text.includes(password), `${where} holds the stats password`);
    }
    assert.equal((await stat(join(h.root, "apply.log"))).mode & 0o777, 0o600, "apply.log is root's alone");

    // Second line: output that carries a real secret value anyway (a checker reading the real
    // file) is masked wherever apply.sh prints or logs it.
    const leaky = { INGRESS_VALIDATE_HAPROXY: `cat ${h.root}/secrets/stats.env; exit 1` };
    const masked = await h.pushRoutes("demo", demoData(), script, leaky);
    assert.equal(masked.code, 1, output(masked));
    assert.match(masked.stderr, /STATS_PASSWORD=<secret>/);
    for (const text of [masked.stdout, masked.stderr, await h.readFile("apply.log")]) assert.ok(!text.includes(password));
  });

  test("a ts-engine release is probed on the listeners its plan names: a proxy that never binds is rolled back", async () => {
    const port = nextPort++;
    // The proxy unit's process: `bind` listens on the port like the real proxy, `nobind` never does.
    const h = await ApplyHost.create(lab, "ts-probe", (r) => [{ name: "proxy", signal: "HUP", start: ["/bin/bash", "-c", `[[ $(cat ${r.root}/current/proxy/proxy.json) == *nobind* ]] && exec sleep 600; exec socat TCP-LISTEN:${port},reuseaddr,fork SYSTEM:true`] }]);
    const proxyScript = (mode: "bind" | "nobind") => ({
      [`${CURRENT}/proxy/proxy.json`]: `{"mode": "${mode}"}\n`,
      [`${CURRENT}/apply.plan`]: applyPlan([
        ["unit", "proxy", "proxy"],
        ["check", "proxy", "proxy/proxy.json", "/bin/true"],
        ["probe", "127.0.0.1", port, "proxy", "https"],
      ]),
      [`${QUADLET}/proxy.container`]: "[Container]\nImage=docker.io/library/node:24-alpine\nNetwork=host\nExec=node /srv/ingress/current/proxy/proxy.js --config /srv/ingress/current/proxy/proxy.json\n",
    });
    const good = await h.applyBundle(proxyScript("bind"), "ingress");
    assert.equal(good.code, 0, output(good));
    assert.match(good.stdout, /health probe ok/);
    const live = await h.current();

    const dead = await h.applyBundle(proxyScript("nobind"), "ingress");
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
    const { h, port, tlsPort, bundle, script } = await ingressHost("concurrent");
    const [applied, pushed] = await Promise.all([h.applyBundle(bundle({ version: "v2" }), "ingress"), h.pushRoutes("demo", demoData(), script)]);
    assert.equal(applied.code, 0, output(applied));
    assert.equal(pushed.code, 0, output(pushed));
    await waitForBody(lab, port, "v2", "/version");
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
    assert.match(await h.readFile("current/haproxy/routes.map"), /^demo\.example\.test demo_web_9443$/m);
  });

  test("routes pushed before the ingress host has a release are kept for its first bundle", async () => {
    const port = nextPort++;
    const h = await ApplyHost.create(lab, "early", (r) => [
      { name: "haproxy", signal: "USR2", start: ["/usr/sbin/haproxy", "-W", "-db", "-f", `${r.root}/current/haproxy/haproxy.cfg`, "-f", `${r.root}/current/haproxy/routes.d`] },
    ]);
    const { APPLY_SH } = await import("./support/bundle");
    const early = await h.pushRoutes("demo", demoData(), APPLY_SH);
    assert.equal(early.code, 0, output(early));
    assert.match(early.stdout, /no live release yet/);
    const tlsPort = port + 1000;
    const r = await h.applyBundle(haproxyBundle({ root: h.root, stack: "prod", port, tlsPort, policy: POLICY, version: "v1", routes: { "app.example.test": "prod-app" } }), "ingress");
    assert.equal(r.code, 0, output(r));
    await waitForHttps(tlsPort, "demo.example.test", (b) => b === "app for demo.example.test");
  });
});
