// The doctor's drift check on hosts the real apply.sh deployed (test/apply/support: real nginx
// and haproxy in a network namespace, systemd's one stand-in): DRIFT_SCRIPT runs for real, over
// ssh and fed on stdin (`bash -s`) as the doctor runs it, and driftFindings judges what it printed
// against the deployed bundle, given as renderHostBundles gives a stack's (a RenderedHost). Each
// fix a finding names is run as written (with this test's directories for /srv/ingress and the
// rest) to see that it repairs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sshRun } from "../../lab";
import { bundleHash, type RenderedHost } from "../../render/stack";
import { withApplyScript } from "../../render/host-bundle";
import { DRIFT_SCRIPT, driftFindings, type DriftFinding } from "../../doctor/drift";
import { APPLY_SH, applyPlan, CURRENT, haproxyBundle, nginxBundle, QUADLET, routesData, type BundleFiles } from "../apply/support/bundle";
import { ApplyHost, liveId, output, startLab, waitForBody, type ApplyLab } from "../apply/support/host";
import type { RoutesPolicy } from "../../topology/attached-routes";

const SYSTEMD = "etc/systemd/system";

let lab: ApplyLab;
before(async () => {
  lab = await startLab(4);
});
after(async () => {
  const sb = lab?.sb;
  await sb?.teardown();
  if (sb) assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
});

let nextPort = 8700;

/** What the stack renders for a host whose bundle is `files`: its files at their on-host paths, apply.sh in the release. */
function rendered(host: string, files: BundleFiles): RenderedHost {
  const list = Object.entries(files).map(([path, f]) => (typeof f === "string" ? { path: `/${path}`, mode: 0o644, content: f } : { path: `/${path}`, mode: f.mode, content: f.content }));
  return withApplyScript({ host, files: list }, readFileSync(APPLY_SH, "utf8"));
}

/** nginx plus a oneshot job (the ACME client's shape) with its timer: every kind of file a web server gets. */
function webFiles(h: ApplyHost, port: number, body: string): BundleFiles {
  const files = nginxBundle({ root: h.root, runDir: h.runDir, port, body });
  return {
    ...files,
    [`${QUADLET}/acme.container`]: ["[Container]", "Image=docker.io/goacme/lego:v4.25", `Exec=${h.root}/current/acme/renew.sh`, "[Service]", "Type=oneshot", ""].join("\n"),
    [`${CURRENT}/acme/domains`]: "demo.example.com\n",
    [`${SYSTEMD}/acme.timer`]: ["[Timer]", "OnCalendar=*-*-* 03:00:00", "[Install]", "WantedBy=timers.target", ""].join("\n"),
    [`${CURRENT}/apply.plan`]: String(files[`${CURRENT}/apply.plan`]) + applyPlan([["job", "acme", "acme"], ["check", "acme", "acme/domains", "/usr/bin/test", "-s", "{dir}/acme/domains"], ["timer", "acme"]]),
  };
}

interface Deployed {
  readonly h: ApplyHost;
  readonly port: number;
  readonly files: BundleFiles;
  /** Where the bundle was uploaded: what a fix calls /srv/ingress/incoming/<hash>. */
  readonly bundle: string;
  readonly id: string;
}

async function webServer(label: string): Promise<Deployed> {
  const port = nextPort++;
  const h = await ApplyHost.create(lab, label, (r) => [{ name: "nginx", signal: "HUP", start: ["/usr/sbin/nginx", "-e", "stderr", "-c", `${r.root}/current/nginx/nginx.conf`, "-g", "daemon off;"] }]);
  const files = webFiles(h, port, "v1");
  const r = await h.applyBundle(files, "web");
  assert.equal(r.code, 0, output(r));
  await waitForBody(lab, port, "v1");
  return { h, port, files, bundle: r.bundle, id: liveId(r) };
}

function envOf(h: ApplyHost): string {
  return Object.entries(h.env())
    .map(([k, v]) => `${k}='${v}'`)
    .join(" ");
}

/** DRIFT_SCRIPT over ssh, on stdin, under `bash -u`; it must succeed and say nothing on stderr. */
async function drift(h: ApplyHost): Promise<string> {
  const r = await sshRun(lab.client, lab.ssh, `${envOf(h)} bash -u -s`, { input: DRIFT_SCRIPT, allowFailure: true });
  assert.equal(r.code, 0, output(r));
  assert.equal(r.stderr, "");
  return r.stdout;
}

async function findings(d: Pick<Deployed, "h" | "files">, host = "web"): Promise<DriftFinding[]> {
  return driftFindings(rendered(host, d.files), await drift(d.h));
}

/** A fix's command (between backquotes) with this test's directories for the host's, run on the host. */
async function runFix(d: Deployed, f: DriftFinding): Promise<void> {
  const m = /`([^`]+)`$/.exec(f.fix);
  assert.ok(m?.[1], `no command in the fix: ${f.fix}`);
  const expected = rendered("web", d.files);
  // One pass (this test's directories hold "/srv/ingress" themselves), and a path inside the
  // uploaded bundle (…/incoming/<hash>/srv/ingress/current/X) keeps its bundle-relative part.
  const incoming = `/srv/ingress/incoming/${bundleHash(expected.files)}`;
  const ours: Record<string, string> = { "/srv/ingress": d.h.root, "/etc/containers/systemd": d.h.quadletDir, "systemctl ": `${join(d.h.stateDir, "systemctl")} ` };
  const command = m[1].replace(new RegExp(`${incoming}(/\\S*)?|/srv/ingress|/etc/containers/systemd|systemctl `, "g"), (k: string, inBundle: string | undefined) =>
    k.startsWith(incoming) ? d.bundle + (inBundle ?? "") : ours[k] ?? k,
  );
  const r = await sshRun(lab.client, lab.ssh, `${envOf(d.h)} bash -c '${command.replace(/'/g, `'\\''`)}'`, { allowFailure: true, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${command}\n${output(r)}`);
}

function summary(list: readonly DriftFinding[]): string[] {
  return list.map((f) => `${f.kind} ${f.path}`);
}

/** Every file below `dirs` with its type, mode, size, mtime and ctime. */
function listing(dirs: readonly string[]): string {
  const r = spawnSync("find", [...dirs, "-printf", "%p %y %m %s %T@ %C@\\n"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").sort().join("\n");
}

describe("the doctor's drift check", () => {
  test("DRIFT_SCRIPT is shellcheck clean, as files/apply.sh is: it runs as root on every host", () => {
    const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { encoding: "utf8", input: DRIFT_SCRIPT });
    assert.equal(r.error, undefined, "shellcheck is not installed: scripts/setup.sh installs it");
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  test("a freshly deployed web server has no findings; the script writes nothing, reads nothing from stdin and runs under set -u", async () => {
    const d = await webServer("fresh");
    const { h } = d;
    assert.ok(DRIFT_SCRIPT.startsWith("set -u\n"));
    const dirs = [h.root, h.quadletDir, h.systemdDir, h.stateDir];
    const before = listing(dirs);
    const out = await drift(h);
    assert.equal(listing(dirs), before, "nothing below the host's directories changed");
    assert.deepEqual(driftFindings(rendered("web", d.files), out), []);
    // What the comparison rests on: every file of the release, both units and the timer, each daemon's record.
    assert.match(out, new RegExp(`^current\treleases/${d.id}$`, "m"));
    assert.match(out, /^file\tsrv\/ingress\/current\/nginx\/sites\/site\.conf\t644\t[0-9a-f]{64}$/m);
    assert.match(out, /^file\tsrv\/ingress\/current\/\.units\/acme\.container\t644\t[0-9a-f]{64}$/m);
    assert.match(out, /^file\tetc\/containers\/systemd\/nginx\.container\t644\t[0-9a-f]{64}$/m);
    assert.match(out, /^file\tetc\/systemd\/system\/acme\.timer\t644\t[0-9a-f]{64}$/m);
    assert.match(out, new RegExp(`^loaded\tnginx\t${d.id}$`, "m"));
    assert.doesNotMatch(out, /^loaded\tacme/m, "a job is no daemon: nothing records what it loaded");

    // Given as `bash -c` instead of on stdin, the same report: it never read its own text.
    const direct = spawnSync("bash", ["-u", "-c", DRIFT_SCRIPT], { encoding: "utf8", env: { ...process.env, ...h.env() } });
    assert.equal(direct.stderr, "");
    assert.equal(direct.stdout, out);
    // With every filesystem read-only, the same report and not a word on stderr: it opens nothing for writing.
    const ro = spawnSync(
      "unshare",
      ["-m", "--propagation", "private", "bash", "-c", `awk '{ print $2 }' /proc/self/mounts | while read -r m; do mount -o remount,bind,ro "$m" 2>/dev/null; done; ! touch "$0/probe" 2>/dev/null || exit 99; exec bash -u -s`, h.base],
      { encoding: "utf8", env: { ...process.env, ...h.env() }, input: DRIFT_SCRIPT },
    );
    assert.equal(ro.status, 0, `${ro.status}: ${ro.stderr}`);
    assert.equal(ro.stderr, "");
    assert.equal(ro.stdout, out);
    assert.equal(listing(dirs), before);
  });

  test("a file edited on the host differs, named by its path; putting it back as the fix says repairs it, and so does the deployed bundle run again (pulumi up does not run it)", async () => {
    const d = await webServer("edited");
    const site = join(d.h.root, "current", "nginx", "sites", "site.conf");
    await writeFile(site, (await readFile(site, "utf8")).replace("v1", "hand-edited"));
    const reloaded = await sshRun(lab.client, lab.ssh, `${envOf(d.h)} ${join(d.h.stateDir, "systemctl")} reload nginx.service`, { allowFailure: true });
    assert.equal(reloaded.code, 0, output(reloaded));
    await waitForBody(lab, d.port, "hand-edited");
    const found = await findings(d);
    assert.deepEqual(summary(found), ["release-modified /srv/ingress/current", "differs /srv/ingress/current/nginx/sites/site.conf"]);
    const differs = found[1]!;
    assert.match(differs.detail, /^mode 0644, sha256 [0-9a-f]{12} on the host; the stack renders mode 0644, sha256 [0-9a-f]{12}$/);
    assert.match(differs.fix, /pulumi up does not repair this/);
    const hash = bundleHash(rendered("web", d.files).files);
    assert.ok(
      differs.fix.endsWith(`\`install -m 0644 /srv/ingress/incoming/${hash}/srv/ingress/current/nginx/sites/site.conf /srv/ingress/current/nginx/sites/site.conf && systemctl reload-or-restart nginx.service\``),
      differs.fix,
    );

    await runFix(d, differs);
    assert.deepEqual(await findings(d), []);
    await waitForBody(lab, d.port, "v1");

    // The other repair the fix names: the deployed bundle run again finds its release changed
    // on the host and builds it again from what was deployed (not "unchanged").
    await writeFile(site, (await readFile(site, "utf8")).replace("v1", "hand-edited"));
    assert.deepEqual(summary(await findings(d)), summary(found));
    const again = await d.h.applyBundle(d.files, "web");
    assert.equal(again.code, 0, output(again));
    assert.match(again.stdout, /release \S+ was changed on this host since it was built: building it again from the bundle/);
    assert.deepEqual(await findings(d), []);
  });

  test("a file deleted from the release is missing, one dropped into it is extra, a changed mode is mode; each fix repairs", async () => {
    const d = await webServer("missing-extra");
    await rm(join(d.h.root, "current", "acme", "domains"));
    await writeFile(join(d.h.root, "current", "nginx", "sites", "zz-extra.conf"), "server { listen 127.0.0.1:1; }\n");
    await chmod(join(d.h.root, "current", "apply.plan"), 0o600);
    // A unit no release installed is extra; a timer none installed is another package's business.
    await writeFile(join(d.h.quadletDir, "stray.container"), "[Container]\nImage=docker.io/library/busybox\n");
    await writeFile(join(d.h.systemdDir, "other-package.timer"), "[Timer]\nOnCalendar=daily\n");
    const found = await findings(d);
    assert.deepEqual(summary(found), [
      "release-modified /srv/ingress/current",
      "missing /srv/ingress/current/acme/domains",
      "mode /srv/ingress/current/apply.plan",
      "extra /srv/ingress/current/nginx/sites/zz-extra.conf",
      "extra /etc/containers/systemd/stray.container",
    ]);
    const [, missing, mode, extra, stray] = found as [DriftFinding, DriftFinding, DriftFinding, DriftFinding, DriftFinding];
    assert.match(stray.fix, /^no release of this stack installed it, and apply\.sh never removes what it did not install/);
    assert.match(stray.fix, /`systemctl stop stray\.service && rm \/etc\/containers\/systemd\/stray\.container && systemctl daemon-reload`$/);
    assert.match(missing.fix, /`install -m 0644 \S+\/srv\/ingress\/current\/acme\/domains \/srv\/ingress\/current\/acme\/domains`$/, "a job's file: nothing to reload");
    assert.equal(mode.detail, "mode 0600 on the host; the stack renders 0644");
    assert.match(mode.fix, /`chmod 0644 \/srv\/ingress\/current\/apply\.plan`$/);
    assert.match(extra.detail, /neither rendered by the stack nor written by apply\.sh/);
    assert.match(extra.fix, /`rm \/srv\/ingress\/current\/nginx\/sites\/zz-extra\.conf && systemctl reload-or-restart nginx\.service`$/);
    for (const f of [missing, mode, extra, stray]) await runFix(d, f);
    assert.deepEqual(await findings(d), []);
  });

  test("a unit file edited on the host differs; running the deployed bundle again, as the fix says, installs it again", async () => {
    const d = await webServer("unit-edited");
    const unit = join(d.h.quadletDir, "nginx.container");
    await writeFile(unit, `${await readFile(unit, "utf8")}PodmanArgs=--log-level=debug\n`);
    const found = await findings(d);
    assert.deepEqual(summary(found), ["differs /etc/containers/systemd/nginx.container"]);
    assert.match(found[0]!.fix, /pulumi up does not run its apply step again for the same bundle/);
    const hash = bundleHash(rendered("web", d.files).files);
    assert.ok(found[0]!.fix.endsWith(`\`/bin/bash /srv/ingress/incoming/${hash}/apply.sh --bundle /srv/ingress/incoming/${hash} --role web\``), found[0]!.fix);
    const calls = (await d.h.calls()).length;
    await runFix(d, found[0]!);
    assert.deepEqual((await d.h.calls()).slice(calls), ["daemon-reload", "restart nginx.service"]);
    assert.deepEqual(await findings(d), []);
  });

  test("a change the stack renders and the host has not received: differs, and pulumi up deploys it", async () => {
    const d = await webServer("pending");
    const next = webFiles(d.h, d.port, "v2");
    const found = driftFindings(rendered("web", next), await drift(d.h));
    assert.deepEqual(summary(found), ["differs /srv/ingress/current/nginx/sites/site.conf"]);
    assert.match(found[0]!.fix, /^pulumi up deploys it: the stack renders a change this host has not received/);

    // Changed on the host as well: a new bundle builds the release anew, which repairs both.
    await writeFile(join(d.h.root, "current", "acme", "domains"), "hand.example.com\n");
    const both = driftFindings(rendered("web", next), await drift(d.h));
    assert.deepEqual(summary(both), ["release-modified /srv/ingress/current", "differs /srv/ingress/current/acme/domains", "differs /srv/ingress/current/nginx/sites/site.conf"]);
    for (const f of both.slice(1)) assert.match(f.fix, /^pulumi up replaces the whole release/);
    const r = await d.h.applyBundle(next, "web");
    assert.equal(r.code, 0, output(r));
    assert.deepEqual(driftFindings(rendered("web", next), await drift(d.h)), []);
  });

  test("a daemon whose record names an older release is not live; reloading and recording it as the fix says settles it", async () => {
    const d = await webServer("stale-daemon");
    const r = await d.h.applyBundle(webFiles(d.h, d.port, "v2"), "web");
    assert.equal(r.code, 0, output(r));
    const live = { ...d, files: webFiles(d.h, d.port, "v2"), bundle: r.bundle };
    // As a run cut off between its swap and its reload leaves it.
    await writeFile(join(d.h.root, ".loaded", "nginx"), `${d.id}\n`);
    const found = await findings(live);
    assert.deepEqual(summary(found), ["daemon-not-live /srv/ingress/.loaded/nginx"]);
    assert.match(found[0]!.detail, new RegExp(`^nginx\\.service last loaded release ${d.id} \\(apply\\.sh's record\\); the live release is ${liveId(r)}`));
    const calls = (await d.h.calls()).length;
    await runFix(live, found[0]!);
    assert.deepEqual((await d.h.calls()).slice(calls), ["reload-or-restart nginx.service"]);
    assert.deepEqual(await findings(live), []);

    // No record at all (an apply.sh from before the records has not reloaded it since).
    await rm(join(d.h.root, ".loaded", "nginx"));
    assert.deepEqual(summary(await findings(live)), ["daemon-unrecorded /srv/ingress/.loaded/nginx"]);
  });

  test("on an LB, what apply.sh generates (routes.map, an attached stack's routes.d files, .release) is not extra; a hand edit of one is the release's finding", async () => {
    const port = nextPort++;
    const policy: RoutesPolicy = {
      owner: "prod",
      engine: "haproxy",
      healthCheck: { interval: 1000, timeout: 1000, fall: 2, rise: 1 },
      timeouts: { connect: 2000, client: 5000, server: 5000, tunnel: 60000, inspect: 5000 },
      reserved: { hostnames: ["app.example.test"], backends: ["prod_b0"] },
      stacks: [{ stack: "demo", network: "172.20.0.0/16", zones: ["demo.example.test"] }],
    };
    const h = await ApplyHost.create(lab, "lb", (r) => [
      { name: "haproxy", signal: "USR2", start: ["/usr/sbin/haproxy", "-W", "-db", "-f", `${r.root}/current/haproxy/haproxy.cfg`, "-f", `${r.root}/current/haproxy/routes.d`] },
    ]);
    const files = haproxyBundle({ root: h.root, stack: "prod", port, tlsPort: port + 1000, policy, version: "v1", routes: { "app.example.test": "prod-app" } });
    const first = await h.applyBundle(files, "ingress");
    assert.equal(first.code, 0, output(first));
    const pushed = await h.pushRoutes("demo", routesData("demo", ["demo.example.test"], "172.20.0.2", 9443), join(h.root, "current", "apply.sh"));
    assert.equal(pushed.code, 0, output(pushed));
    await waitForBody(lab, port, "v1", "/version");
    const d = { h, files };
    const out = await drift(h);
    for (const generated of ["haproxy/routes.map", "haproxy/routes.d/demo.cfg", "haproxy/routes.d/demo.map", ".release"]) {
      assert.match(out, new RegExp(`^file\tsrv/ingress/current/${generated.replace(/\./g, "\\.")}\t`, "m"), generated);
    }
    assert.deepEqual(driftFindings(rendered("lb", files), out), []);

    const map = join(h.root, "current", "haproxy", "routes.map");
    await writeFile(map, `${await readFile(map, "utf8")}evil.example.test prod_b0\n`);
    const found = await findings(d, "lb");
    assert.deepEqual(summary(found), ["release-modified /srv/ingress/current"]);
    assert.match(found[0]!.fix, /one apply\.sh generates \(haproxy\/routes\.map, haproxy\/routes\.d\/demo\.(cfg|map), haproxy\/routes\.d\/demo\.(cfg|map)\) was changed on the host/);
    // As the fix says: the same bundle again builds the release again, and routes.map afresh.
    const again = await h.applyBundle(files, "ingress");
    assert.match(again.stdout, /was changed on this host since it was built: building it again from the bundle/);
    assert.doesNotMatch(await readFile(map, "utf8"), /evil\.example\.test/);
    assert.deepEqual(await findings(d, "lb"), []);
  });
});
