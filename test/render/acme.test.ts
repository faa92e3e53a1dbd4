// tls.source "acme": the stack config's rules, the web server's plan (a lego job, its timer,
// its script, certificates read through links that start on self-signed stand-ins), and the
// rendered script run for real with Debian's lego against an ACME server that does not answer:
// the failure is logged, backs off, and is retried only when its time has come.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readStackConfig, stackFile } from "../../scripts/stack-files";
import { ConfigValidationError, planStack, validateStackConfig, type HostPlan } from "../../topology";
import { renderApplyPlan } from "../../render/apply-plan";
import { renderHostCerts } from "../../render/host-certs";
import { renderQuadletUnit } from "../../render/quadlet";
import { renderAcmeScript, renderAcmeTimer, ACME_BACKOFF, ACME_FIRST_RETRY_S } from "../../render/acme";
import { renderStack } from "../../render/stack";
import { requiredSecretKeys } from "../../components/deploy/secret-plan";

type Raw = Record<string, unknown> & { sites: Array<Record<string, unknown>> };

/** The shipped demo stack with its sites' certificates from ACME, with these acme settings (none: without). */
function demoRaw(acme: Record<string, unknown> | undefined, challenge?: "http-01" | "dns-01"): Raw {
  const raw = structuredClone(readStackConfig(stackFile("demo"))) as Raw;
  raw.sites = raw.sites.map((s) => ({ ...s, tls: challenge ? { source: "acme", challenge } : { source: "acme" } }));
  if (acme) raw.acme = acme;
  else delete raw.acme;
  return raw;
}

function issuesOf(raw: unknown): string[] {
  try {
    validateStackConfig("demo", raw);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

function webHost(raw: Raw): HostPlan {
  const host = planStack(validateStackConfig("demo", raw)).hosts.find((h) => h.role === "web");
  assert.ok(host);
  return host;
}

test("a site with tls.source acme needs the stack's acme settings, and dns-01 a token; bad values name their field", () => {
  assert.match(issuesOf(demoRaw(undefined)).join("\n"), /sites\[0\]\.tls: tls\.source is "acme" but the stack has no acme settings; add acme: \{ email/);
  assert.match(issuesOf(demoRaw({ email: "ops@example.com" }, "dns-01")).join("\n"), /sites\[0\]\.tls\.challenge: dns-01 needs a Hetzner DNS token; set acme\.dnsTokenSecret/);
  assert.match(issuesOf(demoRaw({ email: "ops at example.com" })).join("\n"), /acme\.email: must be an e-mail address/);
  assert.match(issuesOf(demoRaw({ email: "ops@example.com", directory: "http://ca.example/dir" })).join("\n"), /acme\.directory: "letsencrypt" \(the default\), "letsencrypt-staging"/);
  assert.match(issuesOf(demoRaw({ email: "ops@example.com", keyType: "rsa1024" })).join("\n"), /acme\.keyType/);
  assert.match(issuesOf(demoRaw({ email: "ops@example.com", caCertificate: "not a pem" })).join("\n"), /acme\.caCertificate: must be one or more PEM certificates/);
  assert.match(issuesOf(demoRaw({ email: "ops@example.com", dnsTokenSecret: "hcloud:token" }, "dns-01")).join("\n"), /acme\.dnsTokenSecret: this is the token that runs the stack/);
  assert.deepEqual(issuesOf(demoRaw({ email: "ops@example.com" })), []);
});

test("an ACME web server runs lego as a oneshot job with a timer; nginx reads its certificates through links that start on stand-ins", () => {
  const host = webHost(demoRaw({ email: "ops@example.com" }));
  const acme = host.containers.find((c) => c.name === "acme");
  assert.ok(acme, "the web server has an acme job");
  assert.match(acme.image, /^docker\.io\/goacme\/lego:v4\.[0-9.]+@sha256:[0-9a-f]{64}$/);
  assert.deepEqual(acme.job, { timer: "acme" });
  assert.equal(acme.entrypoint, "/bin/sh");
  assert.deepEqual(acme.command, ["/srv/ingress/current/acme/renew.sh"]);
  assert.deepEqual(
    acme.mounts.map((m) => `${m.host}${m.writable ? ":rw" : ":ro"}`),
    ["/srv/ingress:ro", "/var/lib/ingress-acme:rw", "/var/www/acme:rw"],
  );
  assert.equal(acme.envFile, undefined, "no EAB and no dns-01: no secret env file");

  // Per site: lego's own directory, its file names, and a self-signed stand-in with the same names.
  for (const s of host.web!.sites) {
    const h = s.site.hostname;
    assert.equal(s.certDelivery, "acme");
    assert.deepEqual(s.hostCert, {
      link: `/srv/ingress/secrets/tls/live/${h}`,
      real: `/var/lib/ingress-acme/${h}/certificates`,
      standin: `/srv/ingress/secrets/tls/standin/${h}`,
      certFile: `${h}.crt`,
      keyFile: `${h}.key`,
      attempts: `/var/lib/ingress-acme/${h}/attempts`,
    });
    assert.equal(s.cert, `/srv/ingress/secrets/tls/live/${h}/${h}.crt`);
    assert.ok(host.secretFiles.some((f) => f.path === `/srv/ingress/secrets/tls/standin/${h}/${h}.key` && f.from.kind === "tls-key"));
  }
  // nginx reads apply.sh's checked copies under /srv/ingress, never lego's own files (nor its account keys).
  assert.deepEqual(host.containers.find((c) => c.name === "nginx")!.mounts.map((m) => m.host), ["/srv/ingress", "/var/www/acme"]);
  assert.match(renderHostCerts(host), /^\/srv\/ingress\/secrets\/tls\/live\/demo\.fiscalismia\.com \/var\/lib\/ingress-acme\/demo\.fiscalismia\.com\/certificates \/srv\/ingress\/secrets\/tls\/standin\/demo\.fiscalismia\.com demo\.fiscalismia\.com\.crt demo\.fiscalismia\.com\.key \/var\/lib\/ingress-acme\/demo\.fiscalismia\.com\/attempts$/m);

  const files = renderStack(planStack(validateStackConfig("demo", demoRaw({ email: "ops@example.com" })))).find((r) => r.host === host.name)!.files;
  const byPath = new Map(files.map((f) => [f.path, f]));
  assert.equal(byPath.get("/srv/ingress/current/acme/renew.sh")?.mode, 0o755);
  assert.ok(byPath.has("/etc/systemd/system/acme.timer"));
  assert.ok(byPath.has("/etc/containers/systemd/acme.container"));
  assert.ok(!byPath.has("/srv/ingress/current/acme/ca.pem"), "no private CA configured: no CA bundle");
});

test("the acme unit is a Quadlet oneshot: no restart, no [Install], nginx switched by apply.sh after every run", () => {
  const host = webHost(demoRaw({ email: "ops@example.com" }));
  const unit = renderQuadletUnit(host, "acme");
  assert.match(unit, /^\[Service\]\n(#.*\n)*Type=oneshot\n/m);
  // apply.sh only when renew.sh left word that a certificate changed, and the word stays until apply.sh took it.
  assert.match(unit, /^ExecStopPost=-\/bin\/sh -c "test ! -e \/var\/lib\/ingress-acme\/\.switch-certs \|\| \{ \/bin\/bash \/srv\/ingress\/current\/apply\.sh --switch-certs && rm -f \/var\/lib\/ingress-acme\/\.switch-certs; \}"$/m);
  // A deploy holding the lock is not waited on for minutes (the next run catches up).
  assert.match(unit, /^Environment=INGRESS_LOCK_TIMEOUT=10$/m);
  assert.doesNotMatch(unit, /^Restart=|^ExecReload=|^\[Install\]|^AddCapability=/m);
  assert.match(unit, /^DropCapability=ALL$/m);
  assert.match(unit, /^Volume=\/var\/lib\/ingress-acme:\/var\/lib\/ingress-acme$/m);
  assert.match(unit, /^Volume=\/srv\/ingress:\/srv\/ingress:ro$/m);
  // lego never sees the host's secrets: an empty tmpfs over them (podman reads the env file itself).
  assert.match(unit, /^PodmanArgs=--entrypoint=\/bin\/sh --tmpfs=\/srv\/ingress\/secrets:ro,nosuid,nodev,noexec,mode=0700 --log-driver=journald$/m);
  assert.match(unit, /^Exec=\/srv\/ingress\/current\/acme\/renew\.sh$/m);
  assert.match(unit, /^After=network-online\.target ingress-firewall\.service nginx\.service$/m);

  const plan = renderApplyPlan(host).split("\n");
  assert.ok(plan.includes("job\tacme\tacme"), "apply.sh treats it as a job");
  assert.ok(plan.includes("timer\tacme"));
  assert.ok(!plan.some((l) => /^unit\tacme\t/.test(l)));
  const check = plan.find((l) => l.startsWith("check\tacme\t"))!.split("\t");
  assert.deepEqual(check.slice(-5), ["--entrypoint", "/bin/sh", host.containers.find((c) => c.name === "acme")!.image, "-n", "{dir}/acme/renew.sh"]);
  assert.ok(!plan.some((l) => /^probe\t.*\tacme\t/.test(l)), "a job listens nowhere");

  const timer = renderAcmeTimer(host);
  assert.match(timer, /^OnCalendar=\*:0\/15$/m);
  assert.match(timer, /^Persistent=true$/m);
  assert.match(timer, /^WantedBy=timers\.target$/m);
});

test("EAB and dns-01 credentials reach lego only through a secret env file; a private CA's root rides in the release", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2xk\n-----END CERTIFICATE-----\n";
  const raw = demoRaw({ email: "ops@example.com", eab: { kid: "kid-1", hmacSecret: "acmeEabHmac" }, dnsTokenSecret: "hetznerDnsToken", caCertificate: pem }, "dns-01");
  const host = webHost(raw);
  const env = host.secretFiles.find((f) => f.path === "/srv/ingress/secrets/acme.env");
  assert.deepEqual(env?.from, {
    kind: "acme-env",
    // Only the secrets: the key id is no secret, and a value such as "true" would be masked in every log.
    vars: [
      { name: "LEGO_EAB_HMAC", secretKey: "acmeEabHmac" },
      { name: "HETZNER_API_TOKEN", secretKey: "hetznerDnsToken" },
    ],
  });
  assert.equal(host.containers.find((c) => c.name === "acme")!.envFile, "/srv/ingress/secrets/acme.env");
  assert.deepEqual(requiredSecretKeys(planStack(validateStackConfig("demo", raw))), ["acmeEabHmac", "hetznerDnsToken"]);
  const script = renderAcmeScript(host);
  assert.match(script, /^certificate 'demo\.fiscalismia\.com' dns-01 '\/var\/lib\/ingress-acme\/demo\.fiscalismia\.com' --dns hetzner \|\| failed=/m);
  assert.match(script, /^export LEGO_CA_CERTIFICATES='\/srv\/ingress\/current\/acme\/ca\.pem'$/m);
  assert.doesNotMatch(script, /acmeEabHmac|hetznerDnsToken/, "no credential is written into the script");
  assert.match(script, /"\$LEGO" --accept-tos --server "\$SERVER" --email "\$EMAIL" --key-type "\$KEY_TYPE" --eab --kid 'kid-1' --path/);
  const files = renderStack(planStack(validateStackConfig("demo", raw))).find((r) => r.host === host.name)!.files;
  assert.equal(files.find((f) => f.path === "/srv/ingress/current/acme/ca.pem")?.content, pem);
});

test("renew.sh, run with Debian's lego against an ACME server that refuses: logged, backed off, retried only when due", { skip: spawnSync("lego", ["--version"]).status !== 0 && "lego is not installed" }, () => {
  const work = mkdtempSync(join(tmpdir(), "acme-script-"));
  try {
    const host = webHost(demoRaw({ email: "ops@example.com", directory: "https://127.0.0.1:9/directory" }));
    // The rendered script with its directories moved into this test's dir (the schema's paths are absolute).
    const rendered = renderAcmeScript(host);
    assert.ok(rendered.includes(`\nFIRST_RETRY=${ACME_FIRST_RETRY_S}\n`));
    // Its directories moved into this test's dir, and the first name's second try after 1 s, not a minute.
    const script = rendered.replaceAll("/var/lib/ingress-acme", join(work, "state")).replaceAll("/var/www/acme", join(work, "webroot")).replace(`\nFIRST_RETRY=${ACME_FIRST_RETRY_S}\n`, "\nFIRST_RETRY=1\n");
    writeFileSync(join(work, "renew.sh"), script, { mode: 0o755 });
    assert.equal(spawnSync("sh", ["-n", join(work, "renew.sh")]).status, 0);
    const runOnce = () => spawnSync("sh", [join(work, "renew.sh")], { encoding: "utf8", timeout: 60_000 });

    const first = runOnce();
    assert.equal(first.status, 1, first.stdout + first.stderr);
    for (const h of ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"]) {
      const name = h.replaceAll(".", "\\.");
      // A name's very first run tries twice; every try is a line.
      assert.match(first.stdout, new RegExp(`acme: ${name}: first certificate \\(run 1, try 1, http-01\\) from https://127\\.0\\.0\\.1:9/directory`));
      assert.match(first.stdout, new RegExp(`acme: ${name}: try 1 failed \\(lego exited [1-9][0-9]*\\); trying once more in 1 s`));
      assert.match(first.stdout, new RegExp(`acme: ${name}: first certificate \\(run 1, try 2, http-01\\)`));
      assert.match(first.stdout, new RegExp(`acme: ${name}: FAILED \\(lego exited [1-9][0-9]*, run 1\\); the certificate in use stays; next attempt at \\d{4}-`));
      const [failures, next] = readFileSync(join(work, "state", h, "attempts"), "utf8").trim().split(" ").map(Number);
      assert.equal(failures, 1);
      const now = Math.floor(Date.now() / 1000);
      assert.ok(next! > now + ACME_BACKOFF.first.start - 120 && next! <= now + ACME_BACKOFF.first.start, `a first certificate retries in 15 min: ${next! - now} s`);
    }
    assert.match(first.stdout, /acme: 2 of 2 certificate\(s\) failed this run/);
    // A failure leaves word for ExecStopPost (apply.sh puts it in the health check's ACME header),
    // which takes the word away; a run that only waits leaves none.
    const marker = join(work, "state", ".switch-certs");
    assert.ok(existsSync(marker), "a failed run leaves the marker");
    rmSync(marker);

    // The timer fires again within the hour: nothing is asked of the CA, the wait is said.
    const second = runOnce();
    assert.equal(second.status, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /acme: demo\.fiscalismia\.com: backing off after 1 failed run\(s\); next attempt at /);
    assert.doesNotMatch(second.stdout + second.stderr, /first certificate|lego|\[ERROR\]/i);
    assert.ok(!existsSync(marker), "a run that asked nothing leaves no marker");

    // Its time has come: run 2 tries once, fails too and waits twice as long. A damaged record counts as none.
    // The record names the settings it failed with; the same settings keep counting.
    const due = join(work, "state", "demo.fiscalismia.com", "attempts");
    const [, , settings] = readFileSync(due, "utf8").trim().split(" ");
    assert.equal(settings, "https://127.0.0.1:9/directory,ops@example.com,ec256,http-01");
    writeFileSync(due, `1 0 ${settings}\n`);
    writeFileSync(join(work, "state", "backend.demo.fiscalismia.com", "attempts"), "garbage here\n");
    const third = runOnce();
    assert.equal(third.status, 1);
    assert.match(third.stdout, /demo\.fiscalismia\.com: FAILED \(lego exited \d+, run 2\)/);
    assert.doesNotMatch(third.stdout, /demo\.fiscalismia\.com: first certificate \(run 2, try 2/);
    assert.match(third.stdout, /backend\.demo\.fiscalismia\.com: first certificate \(run 1, try 1, http-01\)/);
    const [, next2] = readFileSync(due, "utf8").trim().split(" ").map(Number);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(next2! > now + 2 * ACME_BACKOFF.first.start - 120 && next2! <= now + 2 * ACME_BACKOFF.first.start, `run 2 backs off twice as long: ${next2! - now} s`);

    // New settings (a deploy that fixed the directory, say) are tried at once, whatever the backoff
    // of the old ones; a count sh arithmetic would misread (08) is a damaged record, not a crash.
    writeFileSync(due, `3 ${now + 86_400} https://old.example/directory,ops@example.com,ec256,http-01\n`);
    writeFileSync(join(work, "state", "backend.demo.fiscalismia.com", "attempts"), `08 ${now + 86_400} ${settings}\n`);
    const fourth = runOnce();
    assert.equal(fourth.status, 1, fourth.stdout + fourth.stderr);
    assert.match(fourth.stdout, /demo\.fiscalismia\.com: first certificate \(run 1, try 1, http-01\)/);
    assert.match(fourth.stdout, /backend\.demo\.fiscalismia\.com: first certificate \(run 1, try 1, http-01\)/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
