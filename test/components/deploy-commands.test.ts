// The commands Pulumi runs on hosts: exact text where apply.sh reads it, and the two shell
// scripts of our own run for real in a temp directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTopology } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import {
  applyCommand,
  incomingDir,
  pruneIncomingCommand,
  secretPayload,
  secretsChangedCommand,
  hostKeyFromBootOutput,
  waitForBootCommand,
  writeSecretsCommand,
} from "../../components/deploy/deploy-commands";

const HASH = "0123456789abcdef".repeat(4);

test("apply.sh is called exactly as its CLI reads (docs/apply.md)", () => {
  assert.equal(
    applyCommand({ kind: "bundle", hash: HASH, role: "ingress" }),
    `/bin/bash /srv/ingress/incoming/${HASH}/apply.sh --bundle /srv/ingress/incoming/${HASH} --role ingress`,
  );
  assert.equal(applyCommand({ kind: "bundle", hash: HASH, role: "web" }), `/bin/bash /srv/ingress/incoming/${HASH}/apply.sh --bundle /srv/ingress/incoming/${HASH} --role web`);
  assert.equal(applyCommand({ kind: "routes", stack: "demo" }), "/bin/bash /srv/ingress/current/apply.sh --routes - --stack demo");
  assert.equal(applyCommand({ kind: "remove-routes", stack: "demo" }), "/bin/bash /srv/ingress/current/apply.sh --remove-routes demo");
});

test("nothing that is not a hash or a stack name reaches a command line", () => {
  assert.throws(() => incomingDir("../../etc"), /not lowercase hex/);
  assert.throws(() => applyCommand({ kind: "bundle", hash: "abc; rm -rf /", role: "web" }), /not lowercase hex/);
  assert.throws(() => applyCommand({ kind: "remove-routes", stack: "demo; reboot" }), /cannot be passed to apply.sh/);
  assert.throws(() => pruneIncomingCommand("*"), /not lowercase hex/);
});

test("changed secrets restart what reads an env file; nginx is moved to new certificates by apply.sh --switch-certs", () => {
  const prod = planStack(loadTopology("prod"));
  const lb = prod.hosts.find((h) => h.role === "ingress")!;
  const web = prod.hosts.find((h) => h.role === "web")!;
  assert.equal(secretsChangedCommand(lb), "{ test ! -e /etc/containers/systemd/haproxy.container || systemctl try-restart haproxy.service; }");
  assert.equal(
    secretsChangedCommand(web),
    "{ test ! -e /etc/containers/systemd/nginx.container || if test -e /srv/ingress/current/apply.sh; then /bin/bash /srv/ingress/current/apply.sh --switch-certs; else systemctl try-reload-or-restart nginx.service; fi; }",
  );
});

function bash(command: string, env: Record<string, string> = {}, input?: string) {
  return spawnSync("/bin/sh", ["-c", command], { input, encoding: "utf8", env: { ...process.env, ...env } });
}

test("the secrets writer puts each file under the root with mode 0600 and refuses anything outside it", (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "secrets-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const root = join(tmp, "secrets");
  const pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
  const files = [
    { path: `${root}/stats.env`, content: "STATS_USER=admin\nSTATS_PASSWORD=p'w \"$(x)\n" },
    { path: `${root}/tls/port-443/privkey.pem`, content: pem },
  ];
  const run = bash(writeSecretsCommand(root), {}, secretPayload(files, root));
  assert.equal(run.status, 0, run.stderr);
  for (const f of files) {
    assert.equal(readFileSync(f.path, "utf8"), f.content);
    assert.equal(statSync(f.path).mode & 0o777, 0o600, f.path);
  }
  assert.equal(statSync(root).mode & 0o777, 0o700);
  assert.equal(statSync(`${root}/tls/port-443`).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(`${root}/tls/port-443`), ["privkey.pem"], "no temp file left behind");

  // Rewriting replaces the content.
  const again = bash(writeSecretsCommand(root), {}, secretPayload([{ path: `${root}/stats.env`, content: "new\n" }], root));
  assert.equal(again.status, 0, again.stderr);
  assert.equal(readFileSync(`${root}/stats.env`, "utf8"), "new\n");

  // A payload forged past secretPayload's checks is refused by the script itself.
  const forged = bash(writeSecretsCommand(root), {}, `/etc/evil\t${Buffer.from("x").toString("base64")}\n`);
  assert.notEqual(forged.status, 0);
  assert.match(forged.stderr, /refusing \/etc\/evil: not under/);
  assert.throws(() => secretPayload([{ path: "/etc/passwd", content: "x" }], root), /must be a plain path under/);
  assert.throws(() => secretPayload([{ path: `${root}/../x`, content: "x" }], root), /must be a plain path under/);
});

test("the boot wait accepts cloud-init's 'done' and 'recoverable errors', and stops on a failed boot", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "boot-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fake = join(dir, "bin");
  spawnSync("mkdir", [fake]);
  const cloudInit = join(fake, "cloud-init");
  const hostKey = join(dir, "ssh_host_ed25519_key.pub");
  writeFileSync(hostKey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootHostKey root@server\n");
  for (const [rc, ok] of [[0, true], [2, true], [1, false]] as const) {
    writeFileSync(cloudInit, `#!/bin/sh\n[ "$2" = "--long" ] && echo "boot failed: details" >&2\nexit ${rc}\n`);
    chmodSync(cloudInit, 0o755);
    const incoming = join(dir, `incoming-${rc}`);
    const run = bash(waitForBootCommand(incoming, hostKey), { PATH: `${fake}:${process.env["PATH"]}` });
    assert.equal(run.status === 0, ok, `cloud-init exit ${rc}: ${run.stderr}`);
    assert.equal(spawnSync("test", ["-d", incoming]).status === 0, ok, `incoming dir after exit ${rc}`);
    if (!ok) assert.match(run.stderr, /boot failed: details/);
    // Its last line is the host key every later step pins.
    if (ok) assert.equal(hostKeyFromBootOutput(run.stdout), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootHostKey");
  }
});

test("the host key is read from the boot step's last line, in the form pulumi-command pins", () => {
  assert.equal(hostKeyFromBootOutput("ssh-ed25519 AAAAC3Nza+/x= root@lb\n"), "ssh-ed25519 AAAAC3Nza+/x=");
  assert.equal(hostKeyFromBootOutput("noise\nssh-ed25519 AAAAC3Nza\n\n"), "ssh-ed25519 AAAAC3Nza");
  assert.throws(() => hostKeyFromBootOutput(""), /printed no ed25519 host key .* but: ""/);
  assert.throws(() => hostKeyFromBootOutput("ssh-rsa AAAAB3Nza root@lb"), /printed no ed25519 host key/);
  assert.throws(() => hostKeyFromBootOutput("ssh-ed25519 AAAA$(reboot)"), /printed no ed25519 host key/);
});

test("pruning keeps the current bundle and anything from the last day", () => {
  assert.equal(pruneIncomingCommand(HASH), `find /srv/ingress/incoming -mindepth 1 -maxdepth 1 ! -name ${HASH} -mmin +1440 -exec rm -rf -- {} +`);
});
