// The pure halves of the local cloud: how the machine image reads the units and podman command
// lines the renderers write, and the cloud firewall's nftables ruleset, checked by nft itself.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../lab/command";
import { firewallRuleset } from "../../local/cloud/firewall-ruleset";
import { execLine, isOneshot, parsePodmanRun, parseUnitFile, podmanRunArgs, splitCommandLine, timeSpanMs, unitValues } from "../../local/machine/unit-files";
import { cloudFirewallRules } from "../../components/deploy/firewall-rules";
import { loadTopology } from "../../scripts/stack-files";
import { planStack } from "../../topology";

const GOLDEN = join(__dirname, "..", "golden");

test("command lines split as systemd splits them: quotes, escapes, and the '-' prefix", () => {
  assert.deepEqual(splitCommandLine(`nginx -c /srv/ingress/current/nginx/nginx.conf -g "daemon off;"`), ["nginx", "-c", "/srv/ingress/current/nginx/nginx.conf", "-g", "daemon off;"]);
  assert.deepEqual(splitCommandLine(`a 'b c' "d \\" e" f\\ g ""`), ["a", "b c", 'd " e', "f g", ""]);
  assert.throws(() => splitCommandLine(`a "b`), /unterminated quote/);
  assert.deepEqual(execLine("-/usr/bin/podman kill --signal HUP nginx"), { ignoreFailure: true, argv: ["/usr/bin/podman", "kill", "--signal", "HUP", "nginx"] });
});

test("a rendered Quadlet unit becomes the podman run it stands for, and podman's options read back", () => {
  const unit = parseUnitFile(readFileSync(join(GOLDEN, "prod", "frontend", "etc", "containers", "systemd", "nginx.container"), "utf8"));
  const args = podmanRunArgs("nginx", unit);
  const run = parsePodmanRun(args.slice(1));
  assert.equal(run.name, "nginx");
  assert.equal(run.detach, true);
  assert.equal(run.network, "host");
  // Each Volume= as the unit gives it (the certificates' directories follow the stack), all read-only for nginx.
  assert.deepEqual(run.volumes.map((v) => `${v.source}:${v.target}:${v.readOnly ? "ro" : "rw"}`), unitValues(unit, "Container", "Volume"));
  assert.deepEqual(run.volumes.slice(0, 2).map((v) => v.source), ["/srv/ingress", "/var/www/acme"]);
  assert.ok(run.volumes.every((v) => v.readOnly));
  assert.deepEqual(run.tmpfs, [{ target: "/var/cache/nginx", options: "rw,nosuid,nodev,noexec,mode=0755" }]);
  assert.match(run.image, /^docker\.io\/library\/nginx:/);
  assert.deepEqual(run.command, ["nginx", "-c", "/srv/ingress/current/nginx/nginx.conf", "-g", "daemon off;"]);
  // A key the machine does not model is an error, not a silent drop.
  assert.throws(() => podmanRunArgs("x", parseUnitFile("[Container]\nImage=i\nSecret=s\n")), /key Secret is not modelled/);
  assert.throws(() => parsePodmanRun(["--privileged", "img"]), /option --privileged is not modelled/);
  assert.throws(() => parsePodmanRun(["--user", "node", "img"]), /numeric uid/);
});

/** The ACME job's unit as the renderer writes it: a oneshot whose program is lego's script, run by the image's shell. */
const ACME_UNIT = `[Unit]
Description=ACME: issue and renew this server's certificates (lego)
Wants=network-online.target
After=network-online.target nginx.service

[Container]
ContainerName=acme
Image=docker.io/goacme/lego:v4.35.2@sha256:ae124a405844759b201b31efbd7a0ba302dbd16e86f2fb177c4b6db8bdc782c8
Network=host
Volume=/srv/ingress:/srv/ingress:ro
Volume=/var/lib/ingress-acme:/var/lib/ingress-acme
Volume=/var/www/acme:/var/www/acme
EnvironmentFile=/srv/ingress/secrets/acme.env
Exec=/srv/ingress/current/acme/renew.sh
DropCapability=ALL
AddCapability=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
ReadOnly=true
VolatileTmp=true
PodmanArgs=--entrypoint=/bin/sh --log-driver=journald

[Service]
Type=oneshot
TimeoutStartSec=1800
ExecStopPost=-/srv/ingress/current/apply.sh --switch-certs

[Install]
WantedBy=multi-user.target
`;

test("a oneshot Quadlet unit runs podman in the foreground (no -d, as Quadlet does), its program the entrypoint with Exec= as arguments", () => {
  const unit = parseUnitFile(ACME_UNIT);
  assert.equal(isOneshot(unit), true);
  const args = podmanRunArgs("acme", unit);
  assert.equal(args.includes("-d"), false, args.join(" "));
  const run = parsePodmanRun(args.slice(1));
  assert.equal(run.name, "acme");
  assert.equal(run.detach, false);
  assert.equal(run.replace, true);
  assert.equal(run.entrypoint, "/bin/sh");
  assert.deepEqual(run.command, ["/srv/ingress/current/acme/renew.sh"]);
  assert.deepEqual(run.volumes.map((v) => `${v.source}:${v.target}:${v.readOnly ? "ro" : "rw"}`), ["/srv/ingress:/srv/ingress:ro", "/var/lib/ingress-acme:/var/lib/ingress-acme:rw", "/var/www/acme:/var/www/acme:rw"]);
  assert.deepEqual(run.envFiles, ["/srv/ingress/secrets/acme.env"]);
  assert.match(run.image, /^docker\.io\/goacme\/lego:v4\.35\.2@sha256:/);
  // So does every acme.container the renderer writes.
  for (const f of readdirSync(GOLDEN, { recursive: true, encoding: "utf8" }).filter((g) => g.endsWith("/acme.container"))) {
    const golden = parsePodmanRun(podmanRunArgs("acme", parseUnitFile(readFileSync(join(GOLDEN, f), "utf8"))).slice(1));
    assert.deepEqual([golden.detach, golden.entrypoint, golden.command], [false, "/bin/sh", ["/srv/ingress/current/acme/renew.sh"]], f);
  }
  // The same unit without Type=oneshot is a daemon: detached, as before.
  assert.equal(podmanRunArgs("acme", parseUnitFile(ACME_UNIT.replace("Type=oneshot\n", ""))).includes("-d"), true);

  // --entrypoint in both of podman's forms; an empty one clears it; the JSON array form is not modelled.
  for (const argv of [["--entrypoint", "/bin/sh", "img", "-c", "echo hi"], ["--entrypoint=/bin/sh", "img", "-c", "echo hi"]]) {
    const r = parsePodmanRun(argv);
    assert.deepEqual([r.entrypoint, r.image, r.command], ["/bin/sh", "img", ["-c", "echo hi"]], argv.join(" "));
  }
  assert.equal(parsePodmanRun(["--entrypoint=", "img", "nginx"]).entrypoint, undefined);
  assert.equal(parsePodmanRun(["img", "nginx"]).entrypoint, undefined);
  assert.throws(() => parsePodmanRun(["--entrypoint", '["/bin/sh","-c"]', "img"]), /JSON form is not modelled/);
  assert.throws(() => parsePodmanRun(["--entrypoint"]), /--entrypoint needs a value/);
  // Unknown options and keys are still refused.
  assert.throws(() => parsePodmanRun(["--entrypoint=/bin/sh", "--privileged", "img"]), /option --privileged is not modelled/);
  assert.throws(() => podmanRunArgs("acme", parseUnitFile(ACME_UNIT.replace("[Container]\n", "[Container]\nEntrypoint=/bin/sh\n"))), /key Entrypoint is not modelled/);
});

test("time spans read as systemd reads TimeoutStartSec", () => {
  assert.equal(timeSpanMs("1800"), 1_800_000);
  assert.equal(timeSpanMs("30min"), 1_800_000);
  assert.equal(timeSpanMs("1h 30s"), 3_630_000);
  assert.equal(timeSpanMs("2min30s"), 150_000);
  assert.equal(timeSpanMs("500ms"), 500);
  assert.equal(timeSpanMs("infinity"), undefined);
  assert.throws(() => timeSpanMs("5 fortnights"), /not one the local machine reads/);
  assert.throws(() => timeSpanMs(""), /not one the local machine reads/);
});

test("every check record the renderer writes parses as a podman run of the unit's image", () => {
  const plans = readdirSync(GOLDEN, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("apply.plan"));
  const checks = plans.flatMap((f) => readFileSync(join(GOLDEN, f), "utf8").split("\n").filter((l) => l.startsWith("check\t")).map((l) => ({ f, words: l.split("\t") })));
  assert.ok(checks.length >= 7, `${checks.length} check records in ${plans.length} plans`);
  for (const { f, words } of checks) {
    assert.deepEqual(words.slice(3, 5), ["podman", "run"], f);
    const run = parsePodmanRun(words.slice(5));
    assert.equal(run.network, "none", f);
    // lego's check is its image's shell reading the job's script (sh -n), through --entrypoint.
    const program = run.entrypoint ?? run.command[0];
    assert.equal(program, words[1] === "proxy" ? "node" : words[1] === "acme" ? "/bin/sh" : words[1], `${f}: the image's own program checks its config`);
    if (words[1] === "haproxy") assert.deepEqual(run.envFiles, ["{env:/srv/ingress/secrets/stats.env}"], f);
  }
});

test("the cloud firewall: a guarded server gets what its rules allow from where they allow it, and nft accepts the ruleset", async () => {
  const prod = planStack(loadTopology("prod"));
  const lb = prod.hosts.find((h) => h.role === "ingress")!;
  const text = firewallRuleset([
    { serverId: 7, link: "pub7", rules: cloudFirewallRules(lb) },
    { serverId: 3, link: "pub3", rules: [{ direction: "in", protocol: "tcp", port: "22", sourceIps: ["198.51.100.7/32", "2001:db8::/32"] }] },
  ]);
  assert.match(text, /ct state established,related accept\n\s+oifname "pub3" jump server_3\n\s+oifname "pub7" jump server_7/);
  assert.match(text, /chain server_3 \{\n\s+ip saddr \{ 198\.51\.100\.7\/32 \} meta l4proto tcp th dport 22 accept\n\s+ip6 saddr \{ 2001:db8::\/32 \} meta l4proto tcp th dport 22 accept\n\s+counter drop/);
  assert.match(text, /th dport 443 accept/);
  const r = await run(["unshare", "--net", "nft", "-c", "-f", "-"], { input: text, allowFailure: true });
  assert.equal(r.code, 0, r.stderr);
  assert.throws(() => firewallRuleset([{ serverId: 1, link: "p", rules: [{ direction: "in", protocol: "gre" }] }]), /protocol "gre" is not modelled/);
});
