// apply.sh on a web host, over real ssh, with real nginx: going live, refusing bad
// configs, rolling back failed reloads, idempotence and pruning.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { APPLY_SH, CURRENT, nginxBundle, nginxUnit, writeBundle, type NginxBundleOptions } from "./support/bundle";
import { ApplyHost, httpGet, liveId, output, releaseId, startLab, waitForBody, type ApplyLab } from "./support/host";

let lab: ApplyLab;
before(async () => {
  lab = await startLab(0);
});
after(async () => {
  const sb = lab?.sb;
  await sb?.teardown();
  if (sb) assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
});

let nextPort = 8100;

/** A web host with nginx as the unit "nginx", its first release (body v1) live and serving. */
async function webHost(label: string): Promise<{ h: ApplyHost; port: number; bundle: (o: Partial<NginxBundleOptions>) => ReturnType<typeof nginxBundle>; first: string }> {
  const port = nextPort++;
  const h = await ApplyHost.create(lab, label, (r) => [
    { name: "nginx", signal: "HUP", start: ["/usr/sbin/nginx", "-e", "stderr", "-c", `${r.root}/current/nginx/nginx.conf`, "-g", "daemon off;"] },
  ]);
  const bundle = (o: Partial<NginxBundleOptions>) => nginxBundle({ root: h.root, runDir: h.runDir, port, body: "v1", ...o });
  const r = await h.applyBundle(bundle({}), "web");
  assert.equal(r.code, 0, output(r));
  await waitForBody(lab, port, "v1");
  return { h, port, bundle, first: liveId(r) };
}

describe("apply.sh --bundle on a web host", () => {
  test("a first bundle installs the unit and starts nginx; the next one is reloaded in", async () => {
    const { h, port, bundle, first } = await webHost("live");
    assert.deepEqual(await h.calls(), ["daemon-reload", "restart nginx.service"]);
    assert.equal(releaseId(await h.current()), first);
    assert.equal(await h.readFile("current/.release").then((t) => /^role=web$/m.test(t)), true);

    const r = await h.applyBundle(bundle({ body: "v2" }), "web");
    assert.equal(r.code, 0, output(r));
    const second = liveId(r);
    assert.notEqual(second, first);
    assert.equal(await h.current(), `releases/${second}`);
    await waitForBody(lab, port, "v2");
    // A config-only change is a reload: no daemon-reload, no restart.
    assert.deepEqual((await h.calls()).slice(2), ["reload-or-restart nginx.service"]);
    assert.match(r.stdout, /nginx: nginx\/nginx\.conf ok/);
    assert.match(r.stdout, /health probe ok/);
  });

  test("a changed Quadlet unit is installed and restarted, not reloaded", async () => {
    const { h, port, bundle } = await webHost("unit-change");
    const r = await h.applyBundle(bundle({ body: "v2", unitText: nginxUnit(undefined, "PodmanArgs=--log-level=info") }), "web");
    assert.equal(r.code, 0, output(r));
    assert.deepEqual((await h.calls()).slice(2), ["daemon-reload", "restart nginx.service"]);
    assert.match(await h.readFile("../../etc/containers/systemd/nginx.container"), /PodmanArgs=--log-level=info/);
    await waitForBody(lab, port, "v2");
  });

  test("the same bundle twice changes nothing", async () => {
    const { h, port, bundle, first } = await webHost("twice");
    const calls = await h.calls();
    const releases = await h.releases();
    const r = await h.applyBundle(bundle({}), "web");
    assert.equal(r.code, 0, output(r));
    assert.match(r.stdout, /unchanged: release \S+ is live with the same content/);
    assert.deepEqual(await h.calls(), calls);
    assert.deepEqual(await h.releases(), releases);
    assert.equal(releaseId(await h.current()), first);
    assert.equal(await httpGet(lab, port), "v1");
  });

  test("an invalid nginx config is rejected with nginx's own message and the old one keeps serving", async () => {
    const { h, port, bundle, first } = await webHost("invalid");
    const calls = await h.calls();
    const broken = `server {\n  listen ${port};\n  bogus_directive on;\n}\n`;
    const r = await h.applyBundle(bundle({ body: "v2", siteText: broken }), "web");
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /nginx rejected release \S+ \(srv\/ingress\/current\/nginx\/nginx\.conf\)/);
    // nginx's output, with the paths the config uses (not the validation copy's).
    assert.ok(r.stderr.includes(`unknown directive "bogus_directive" in ${h.root}/current/nginx/sites/site.conf:3`), output(r));
    assert.match(r.stdout, /nothing changed; \S+ is still live/);
    assert.equal(releaseId(await h.current()), first);
    assert.deepEqual(await h.releases(), [first]);
    assert.deepEqual(await h.calls(), calls);
    assert.equal(await httpGet(lab, port), "v1");
  });

  test("a reload that fails is rolled back: the old release is current and serving again", async () => {
    const { h, port, bundle, first } = await webHost("reload-fails");
    await h.injectFailure("reload-or-restart");
    const r = await h.applyBundle(bundle({ body: "v2" }), "web");
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /systemctl reload-or-restart nginx\.service failed/);
    assert.match(r.stdout, new RegExp(`rolled back; ${first} is live again`));
    assert.equal(releaseId(await h.current()), first);
    assert.deepEqual(await h.releases(), [first]);
    // The stand-in did send HUP before failing, so only the rollback's reload brings v1 back.
    assert.deepEqual((await h.calls()).slice(2), ["reload-or-restart nginx.service", "reload-or-restart nginx.service"]);
    await waitForBody(lab, port, "v1");
  });

  test("a failing health probe is rolled back", async () => {
    const { h, port, bundle, first } = await webHost("probe-fails");
    // nginx -t does not bind, so this passes validation; nginx serves the address from
    // its wildcard socket, but nothing on the host can reach it: the probe fails.
    const r = await h.applyBundle(bundle({ body: "v2", extraListen: [`10.203.250.1:${port}`] }), "web", { INGRESS_PROBE_TIMEOUT: "1" });
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, new RegExp(`health probe: nothing accepts connections on 10\\.203\\.250\\.1 port ${port}`));
    assert.equal(releaseId(await h.current()), first);
    assert.deepEqual((await h.calls()).slice(2), ["reload-or-restart nginx.service", "reload-or-restart nginx.service"]);
    await waitForBody(lab, port, "v1");
  });

  test("a bundle whose files do not match MANIFEST is refused before anything is staged", async () => {
    const { h, bundle, first } = await webHost("manifest");
    const files = bundle({ body: "v2" });
    const dir = await writeBundle(h.incoming, files);
    await writeFile(join(dir, CURRENT, "nginx", "sites", "site.conf"), "tampered\n");
    const r = await h.run(join(dir, "apply.sh"), ["--bundle", dir, "--role", "web"]);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /bundle file does not match MANIFEST \(sha256\): srv\/ingress\/current\/nginx\/sites\/site\.conf/);
    assert.equal(releaseId(await h.current()), first);
    assert.deepEqual(await h.releases(), [first]);
  });

  test("releases beyond five are pruned, oldest first", async () => {
    const { h, port, bundle, first } = await webHost("prune");
    const ids = [first];
    for (let v = 2; v <= 7; v++) {
      const r = await h.applyBundle(bundle({ body: `v${v}` }), "web");
      assert.equal(r.code, 0, output(r));
      ids.push(liveId(r));
    }
    assert.deepEqual(await h.releases(), ids.slice(2).sort());
    assert.equal(releaseId(await h.current()), ids[6]);
    await waitForBody(lab, port, "v7");
  });

  test("a check record runs as the words it lists: {dir} is the release checked, an env file a copy with placeholder values", async () => {
    const { h, bundle } = await webHost("check-record");
    const seen = join(h.base, "checker-args");
    const envFile = join(h.root, "secrets", "site.env");
    await mkdir(join(h.root, "secrets"), { recursive: true });
    await writeFile(envFile, "API_TOKEN=t0ps3cr3t-value\n", { mode: 0o600 });
    const script = `printf '%s\\n' "$@" >${seen}; cat "$3" >>${seen}; exec /usr/sbin/nginx -t -e stderr -c "$1/nginx/nginx.conf"`;
    const r = await h.applyBundle(bundle({ body: "v2", check: ["/bin/bash", "-c", script, "check", "{dir}", "--env-file", `{env:${envFile}}`, "$(id) ;|&"] }), "web");
    assert.equal(r.code, 0, output(r));
    const lines = (await readFile(seen, "utf8")).split("\n");
    assert.match(lines[0]!, new RegExp(`^${h.root}/\\.validate/\\S+$`), "{dir}: the copy of the release being checked");
    assert.equal(lines[1], "--env-file");
    assert.match(lines[2]!, /placeholder-\d+\.env$/);
    assert.equal(lines[3], "$(id) ;|&", "a word is passed as it is, never read by a shell");
    assert.equal(lines[4], "API_TOKEN=placeholder-for-API_TOKEN");
  });

  test("a plan that would leave a unit unchecked or a firewall file unloaded is refused before anything is staged", async () => {
    const { h, bundle, first } = await webHost("plan-gaps");
    const files = bundle({ body: "v2" });
    const plan = String(files[`${CURRENT}/apply.plan`]);
    const noCheck = { ...files, [`${CURRENT}/apply.plan`]: plan.split("\n").filter((l) => !l.startsWith("check\t")).join("\n") };
    const r1 = await h.applyBundle(noCheck, "web");
    assert.equal(r1.code, 1, output(r1));
    assert.match(r1.stderr, /the bundle's unit nginx\.container has no "check" record in apply\.plan/);
    const stray = { ...files, [`${CURRENT}/nftables/extra.nft`]: "table inet x {}\n" };
    const r2 = await h.applyBundle(stray, "web");
    assert.equal(r2.code, 1, output(r2));
    assert.match(r2.stderr, /nftables\/extra\.nft has no "nft" record in apply\.plan/);
    assert.equal(releaseId(await h.current()), first);
  });

  test("a volume record's missing directory is created before the checks; a path that is not plain is refused", async () => {
    const { h, bundle, first } = await webHost("volumes");
    const files = bundle({ body: "v2" });
    const plan = String(files[`${CURRENT}/apply.plan`]);
    const missing = join(h.base, "etc", "letsencrypt");
    const r = await h.applyBundle({ ...files, [`${CURRENT}/apply.plan`]: `${plan}volume\t${missing}\n` }, "web");
    assert.equal(r.code, 0, output(r));
    // Created before the checks ran: the "created" line comes before the check's verdict.
    assert.match(r.stdout, new RegExp(`created ${missing} \\(a unit binds it[^]*nginx: nginx/nginx\\.conf ok`));
    assert.equal((await stat(missing)).isDirectory(), true);
    const second = liveId(r);
    assert.notEqual(second, first);
    const bad = await h.applyBundle({ ...bundle({ body: "v3" }), [`${CURRENT}/apply.plan`]: `${plan}volume\t${h.base}/x/../y\n` }, "web");
    assert.equal(bad.code, 1, output(bad));
    assert.match(bad.stderr, /apply\.plan: bad volume path/);
    assert.equal(releaseId(await h.current()), second, "the refused bundle left the live release alone");
  });

  test("each daemon's record names the release it last loaded: after a deploy, a --switch-certs reload, a release that leaves it alone, and a rollback", async () => {
    const { h, port, bundle, first } = await webHost("loaded");
    const loaded = async () => (await h.readFile(".loaded/nginx")).trim();
    assert.equal(await loaded(), first, "the first deploy restarted nginx on its release");

    // A certificate kept on the host: the stand-in first, then a real one and --switch-certs.
    const real = join(h.base, "real");
    const standin = join(h.root, "secrets", "tls", "standin", "site");
    await mkdir(standin, { recursive: true });
    await mkdir(real, { recursive: true });
    for (const [dir, cn] of [[standin, "stand-in"], [real, "real"]] as const) {
      const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", `/CN=${cn}`, "-keyout", join(dir, "privkey.pem"), "-out", join(dir, "fullchain.pem")], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    }
    await rm(join(real, "privkey.pem"));
    const certs = { [`${CURRENT}/tls/host-certs`]: `${join(h.root, "secrets", "tls", "live", "site")} ${real} ${standin}\n` };
    const withCerts = await h.applyBundle({ ...bundle({ body: "v2" }), ...certs }, "web");
    assert.equal(withCerts.code, 0, output(withCerts));
    const second = liveId(withCerts);
    assert.equal(await loaded(), second, "reloaded with its new site");

    // An old record (a reload apply.sh never saw through): the hook's reload writes the live release.
    await writeFile(join(h.root, ".loaded", "nginx"), `${first}\n`);
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=real", "-keyout", join(real, "privkey.pem"), "-out", join(real, "fullchain.pem")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const calls = (await h.calls()).length;
    const switched = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.equal(switched.code, 0, output(switched));
    assert.deepEqual((await h.calls()).slice(calls), ["reload nginx.service"]);
    assert.equal(await loaded(), second);

    // A release that changes none of nginx's files (only apply.plan): nginx is not reloaded, and
    // its record moves on to the new release, whose config it runs as much as the last one's.
    const plan = (extra: string) => ({ [`${CURRENT}/apply.plan`]: `${String(bundle({})[`${CURRENT}/apply.plan`])}# ${extra}\n` });
    const quiet = await h.applyBundle({ ...bundle({ body: "v2" }), ...certs, ...plan("one") }, "web");
    assert.equal(quiet.code, 0, output(quiet));
    const third = liveId(quiet);
    assert.deepEqual((await h.calls()).slice(calls + 1), [], "nothing reloaded");
    assert.equal(await loaded(), third);
    // Unless it had not loaded the release before: then its record stays, and tells.
    await writeFile(join(h.root, ".loaded", "nginx"), `${second}\n`);
    const stale = await h.applyBundle({ ...bundle({ body: "v2" }), ...certs, ...plan("two") }, "web");
    assert.equal(stale.code, 0, output(stale));
    assert.notEqual(liveId(stale), third);
    assert.equal(await loaded(), second);
    // A release that changes none of nginx's files while its certificate was renewed: the reload
    // for the certificate records the release.
    const renewed = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=renewed", "-keyout", join(real, "privkey.pem"), "-out", join(real, "fullchain.pem")], { encoding: "utf8" });
    assert.equal(renewed.status, 0, renewed.stderr);
    const before = (await h.calls()).length;
    const certOnly = await h.applyBundle({ ...bundle({ body: "v2" }), ...certs, ...plan("three") }, "web");
    assert.equal(certOnly.code, 0, output(certOnly));
    assert.deepEqual((await h.calls()).slice(before), ["reload nginx.service"]);
    assert.equal(await loaded(), liveId(certOnly));

    // A reload that fails is rolled back, and the rollback's reload loads the previous release
    // (the record before each run names no release, so only the rollback can have written it).
    await writeFile(join(h.root, ".loaded", "nginx"), "no-release\n");
    await h.injectFailure("reload-or-restart");
    const failed = await h.applyBundle({ ...bundle({ body: "v3" }), ...certs }, "web");
    assert.equal(failed.code, 1, output(failed));
    assert.equal(releaseId(await h.current()), liveId(certOnly));
    assert.equal(await loaded(), liveId(certOnly));
    await waitForBody(lab, port, "v2");
    // And a rollback after a reload that worked (the probe failed): the record goes back too.
    await writeFile(join(h.root, ".loaded", "nginx"), "no-release\n");
    const unprobed = await h.applyBundle({ ...bundle({ body: "v3", extraListen: [`10.203.250.1:${port}`] }), ...certs }, "web", { INGRESS_PROBE_TIMEOUT: "1" });
    assert.equal(unprobed.code, 1, output(unprobed));
    assert.match(unprobed.stdout, /reloading nginx\.service/);
    assert.equal(await loaded(), liveId(certOnly));
  });

  test("usage errors exit 2 and say what is wrong", async () => {
    const h = await ApplyHost.create(lab, "usage", () => []);
    for (const [args, message] of [
      [["--bundle", "/nonexistent"], "--bundle needs --role ingress|web"],
      [["--bundle", "/nonexistent", "--role", "db"], "--bundle needs --role ingress|web"],
      [["--routes", "/nonexistent"], "--routes needs --stack STACK"],
      [["--remove-routes", "Bad Name"], "invalid stack name 'Bad Name'"],
      [[], "one of --bundle, --routes or --remove-routes is required"],
    ] as const) {
      const r = await h.run(APPLY_SH, args);
      assert.equal(r.code, 2, output(r));
      assert.ok(r.stderr.includes(`apply: usage error: ${message}`), output(r));
    }
  });
});
