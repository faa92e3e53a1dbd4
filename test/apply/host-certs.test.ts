// A fresh web server of the shipped demo stack with its certificates kept by certbot
// (tls.source host, as before the shipped stacks moved to ACME), before any exists: the program's
// own bundle and secrets command go on, apply.sh brings nginx up on the self-signed stand-ins,
// and when certbot's certificate appears, `apply.sh --switch-certs` (certbot's deploy hook)
// moves that site to it with a reload, no redeploy. Real nginx, real apply.sh, in a network
// namespace and a private mount namespace whose /srv/ingress and /etc/letsencrypt are this
// test's directories; systemd, which does not run here, is the one stand-in.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import { demoWithCertbotPlan, examplePlan } from "../render/validators/plans";
import { writeHostBundle } from "../../components/program/bundle-dir";
import { renderHostBundles } from "../../components/deploy/host-bundles";
import { secretPayload, secretsChangedCommand, writeSecretsCommand } from "../../components/deploy/deploy-commands";
import { ensureMountPoints, releaseMountPoints } from "./support/mount-points";
import { systemctlStandin, unitConf } from "./support/systemctl-standin";

const APPLY_SH = readFileSync(join(REPO_ROOT, "files", "apply.sh"), "utf8");
const demo = demoWithCertbotPlan();
const isRoot = process.getuid?.() === 0;
const SITES = ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"] as const;
const PORT_OF: Record<(typeof SITES)[number], number> = { "demo.fiscalismia.com": 443, "backend.demo.fiscalismia.com": 8443 };

/** A self-signed certificate for `hostname`; `weak`: an RSA key below what nginx's OpenSSL accepts (security level 2). */
function certificate(dir: string, cn: string, hostname: string, weak = false): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const key = weak ? ["-newkey", "rsa:1024"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  const r = spawnSync("openssl", [
    "req", "-x509", ...key, "-nodes", "-days", "2",
    "-subj", `/CN=${cn}`, "-addext", `subjectAltName=DNS:${hostname}`, "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
}

/** The health location's x-ingress-* headers, as the LB's check reads them (PROXY header, TLS with SNI). */
function healthHeaders(ns: string, hostname: string, port: number) {
  const r = spawnSync("ip", ["netns", "exec", ns, "curl", "-sk", "-D", "-", "-o", "/dev/null", "--haproxy-protocol", "--max-time", "5", "--resolve", `${hostname}:${port}:127.0.0.1`, `https://${hostname}:${port}/healthz`], { encoding: "utf8" });
  const value = (name: string) => new RegExp(`^${name}: (.*)\r$`, "mi").exec(r.stdout)?.[1];
  return { certificate: value("x-ingress-certificate"), expires: value("x-ingress-certificate-expires"), acme: value("x-ingress-acme") };
}

/**
 * A web server of this test's own: a network namespace, and a private mount namespace per
 * command whose /srv/ingress, /etc/letsencrypt, /var/www/acme, /var/lib/ingress-acme and
 * /etc/containers/systemd are this test's directories, with nginx run by the systemctl stand-in.
 */
function webServer(t: TestContext, tag: string) {
  const ns = `ingsb-${process.pid.toString(36)}-c3rt-${tag}`;
  // Not under /tmp: the host's processes get a private /tmp (nginx keeps its pid file there),
  // which would hide a work dir below it.
  const work = mkdtempSync(join("/var/tmp", `host-certs-${tag}-`));
  const srv = join(work, "srv-ingress");
  const le = join(work, "letsencrypt");
  const state = join(work, "systemd");
  for (const d of [srv, le, join(state, "units"), join(work, "quadlet"), join(work, "acme"), join(work, "acme-state"), join(work, "tmp")]) mkdirSync(d, { recursive: true });
  ensureMountPoints(["/srv/ingress", "/etc/letsencrypt", "/var/www/acme", "/var/lib/ingress-acme", "/etc/containers/systemd"]);
  assert.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
  t.after(() => {
    spawnSync("bash", ["-c", `kill -TERM $(cat ${state}/nginx.pid 2>/dev/null) 2>/dev/null; for i in $(seq 50); do kill -0 $(cat ${state}/nginx.pid) 2>/dev/null || break; sleep 0.1; done`]);
    spawnSync("ip", ["netns", "del", ns]);
    rmSync(work, { recursive: true, force: true });
    releaseMountPoints();
  });
  spawnSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);

  // Everything runs as it would on the host: /srv/ingress and /etc/letsencrypt are the host's.
  const inHost = (script: string, input?: string) => {
    const wrapped = `mount --bind ${srv} /srv/ingress && mount --bind ${le} /etc/letsencrypt && mount --bind ${work}/acme /var/www/acme && mount --bind ${work}/acme-state /var/lib/ingress-acme && mount --bind ${work}/quadlet /etc/containers/systemd && mount --bind ${work}/tmp /tmp && ${script}`;
    const r = spawnSync("ip", ["netns", "exec", ns, "unshare", "-m", "--propagation", "private", "bash", "-c", wrapped], {
      encoding: "utf8",
      env: {
        ...process.env,
        SYSTEMCTL: join(state, "systemctl"),
        QUADLET_DIR: join(work, "quadlet"),
        // This host's timers (none in this stack) never go into this machine's systemd.
        SYSTEMD_UNIT_DIR: join(work, "systemd"),
        INGRESS_NFT: "true",
        INGRESS_VALIDATE_NGINX: "nginx -t -q -c {dir}/nginx/nginx.conf",
        INGRESS_VALIDATE_ACME: "sh -n {dir}/acme/renew.sh",
        INGRESS_PROBE_TIMEOUT: "10",
      },
      ...(input === undefined ? {} : { input }),
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  writeFileSync(join(state, "systemctl"), systemctlStandin(state), { mode: 0o755 });
  writeFileSync(join(state, "units", "nginx.conf"), unitConf({ name: "nginx", signal: "HUP", start: ["/usr/sbin/nginx", "-c", "/srv/ingress/current/nginx/nginx.conf", "-g", "daemon off;"] }));

  const calls = () => readFileSync(join(state, "calls.log"), "utf8").trimEnd().split("\n");
  return { ns, work, srv, le, inHost, calls };
}

test("a fresh server deploys on self-signed stand-ins and switches to certbot's certificate by reload", { skip: !isRoot && "needs root for namespaces" }, async (t) => {
  const { ns, work, srv, le, inHost, calls } = webServer(t, "hostcerts");
  // What the deploy's -secrets step writes: the stand-ins (Pulumi's tls provider makes them; openssl here).
  const host = demo.hosts.find((h) => h.name === "demo")!;
  const files = SITES.flatMap((h) => {
    const pem = certificate(join(work, "standin", h), `stand-in ${h}`, h);
    return [
      { path: `/srv/ingress/secrets/tls/standin/${h}/fullchain.pem`, content: pem.cert },
      { path: `/srv/ingress/secrets/tls/standin/${h}/privkey.pem`, content: pem.key },
    ];
  });
  assert.deepEqual(files.map((f) => f.path).sort(), host.secretFiles.map((f) => f.path).sort(), "the plan's secret files are the stand-ins");
  const secrets = inHost(writeSecretsCommand(), secretPayload(files));
  assert.equal(secrets.status, 0, secrets.out);

  // The -bundle and -apply steps: the rendered bundle of the shipped stack, as uploaded.
  const rendered = renderHostBundles(demo, APPLY_SH).find((r) => r.host === "demo")!;
  const bundle = writeHostBundle(join(work, "local"), "demo", rendered);
  cpSync(bundle.localDir, join(srv, "incoming", bundle.hash), { recursive: true });
  const dir = `/srv/ingress/incoming/${bundle.hash}`;
  const applied = inHost(`/bin/bash ${dir}/apply.sh --bundle ${dir} --role web`);
  assert.equal(applied.status, 0, applied.out);
  for (const h of SITES) {
    assert.match(applied.out, new RegExp(`certificate /srv/ingress/secrets/tls/live/${h.replace(/\./g, "\\.")} -> self-signed stand-in`));
    assert.equal(readlinkSync(join(srv, "secrets", "tls", "live", h)), `/srv/ingress/secrets/tls/standin/${h}`);
  }

  const issuer = (h: (typeof SITES)[number]) => {
    const r = spawnSync("ip", ["netns", "exec", ns, "curl", "-skv", "--haproxy-protocol", "--max-time", "5", "--resolve", `${h}:${PORT_OF[h]}:127.0.0.1`, `https://${h}:${PORT_OF[h]}/healthz`], { encoding: "utf8" });
    return /issuer: CN=([^\n;]+)/.exec(r.stderr)?.[1]?.trim();
  };
  const waitForIssuer = async (h: (typeof SITES)[number], want: string) => {
    const deadline = Date.now() + 15_000;
    let got: string | undefined;
    while (Date.now() < deadline) {
      got = issuer(h);
      if (got === want) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got, want, `${h}: certificate issuer`);
  };
  for (const h of SITES) await waitForIssuer(h, `stand-in ${h}`);

  // The health check's headers (what both LB engines show on their stats page) name the
  // certificate being served: written beside it by apply.sh, read by nginx at the same reload.
  const health = (h: (typeof SITES)[number]) => healthHeaders(ns, h, PORT_OF[h]);
  for (const h of SITES) {
    const got = health(h);
    const left = Number(got.expires) - Date.now() / 1000;
    assert.ok(left > 86_400 && left <= 2 * 86_400, `${h}: the stand-in (2 days) expires in ${left} s`);
    assert.equal(got.certificate, `issuer stand-in ${h} (self-signed); names ${h}`);
    assert.equal(got.acme, "not used (tls.source host)");
  }

  // Nothing appeared yet: the hook changes nothing and reloads nothing.
  const before = calls().length;
  const idle = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(idle.status, 0, idle.out);
  assert.match(idle.out, /unchanged: every certificate link already points where it should, and nginx has loaded them/);
  assert.equal(calls().length, before);

  // certbot issues demo.fiscalismia.com (its layout: live/ links into archive/) and runs the hook.
  const real = certificate(join(work, "real"), "certbot demo", "demo.fiscalismia.com");
  mkdirSync(join(le, "archive", "demo.fiscalismia.com"), { recursive: true });
  mkdirSync(join(le, "live", "demo.fiscalismia.com"), { recursive: true });
  writeFileSync(join(le, "archive", "demo.fiscalismia.com", "fullchain1.pem"), real.cert);
  writeFileSync(join(le, "archive", "demo.fiscalismia.com", "privkey1.pem"), real.key, { mode: 0o600 });
  symlinkSync("../../archive/demo.fiscalismia.com/fullchain1.pem", join(le, "live", "demo.fiscalismia.com", "fullchain.pem"));
  symlinkSync("../../archive/demo.fiscalismia.com/privkey1.pem", join(le, "live", "demo.fiscalismia.com", "privkey.pem"));
  const switched = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(switched.status, 0, switched.out);
  assert.match(switched.out, /certificate \/srv\/ingress\/secrets\/tls\/live\/demo\.fiscalismia\.com -> \/etc\/letsencrypt\/live\/demo\.fiscalismia\.com/);
  assert.deepEqual(calls().slice(before), ["reload nginx.service"], "a reload, not a restart or a redeploy");
  await waitForIssuer("demo.fiscalismia.com", "certbot demo");
  assert.equal(issuer("backend.demo.fiscalismia.com"), "stand-in backend.demo.fiscalismia.com", "the other site keeps its stand-in");
  assert.equal(health("demo.fiscalismia.com").certificate, "issuer certbot demo (self-signed); names demo.fiscalismia.com");

  // certbot renews it: new files in archive/, the same live/ directory. The hook makes a new
  // checked copy, moves the link to it and reloads nginx, or nginx would serve the old one.
  const renewed = certificate(join(work, "renewed"), "certbot demo renewed", "demo.fiscalismia.com");
  writeFileSync(join(le, "archive", "demo.fiscalismia.com", "fullchain2.pem"), renewed.cert);
  writeFileSync(join(le, "archive", "demo.fiscalismia.com", "privkey2.pem"), renewed.key, { mode: 0o600 });
  for (const f of ["fullchain", "privkey"]) {
    rmSync(join(le, "live", "demo.fiscalismia.com", `${f}.pem`));
    symlinkSync(`../../archive/demo.fiscalismia.com/${f}2.pem`, join(le, "live", "demo.fiscalismia.com", `${f}.pem`));
  }
  const m = calls().length;
  const renewal = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(renewal.status, 0, renewal.out);
  assert.match(renewal.out, /certificate \/srv\/ingress\/secrets\/tls\/live\/demo\.fiscalismia\.com -> \/etc\/letsencrypt\/live\/demo\.fiscalismia\.com \(its checked copy secrets\/tls\/copies\/demo\.fiscalismia\.com\/[0-9a-f]{16}\)/);
  assert.deepEqual(calls().slice(m), ["reload nginx.service"]);
  await waitForIssuer("demo.fiscalismia.com", "certbot demo renewed");
  // And once loaded, the next run of the hook has nothing to do.
  const after = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.match(after.out, /unchanged: every certificate link already points where it should, and nginx has loaded them/);
  assert.equal(calls().length, m + 1);

  // Files that are no certificate and key pair are never taken: a warning, the link stays.
  mkdirSync(join(le, "live", "backend.demo.fiscalismia.com"), { recursive: true });
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "fullchain.pem"), "not a certificate\n");
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "privkey.pem"), "not a key\n");
  const n = calls().length;
  const garbage = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(garbage.status, 0, garbage.out);
  assert.match(garbage.out, /warning: certificate \/srv\/ingress\/secrets\/tls\/live\/backend\.demo\.fiscalismia\.com: .* is not the key of .*; it keeps what it has/);
  assert.equal(readlinkSync(join(srv, "secrets", "tls", "live", "backend.demo.fiscalismia.com")), "/srv/ingress/secrets/tls/standin/backend.demo.fiscalismia.com");
  assert.equal(calls().length, n, "no reload");

  // A pair nginx cannot load (a key too small for its OpenSSL) is not switched to: the link goes back, nginx keeps serving.
  const weak = certificate(join(work, "weak"), "certbot backend weak", "backend.demo.fiscalismia.com", true);
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "fullchain.pem"), weak.cert);
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "privkey.pem"), weak.key, { mode: 0o600 });
  const refused = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.notEqual(refused.status, 0, refused.out);
  assert.match(refused.out, /nginx rejected release/);
  assert.match(refused.out, /certificate links restored; nginx was not reloaded/);
  assert.equal(readlinkSync(join(srv, "secrets", "tls", "live", "backend.demo.fiscalismia.com")), "/srv/ingress/secrets/tls/standin/backend.demo.fiscalismia.com");
  assert.equal(calls().length, n, "no reload");
  assert.equal(issuer("backend.demo.fiscalismia.com"), "stand-in backend.demo.fiscalismia.com");
  assert.equal(issuer("demo.fiscalismia.com"), "certbot demo renewed");

  // certbot fixes it, but its hook never runs (it timed out on the lock, or certbot ran
  // without it). The next deploy, even of the same bundle, picks the certificate up.
  const fixed = certificate(join(work, "fixed"), "certbot backend", "backend.demo.fiscalismia.com");
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "fullchain.pem"), fixed.cert);
  writeFileSync(join(le, "live", "backend.demo.fiscalismia.com", "privkey.pem"), fixed.key, { mode: 0o600 });
  const k = calls().length;
  const redeployed = inHost(`/bin/bash ${dir}/apply.sh --bundle ${dir} --role web`);
  assert.equal(redeployed.status, 0, redeployed.out);
  assert.match(redeployed.out, /unchanged: release \S+ is live with the same content/);
  assert.match(redeployed.out, /certificate \/srv\/ingress\/secrets\/tls\/live\/backend\.demo\.fiscalismia\.com -> \/etc\/letsencrypt\/live\/backend\.demo\.fiscalismia\.com/);
  assert.deepEqual(calls().slice(k), ["reload nginx.service"]);
  await waitForIssuer("backend.demo.fiscalismia.com", "certbot backend");

  // The sites move to ACME (the shipped demo stack): lego has no certificate yet, and each site
  // keeps certbot's, copied under lego's file names, instead of falling back to the stand-in.
  const acme = planStack(loadTopology("demo"));
  const acmeHost = acme.hosts.find((h) => h.name === "demo")!;
  const acmeFiles = SITES.flatMap((h) => {
    const pem = certificate(join(work, "standin-acme", h), `stand-in ${h}`, h);
    return [
      { path: `/srv/ingress/secrets/tls/standin/${h}/${h}.crt`, content: pem.cert },
      { path: `/srv/ingress/secrets/tls/standin/${h}/${h}.key`, content: pem.key },
    ];
  });
  assert.deepEqual(acmeFiles.map((f) => f.path).sort(), acmeHost.secretFiles.map((f) => f.path).sort());
  assert.equal(inHost(writeSecretsCommand(), secretPayload(acmeFiles)).status, 0);
  const acmeRendered = renderHostBundles(acme, APPLY_SH).find((r) => r.host === "demo")!;
  const acmeBundle = writeHostBundle(join(work, "local"), "demo", acmeRendered);
  cpSync(acmeBundle.localDir, join(srv, "incoming", acmeBundle.hash), { recursive: true });
  const acmeDir = `/srv/ingress/incoming/${acmeBundle.hash}`;
  const moved = inHost(`/bin/bash ${acmeDir}/apply.sh --bundle ${acmeDir} --role web`);
  assert.equal(moved.status, 0, moved.out);
  for (const h of SITES) {
    const target = readlinkSync(join(srv, "secrets", "tls", "live", h));
    assert.match(target, new RegExp(`^/srv/ingress/secrets/tls/copies/${h.replace(/\./g, "\\.")}/[0-9a-f]{16}$`), `${h}: ${moved.out}`);
  }
  await waitForIssuer("demo.fiscalismia.com", "certbot demo renewed");
  await waitForIssuer("backend.demo.fiscalismia.com", "certbot backend");
  for (const h of SITES) assert.equal(health(h).acme, "no run yet", h);

  // The acme job fails for one site and leaves word (its ExecStopPost runs --switch-certs):
  // the failure reaches the health check, and so does the recovery. Only the two numbers of
  // the job's record are taken; the rest of its line never reaches nginx's config.
  const attempts = join(work, "acme-state", "demo.fiscalismia.com", "attempts");
  mkdirSync(join(work, "acme-state", "demo.fiscalismia.com"), { recursive: true });
  const next = Math.floor(Date.now() / 1000) + 3600;
  writeFileSync(attempts, `2 ${next} https://ca.example/dir,"x";}evil\n`);
  const j = calls().length;
  const failing = inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(failing.status, 0, failing.out);
  assert.deepEqual(calls().slice(j), ["reload nginx.service"], "the new ACME state is loaded by a reload");
  const waitForAcme = async (want: string) => {
    const deadline = Date.now() + 15_000;
    let got: string | undefined;
    while (Date.now() < deadline && (got = health("demo.fiscalismia.com").acme) !== want) await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, want);
  };
  await waitForAcme(`failing: 2 run(s), next ${new Date(next * 1000).toISOString().slice(0, 16)}Z`);
  assert.equal(health("backend.demo.fiscalismia.com").acme, "no run yet");
  writeFileSync(attempts, "0 1 settings\n");
  assert.equal(inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs").status, 0);
  await waitForAcme("ok");
  const idleAgain = calls().length;
  assert.match(inHost("/bin/bash /srv/ingress/current/apply.sh --switch-certs").out, /unchanged: every certificate link/);
  assert.equal(calls().length, idleAgain, "the same state again: no reload");

  // The job's directory is the job's: a FIFO or a link where its record should be is reported,
  // never opened (a read as root would hang on the one, or read whatever the other points at).
  rmSync(attempts);
  assert.equal(spawnSync("mkfifo", [attempts]).status, 0);
  const fifo = inHost("timeout 20 /bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(fifo.status, 0, fifo.out);
  await waitForAcme("unreadable attempts record (/var/lib/ingress-acme/demo.fiscalismia.com/attempts is not a plain file)");
  rmSync(attempts);
  symlinkSync("/dev/zero", attempts);
  const zero = inHost("timeout 20 /bin/bash /srv/ingress/current/apply.sh --switch-certs");
  assert.equal(zero.status, 0, zero.out);
  assert.match(zero.out, /unchanged: every certificate link/, "the same report as for the FIFO");
});

test("a certificate the deploy's secrets step replaces (tls.source self-signed or provided) reaches the health check", { skip: !isRoot && "needs root for namespaces" }, async (t) => {
  const { ns, work, srv, inHost, calls } = webServer(t, "rotate");
  const example = examplePlan();
  const host = example.hosts.find((h) => h.name === "web")!;
  const pair = (cn: string, days: number) => {
    const dir = mkdtempSync(join(work, "pair-"));
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", String(days), "-subj", `/CN=${cn}`, "-addext", "subjectAltName=DNS:demo.example.com", "-keyout", join(dir, "k"), "-out", join(dir, "c")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return { cert: readFileSync(join(dir, "c"), "utf8"), key: readFileSync(join(dir, "k"), "utf8") };
  };
  const other = pair("api", 700);
  const files = (first: { cert: string; key: string }) => [
    { path: "/srv/ingress/secrets/tls/port-443/fullchain.pem", content: first.cert },
    { path: "/srv/ingress/secrets/tls/port-443/privkey.pem", content: first.key },
    { path: "/srv/ingress/secrets/tls/port-8443/fullchain.pem", content: other.cert },
    { path: "/srv/ingress/secrets/tls/port-8443/privkey.pem", content: other.key },
  ];
  const first = pair("first", 20);
  assert.deepEqual(files(first).map((f) => f.path).sort(), host.secretFiles.map((f) => f.path).sort());
  assert.equal(inHost(writeSecretsCommand(), secretPayload(files(first))).status, 0);
  const rendered = renderHostBundles(example, APPLY_SH).find((r) => r.host === "web")!;
  const bundle = writeHostBundle(join(work, "local"), "web", rendered);
  cpSync(bundle.localDir, join(srv, "incoming", bundle.hash), { recursive: true });
  const dir = `/srv/ingress/incoming/${bundle.hash}`;
  const applied = inHost(`/bin/bash ${dir}/apply.sh --bundle ${dir} --role web`);
  assert.equal(applied.status, 0, applied.out);
  const said = async (want: string) => {
    const deadline = Date.now() + 15_000;
    let got: string | undefined;
    while (Date.now() < deadline && (got = healthHeaders(ns, "demo.example.com", 443).certificate) !== want) await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, want);
  };
  await said("issuer first (self-signed); names demo.example.com");
  assert.equal(healthHeaders(ns, "demo.example.com", 443).acme, "not used (tls.source self-signed)");

  // The tls provider replaces the certificate (in its last 30 days), or a new one is provided:
  // the secrets step's update writes it and runs secretsChangedCommand, and nothing else runs.
  const n = calls().length;
  const update = inHost(`${writeSecretsCommand()} && ${secretsChangedCommand(host)}`, secretPayload(files(pair("second", 700))));
  assert.equal(update.status, 0, update.out);
  assert.deepEqual(calls().slice(n), ["reload nginx.service"], update.out);
  await said("issuer second (self-signed); names demo.example.com");
  const left = Number(healthHeaders(ns, "demo.example.com", 443).expires) - Date.now() / 1000;
  assert.ok(left > 699 * 86_400, `the new certificate's expiry: ${left} s`);
});

