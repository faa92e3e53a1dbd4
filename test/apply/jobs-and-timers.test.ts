// apply.sh with a oneshot job (the ACME client's acme.container, Type=oneshot) and its systemd
// timer (acme.timer), over real ssh with real nginx: the job is installed like any unit but
// never restarted, reloaded or probed, and started (--no-block) only once the release is live
// and committed; the timer is installed, enabled and dropped after the commit, where nothing
// rolls back; plans that leave a job or a timer dangling are refused. And tls/host-certs lines
// that name their certificate and key files (lego's <domain>.crt and <domain>.key).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdir, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pollUntil } from "../../lab";
import { applyPlan, CURRENT, nginxBundle, QUADLET, type BundleFiles, type NginxBundleOptions } from "./support/bundle";
import { ApplyHost, liveId, output, releaseId, startLab, waitForBody, type ApplyLab } from "./support/host";

const SYSTEMD = "etc/systemd/system";

let lab: ApplyLab;
before(async () => {
  lab = await startLab(3);
});
after(async () => {
  const sb = lab?.sb;
  await sb?.teardown();
  if (sb) assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
});

let nextPort = 8500;

/** A self-signed certificate and its key, made now. */
function pair(cn: string): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "pair-"));
  try {
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", `/CN=${cn}`, "-keyout", join(dir, "k"), "-out", join(dir, "c")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return { cert: readFileSync(join(dir, "c"), "utf8"), key: readFileSync(join(dir, "k"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function acmeUnit(extra = ""): string {
  return [
    "[Container]",
    "Image=docker.io/goacme/lego:v4.25",
    "Network=host",
    "Volume=/srv/ingress:/srv/ingress:ro,Z",
    "Exec=/srv/ingress/current/acme/renew.sh",
    extra,
    "[Service]",
    "Type=oneshot",
    "",
  ].join("\n");
}

function acmeTimer(onCalendar = "*-*-* 03,15:00:00"): string {
  return ["[Timer]", `OnCalendar=${onCalendar}`, "RandomizedDelaySec=1h", "Persistent=true", "[Install]", "WantedBy=timers.target", ""].join("\n");
}

interface AcmeOptions {
  /** The job's release directory: acme/domains. */
  readonly domains?: string;
  readonly unitText?: string;
  /** The timer's file; null: no timer at all (no file, no record). */
  readonly timerText?: string | null;
  /** false: keep the job out of the bundle (no unit, no records). */
  readonly job?: boolean;
}

/** An nginx bundle plus the acme job (unit, check and job records, acme/) and its timer. */
function withAcme(files: BundleFiles, o: AcmeOptions = {}): BundleFiles {
  const plan = String(files[`${CURRENT}/apply.plan`]);
  const out: Record<string, BundleFiles[string]> = { ...files };
  const records: (string | number)[][] = [];
  if (o.job !== false) {
    out[`${QUADLET}/acme.container`] = o.unitText ?? acmeUnit();
    out[`${CURRENT}/acme/domains`] = o.domains ?? "demo.example.com\n";
    records.push(["job", "acme", "acme"], ["check", "acme", "acme/domains", "/usr/bin/test", "-s", "{dir}/acme/domains"]);
  }
  if (o.timerText !== null) {
    out[`${SYSTEMD}/acme.timer`] = o.timerText ?? acmeTimer();
    records.push(["timer", "acme"]);
  }
  out[`${CURRENT}/apply.plan`] = records.length > 0 ? plan + applyPlan(records) : plan;
  return out;
}

/**
 * A web host whose units are nginx (really run) and the acme job, whose "run" appends where
 * `current` points at that moment to <base>/acme-runs: what the job saw.
 */
async function acmeHost(label: string): Promise<{ h: ApplyHost; port: number; bundle: (o?: Partial<NginxBundleOptions>, a?: AcmeOptions) => BundleFiles; runs: () => Promise<string[]> }> {
  const port = nextPort++;
  let runsFile = "";
  const h = await ApplyHost.create(lab, label, (r) => {
    runsFile = join(r.base, "acme-runs");
    return [
      { name: "nginx", signal: "HUP", start: ["/usr/sbin/nginx", "-e", "stderr", "-c", `${r.root}/current/nginx/nginx.conf`, "-g", "daemon off;"] },
      { name: "acme", signal: "TERM", start: ["/bin/bash", "-c", 'readlink "$0/current" >>"$1"', r.root, runsFile] },
    ];
  });
  const bundle = (o: Partial<NginxBundleOptions> = {}, a: AcmeOptions = {}) => withAcme(nginxBundle({ root: h.root, runDir: h.runDir, port, body: "v1", ...o }), a);
  const runs = async () => (existsSync(runsFile) ? (await readFile(runsFile, "utf8")).split("\n").filter((l) => l !== "") : []);
  return { h, port, bundle, runs };
}

/** Waits until the job has run `n` times in all; returns what each run saw as `current`. */
async function waitForRuns(runs: () => Promise<string[]>, n: number): Promise<string[]> {
  return pollUntil(`${n} run(s) of the acme job`, async () => {
    const r = await runs();
    return r.length >= n ? r : undefined;
  }, { timeoutMs: 5000, intervalMs: 50 });
}

describe("apply.sh with a oneshot job and its timer", () => {
  test("a first deploy installs the job and its timer, enables the timer and starts the job once the release is live", async () => {
    const { h, port, bundle, runs } = await acmeHost("first");
    const files = bundle();
    const r = await h.applyBundle(files, "web");
    assert.equal(r.code, 0, output(r));
    const id = liveId(r);
    // Units first (one daemon-reload), nginx restarted, probed; then, committed: the timer
    // (its own daemon-reload, enable --now) and the job, not waited for. Never a restart or
    // reload of the job.
    assert.deepEqual(await h.calls(), ["daemon-reload", "restart nginx.service", "daemon-reload", "enable --now acme.timer", "start --no-block acme.service"]);
    assert.match(r.stdout, /health probe ok\n[^]*installing timer acme\.timer\n[^]*enabling acme\.timer\n[^]*starting acme\.service \(first release\), not waiting for it\n[^]*release \S+ is live/);
    assert.equal(await readFile(join(h.quadletDir, "acme.container"), "utf8"), files[`${QUADLET}/acme.container`]);
    assert.equal(await readFile(join(h.systemdDir, "acme.timer"), "utf8"), files[`${SYSTEMD}/acme.timer`]);
    assert.equal(await readFile(join(h.root, "current", ".timers", "acme.timer"), "utf8"), files[`${SYSTEMD}/acme.timer`], "kept in the release as .timers/");
    assert.equal(existsSync(join(h.stateDir, "enabled", "acme.timer")), true);
    assert.deepEqual(await waitForRuns(runs, 1), [`releases/${id}`], "the job saw the new release live");
    await waitForBody(lab, port, "v1");
  });

  test("a redeploy starts the job only when its directory or its unit changed, and enables the timer only when it changed", async () => {
    const { h, port, bundle, runs } = await acmeHost("redeploy");
    const first = await h.applyBundle(bundle(), "web");
    assert.equal(first.code, 0, output(first));
    await waitForRuns(runs, 1);
    let seen = (await h.calls()).length;
    const since = async () => {
      const calls = await h.calls();
      const fresh = calls.slice(seen);
      seen = calls.length;
      return fresh;
    };

    const same = await h.applyBundle(bundle(), "web");
    assert.equal(same.code, 0, output(same));
    assert.match(same.stdout, /unchanged: release \S+ is live with the same content/);
    assert.deepEqual(await since(), [], "the same bundle: no start, no enable");

    const domains = await h.applyBundle(bundle({}, { domains: "demo.example.com\nwww.demo.example.com\n" }), "web");
    assert.equal(domains.code, 0, output(domains));
    assert.deepEqual(await since(), ["start --no-block acme.service"], "only the job's directory changed");
    assert.match(domains.stdout, /starting acme\.service \(acme\/ changed\)/);
    assert.equal((await waitForRuns(runs, 2))[1], `releases/${liveId(domains)}`);

    const nginxOnly = await h.applyBundle(bundle({ body: "v2" }, { domains: "demo.example.com\nwww.demo.example.com\n" }), "web");
    assert.equal(nginxOnly.code, 0, output(nginxOnly));
    assert.deepEqual(await since(), ["reload-or-restart nginx.service"], "only nginx's directory changed: the job is not started");
    await waitForBody(lab, port, "v2");

    const unit = await h.applyBundle(bundle({ body: "v2" }, { domains: "demo.example.com\nwww.demo.example.com\n", unitText: acmeUnit("PodmanArgs=--log-level=info") }), "web");
    assert.equal(unit.code, 0, output(unit));
    assert.deepEqual(await since(), ["daemon-reload", "start --no-block acme.service"], "a changed job unit is started, never restarted");
    assert.match(await readFile(join(h.quadletDir, "acme.container"), "utf8"), /PodmanArgs=--log-level=info/);
    await waitForRuns(runs, 3);

    const timer = await h.applyBundle(bundle({ body: "v2" }, { domains: "demo.example.com\nwww.demo.example.com\n", unitText: acmeUnit("PodmanArgs=--log-level=info"), timerText: acmeTimer("daily") }), "web");
    assert.equal(timer.code, 0, output(timer));
    assert.deepEqual(await since(), ["daemon-reload", "enable --now acme.timer"], "a changed timer is reloaded and enabled; the job is not started");
    assert.match(await readFile(join(h.systemdDir, "acme.timer"), "utf8"), /OnCalendar=daily/);
    assert.equal((await runs()).length, 3);
  });

  test("a timer missing from the host is put back by a redeploy of the same bundle", async () => {
    const { h, bundle } = await acmeHost("timer-missing");
    const first = await h.applyBundle(bundle(), "web");
    assert.equal(first.code, 0, output(first));
    const seen = (await h.calls()).length;
    await rm(join(h.systemdDir, "acme.timer"));
    const r = await h.applyBundle(bundle(), "web");
    assert.equal(r.code, 0, output(r));
    assert.doesNotMatch(r.stdout, /unchanged: release/);
    assert.deepEqual((await h.calls()).slice(seen), ["daemon-reload", "enable --now acme.timer"], "nothing else changed: no reload, no job start");
    assert.equal(await readFile(join(h.systemdDir, "acme.timer"), "utf8"), acmeTimer());
    const again = await h.applyBundle(bundle(), "web");
    assert.match(again.stdout, /unchanged: release \S+ is live with the same content/);
  });

  test("a timer installed but not enabled (its enable failed) is enabled by a redeploy of the same bundle", async () => {
    const { h, bundle } = await acmeHost("timer-disabled");
    const first = await h.applyBundle(bundle(), "web");
    assert.equal(first.code, 0, output(first));
    await rm(join(h.stateDir, "enabled", "acme.timer"));
    const seen = (await h.calls()).length;
    const r = await h.applyBundle(bundle(), "web");
    assert.equal(r.code, 0, output(r));
    assert.doesNotMatch(r.stdout, /unchanged: release/);
    assert.deepEqual((await h.calls()).slice(seen), ["daemon-reload", "enable --now acme.timer"], "no reload, no job start");
    assert.equal(existsSync(join(h.stateDir, "enabled", "acme.timer")), true);
    const again = await h.applyBundle(bundle(), "web");
    assert.match(again.stdout, /unchanged: release \S+ is live with the same content/);
  });

  test("a bundle that drops the timer disables it and removes its file; one that drops the job stops it", async () => {
    const { h, bundle } = await acmeHost("drop");
    const first = await h.applyBundle(bundle(), "web");
    assert.equal(first.code, 0, output(first));
    let seen = (await h.calls()).length;
    const r = await h.applyBundle(bundle({}, { timerText: null }), "web");
    assert.equal(r.code, 0, output(r));
    assert.deepEqual((await h.calls()).slice(seen), ["disable --now acme.timer", "daemon-reload"]);
    assert.match(r.stdout, /disabling acme\.timer \(timer dropped from the bundle\)/);
    assert.equal(existsSync(join(h.systemdDir, "acme.timer")), false);
    assert.equal(existsSync(join(h.stateDir, "enabled", "acme.timer")), false);
    assert.equal(existsSync(join(h.root, "current", ".timers")), false);

    seen = (await h.calls()).length;
    const noJob = await h.applyBundle(bundle({}, { timerText: null, job: false }), "web");
    assert.equal(noJob.code, 0, output(noJob));
    assert.deepEqual((await h.calls()).slice(seen), ["stop acme.service", "daemon-reload"]);
    assert.equal(existsSync(join(h.quadletDir, "acme.container")), false);
  });

  test("plans that leave a timer or a job dangling are refused, and the live release stays", async () => {
    const { h, bundle } = await acmeHost("refusals");
    const first = await h.applyBundle(bundle(), "web");
    assert.equal(first.code, 0, output(first));
    const id = liveId(first);
    const calls = await h.calls();
    const files = bundle({ body: "v2" });
    const plan = String(files[`${CURRENT}/apply.plan`]);
    const without = (kind: string) => plan.split("\n").filter((l) => !l.startsWith(`${kind}\t`)).join("\n");
    const cases: [string, BundleFiles, RegExp][] = [
      ["a .timer with no timer record", { ...files, [`${CURRENT}/apply.plan`]: without("timer") }, /the bundle's timer acme\.timer has no "timer" record in apply\.plan: it would never be installed/],
      ["a timer record without its file", { ...files, [`${CURRENT}/apply.plan`]: plan + applyPlan([["timer", "renew"]]) }, /the "timer" record renew in apply\.plan has no etc\/systemd\/system\/renew\.timer in the bundle/],
      ["a job record naming no unit", { ...files, [`${CURRENT}/apply.plan`]: plan + applyPlan([["job", "ghost", "acme"]]) }, /the "job" record ghost in apply\.plan names no unit of the bundle \(no etc\/containers\/systemd\/ghost\.container\)/],
      ["a unit with neither a unit nor a job record", { ...files, [`${CURRENT}/apply.plan`]: without("job") }, /the bundle's unit acme\.container has no "unit" or "job" record in apply\.plan/],
      ["a unit that is both", { ...files, [`${CURRENT}/apply.plan`]: plan + applyPlan([["unit", "acme", "acme"]]) }, /apply\.plan has both a "unit" and a "job" record for acme\.container/],
      ["a timer file that is not a .timer", { ...files, [`${SYSTEMD}/acme.service`]: "[Service]\n" }, /bundle: only <name>\.timer units are supported in etc\/systemd\/system\/: etc\/systemd\/system\/acme\.service/],
    ];
    for (const [what, bad, message] of cases) {
      const r = await h.applyBundle(bad, "web");
      assert.equal(r.code, 1, `${what}: ${output(r)}`);
      assert.match(r.stderr, message, what);
      assert.match(r.stdout, new RegExp(`failed: nothing changed; ${id} is still live`), what);
      assert.equal(releaseId(await h.current()), id, what);
      assert.deepEqual(await h.releases(), [id], what);
      assert.deepEqual(await h.calls(), calls, what);
    }
  });

  test("a job that fails to start is a warning: the release stays live", async () => {
    const { h, port, bundle } = await acmeHost("start-fails");
    await h.injectFailure("start");
    const r = await h.applyBundle(bundle(), "web");
    assert.equal(r.code, 0, output(r));
    assert.match(r.stderr, /apply: warning: systemctl start --no-block acme\.service failed: the job did not run now \(its timer runs it later\)/);
    const id = liveId(r);
    assert.equal(releaseId(await h.current()), id);
    assert.deepEqual(await h.releases(), [id]);
    assert.deepEqual(await h.calls(), ["daemon-reload", "restart nginx.service", "daemon-reload", "enable --now acme.timer", "start --no-block acme.service"]);
    await waitForBody(lab, port, "v1");
  });

  test("a release that fails its probe is rolled back before its job starts or its timer is installed", async () => {
    const { h, port, bundle, runs } = await acmeHost("rollback");
    const plain = nginxBundle({ root: h.root, runDir: h.runDir, port, body: "v1" });
    const first = await h.applyBundle(plain, "web");
    assert.equal(first.code, 0, output(first));
    const id = liveId(first);
    const seen = (await h.calls()).length;
    const r = await h.applyBundle(bundle({ body: "v2", extraListen: [`10.203.250.1:${port}`] }), "web", { INGRESS_PROBE_TIMEOUT: "1" });
    assert.equal(r.code, 1, output(r));
    assert.match(r.stdout, new RegExp(`rolled back; ${id} is live again`));
    // The job's unit came and went; it was never started, the timer never installed.
    assert.deepEqual((await h.calls()).slice(seen), ["daemon-reload", "reload-or-restart nginx.service", "stop acme.service", "daemon-reload", "reload-or-restart nginx.service"]);
    assert.equal(existsSync(join(h.quadletDir, "acme.container")), false);
    assert.equal(existsSync(join(h.systemdDir, "acme.timer")), false);
    assert.deepEqual(await runs(), []);
    await waitForBody(lab, port, "v1");
  });
});

describe("tls/host-certs with named certificate and key files", () => {
  test("the link moves to a checked copy of the named pair once both files are there and match; never back to the stand-in; a name that is not plain is refused", async () => {
    const port = nextPort++;
    const h = await ApplyHost.create(lab, "named-certs", (r) => [
      { name: "nginx", signal: "HUP", start: ["/usr/sbin/nginx", "-e", "stderr", "-c", `${r.root}/current/nginx/nginx.conf`, "-g", "daemon off;"] },
    ]);
    // lego's directory holds <domain>.crt and .key; it also has certbot-like names, which the
    // named line must not take for its own.
    const lego = join(h.base, "lego", "certificates");
    const certbot = join(h.base, "letsencrypt", "live", "other.example.com");
    const standin = (s: string) => join(h.root, "secrets", "tls", "standin", s);
    const link = (s: string) => join(h.root, "secrets", "tls", "live", s);
    const copies = (s: string) => join(h.root, "secrets", "tls", "copies", s);
    for (const d of [lego, certbot, standin("demo.example.com"), standin("other.example.com")]) await mkdir(d, { recursive: true });
    const one = pair("demo one");
    const two = pair("demo two");
    const other = pair("certbot other");
    await writeFile(join(standin("demo.example.com"), "demo.example.com.crt"), "stand-in cert\n");
    await writeFile(join(standin("demo.example.com"), "demo.example.com.key"), "stand-in key\n");
    await writeFile(join(lego, "demo.example.com.crt"), one.cert);
    await writeFile(join(lego, "fullchain.pem"), "not this one\n");
    await writeFile(join(lego, "privkey.pem"), "not this one\n");
    await writeFile(join(certbot, "fullchain.pem"), other.cert);
    await writeFile(join(certbot, "privkey.pem"), other.key);
    const hostCerts = (named: string) =>
      [
        "# <link> <real dir> <stand-in dir> [<cert file> <key file>]",
        `${link("demo.example.com")} ${lego} ${standin("demo.example.com")} ${named}`,
        `${link("other.example.com")} ${certbot} ${standin("other.example.com")}`,
        "",
      ].join("\n");
    const bundle = (named: string, body = "v1") => ({ ...nginxBundle({ root: h.root, runDir: h.runDir, port, body }), [`${CURRENT}/tls/host-certs`]: hostCerts(named) });
    const linked = async (s: string, file: string) => readFile(join(await readlink(link(s)), file), "utf8");

    const r = await h.applyBundle(bundle("demo.example.com.crt demo.example.com.key"), "web");
    assert.equal(r.code, 0, output(r));
    const id = liveId(r);
    assert.equal(await readlink(link("demo.example.com")), standin("demo.example.com"), "the key is not there yet");
    assert.match(r.stdout, new RegExp(`certificate ${link("demo.example.com")} -> self-signed stand-in \\(no demo\\.example\\.com\\.crt and demo\\.example\\.com\\.key in ${lego} yet\\)`));
    // No names: fullchain.pem and privkey.pem, copied where nginx reads them.
    assert.ok((await readlink(link("other.example.com"))).startsWith(`${copies("other.example.com")}/`));
    assert.equal(await linked("other.example.com", "fullchain.pem"), other.cert);
    assert.equal(((await stat(join(await readlink(link("other.example.com")), "privkey.pem"))).mode & 0o777).toString(8), "600");

    // The key lego writes next is another certificate's (a renewal cut off half-way): not taken.
    await writeFile(join(lego, "demo.example.com.key"), two.key);
    const calls = (await h.calls()).length;
    const torn = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.equal(torn.code, 0, output(torn));
    assert.match(torn.stderr, /warning: certificate .*demo\.example\.com: .*demo\.example\.com\.key is not the key of .*demo\.example\.com\.crt \(being written, or damaged\); it keeps what it has/);
    assert.equal(await readlink(link("demo.example.com")), standin("demo.example.com"));

    // The matching key: the link moves to a copy, nginx reloads.
    await writeFile(join(lego, "demo.example.com.key"), one.key);
    const switched = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.equal(switched.code, 0, output(switched));
    const first = await readlink(link("demo.example.com"));
    assert.ok(first.startsWith(`${copies("demo.example.com")}/`), first);
    assert.equal(await linked("demo.example.com", "demo.example.com.crt"), one.cert);
    assert.ok(switched.stdout.includes(`certificate ${link("demo.example.com")} -> ${lego} (its checked copy secrets/tls/copies/demo.example.com/`), switched.stdout);
    assert.deepEqual((await h.calls()).slice(calls), ["reload nginx.service"]);

    // Nothing new: nothing done. Other names in the directory change nothing either.
    await writeFile(join(lego, "fullchain.pem"), "still not this one\n");
    const idle = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.match(idle.stdout, /unchanged: every certificate link already points where it should, and nginx has loaded them/);
    // A renewal: a new copy, the link moves, nginx reloads; the copy before it is kept, older ones go.
    await writeFile(join(lego, "demo.example.com.crt"), two.cert);
    await writeFile(join(lego, "demo.example.com.key"), two.key);
    const renewed = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.equal(renewed.code, 0, output(renewed));
    assert.equal(await linked("demo.example.com", "demo.example.com.crt"), two.cert);
    assert.deepEqual((await h.calls()).slice(calls), ["reload nginx.service", "reload nginx.service"]);
    assert.equal((await readdir(copies("demo.example.com"))).length, 2, "the linked copy and the one before");

    // lego's files gone (a wiped state dir): the link keeps its real certificate, not the stand-in.
    await rm(join(lego, "demo.example.com.key"));
    const gone = await h.run(join(h.root, "current", "apply.sh"), ["--switch-certs"]);
    assert.equal(gone.code, 0, output(gone));
    assert.equal(await linked("demo.example.com", "demo.example.com.crt"), two.cert);
    await writeFile(join(lego, "demo.example.com.key"), two.key);
    const keep = await readlink(link("demo.example.com"));

    for (const [named, message] of [
      ["../demo.example.com.crt demo.example.com.key", /file name "\.\.\/demo\.example\.com\.crt" is not a plain name/],
      [".demo.crt demo.example.com.key", /file name "\.demo\.crt" is not a plain name/],
      ["demo.example.com.crt", /expected "<link> <real dir> <stand-in dir>" and optionally "<cert file> <key file> \[<acme attempts file>\]"/],
      ["a.crt a.key /var/lib/ingress-acme/a/attempts extra", /expected "<link> <real dir> <stand-in dir>" and optionally "<cert file> <key file> \[<acme attempts file>\]"/],
      ["a.crt a.key attempts", /the acme attempts file "attempts" is not an absolute path/],
    ] as const) {
      const bad = await h.applyBundle(bundle(named, "v2"), "web");
      assert.equal(bad.code, 1, `${named}: ${output(bad)}`);
      assert.match(bad.stderr, /apply: error: tls\/host-certs line 2 \(/, named);
      assert.match(bad.stderr, message, named);
      assert.equal(releaseId(await h.current()), id, named);
      assert.equal(await readlink(link("demo.example.com")), keep, named);
    }
    await waitForBody(lab, port, "v1");
  });
});
