// The pure halves of the local cloud: how the machine image reads the units and podman command
// lines the renderers write, and the cloud firewall's nftables ruleset, checked by nft itself.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../lab/command";
import { firewallRuleset } from "../../local/cloud/firewall-ruleset";
import { execLine, parsePodmanRun, parseUnitFile, podmanRunArgs, splitCommandLine } from "../../local/machine/unit-files";
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
  assert.deepEqual(run.volumes.map((v) => `${v.source}:${v.target}:${v.readOnly ? "ro" : "rw"}`), ["/srv/ingress:/srv/ingress:ro", "/var/www/acme:/var/www/acme:ro", "/etc/letsencrypt:/etc/letsencrypt:ro"]);
  assert.deepEqual(run.tmpfs, [{ target: "/var/cache/nginx", options: "rw,nosuid,nodev,noexec,mode=0755" }]);
  assert.match(run.image, /^docker\.io\/library\/nginx:/);
  assert.deepEqual(run.command, ["nginx", "-c", "/srv/ingress/current/nginx/nginx.conf", "-g", "daemon off;"]);
  // A key the machine does not model is an error, not a silent drop.
  assert.throws(() => podmanRunArgs("x", parseUnitFile("[Container]\nImage=i\nSecret=s\n")), /key Secret is not modelled/);
  assert.throws(() => parsePodmanRun(["--privileged", "img"]), /option --privileged is not modelled/);
  assert.throws(() => parsePodmanRun(["--user", "node", "img"]), /numeric uid/);
});

test("every check record the renderer writes parses as a podman run of the unit's image", () => {
  const plans = readdirSync(GOLDEN, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("apply.plan"));
  const checks = plans.flatMap((f) => readFileSync(join(GOLDEN, f), "utf8").split("\n").filter((l) => l.startsWith("check\t")).map((l) => ({ f, words: l.split("\t") })));
  assert.ok(checks.length >= 7, `${checks.length} check records in ${plans.length} plans`);
  for (const { f, words } of checks) {
    assert.deepEqual(words.slice(3, 5), ["podman", "run"], f);
    const run = parsePodmanRun(words.slice(5));
    assert.equal(run.network, "none", f);
    assert.equal(run.command[0], words[1] === "proxy" ? "node" : words[1], `${f}: the image's own program checks its config`);
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
