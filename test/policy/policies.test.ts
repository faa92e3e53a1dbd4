// The policy pack, policy by policy on good and bad resource arguments, and on every resource
// the program sends for the shipped stacks (prod, demo attached to it, the standalone example).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { everyServerHasAFirewall, noRemovedServerType, noSshFromAnywhere, POLICIES, prodIsProtected, proxyListenersOnlyFromTheLb, type PolicyArgs } from "../../policy/policies";
import { configFromYaml } from "../components/harness";
import type { RunRequest, RunResult } from "../components/lifecycle/run-program";
import { REPO_ROOT, stackFile } from "../../scripts/stack-files";
import { PROD_OUTPUTS, PROD_REF } from "../components/prod-reference";

const T = { server: "hcloud:index/server:Server", firewall: "hcloud:index/firewall:Firewall", network: "hcloud:index/network:Network", primaryIp: "hcloud:index/primaryIp:PrimaryIp" };

function violations(policy: ResourceValidationPolicy, args: PolicyArgs): string[] {
  const out: string[] = [];
  const v = policy.validateResource;
  for (const validate of Array.isArray(v) ? v : v ? [v] : []) {
    // Only the fields the policies read; the rest of ResourceValidationArgs is the engine's.
    void validate({ ...args } as unknown as ResourceValidationArgs, (message: string) => out.push(message));
  }
  return out;
}

const ssh = (sourceIps: string[]) => ({ direction: "in", protocol: "tcp", port: "22", sourceIps });
const fw = (rules: unknown[], role = "ingress"): PolicyArgs => ({ type: T.firewall, name: "fw", props: { rules, labels: { stack: "demo", role } }, opts: { protect: false } });

test("no-ssh-from-anywhere measures what the sources cover: halves of the internet are the internet", () => {
  assert.deepEqual(violations(noSshFromAnywhere, fw([ssh(["198.51.100.7/32", "2001:db8::/48"])])), []);
  assert.match(violations(noSshFromAnywhere, fw([ssh(["0.0.0.0/0"])]))[0]!, /opens SSH to 2\^32 IPv4 addresses \(the whole IPv4 internet\)/);
  assert.equal(violations(noSshFromAnywhere, fw([ssh(["0.0.0.0/1", "128.0.0.0/1"])])).length, 1);
  assert.equal(violations(noSshFromAnywhere, fw([ssh(["2000::/3"])])).length, 1);
  // A range or a rule for every port lets SSH in too; a source that cannot be measured is refused.
  assert.equal(violations(noSshFromAnywhere, fw([{ direction: "in", protocol: "tcp", port: "1-65535", sourceIps: ["0.0.0.0/0"] }])).length, 1);
  assert.equal(violations(noSshFromAnywhere, fw([{ direction: "in", protocol: "tcp", sourceIps: ["::/0"] }])).length, 1);
  assert.deepEqual(violations(noSshFromAnywhere, fw([{ direction: "in", protocol: "tcp", port: "80-443", sourceIps: ["0.0.0.0/0"] }])), []);
  assert.match(violations(noSshFromAnywhere, fw([ssh(["198.51.100.7/24"])]))[0]!, /cannot be measured: "198\.51\.100\.7\/24" has host bits set/);
  // Port 443 from anywhere is what an LB is for.
  assert.deepEqual(violations(noSshFromAnywhere, fw([{ direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0", "::/0"] }])), []);
});

test("every-server-has-a-firewall, no-removed-server-type", () => {
  const server = (props: Record<string, unknown>): PolicyArgs => ({ type: T.server, name: "web", props: { serverType: "cx23", firewallIds: [1], ...props }, opts: { protect: false } });
  assert.deepEqual(violations(everyServerHasAFirewall, server({})), []);
  assert.deepEqual(violations(everyServerHasAFirewall, server({ firewallIds: [] })), ["server web has no cloud firewall; give it one in firewallIds"]);
  assert.deepEqual(violations(noRemovedServerType, server({})), []);
  assert.match(violations(noRemovedServerType, server({ serverType: "cx22" }))[0]!, /server web: server type cx22 was removed by Hetzner .* use cx23/);
});

test("prod-is-protected: prod's servers, networks and primary IPs, in Hetzner and in Pulumi; other stacks are free", () => {
  for (const type of [T.server, T.network, T.primaryIp]) {
    const args = (stack: string, deleteProtection: boolean, protect: boolean): PolicyArgs => ({ type, name: "r", props: { deleteProtection, labels: { stack } }, opts: { protect } });
    assert.deepEqual(violations(prodIsProtected, args("prod", true, true)), []);
    assert.equal(violations(prodIsProtected, args("prod", false, false)).length, 2, type);
    assert.deepEqual(violations(prodIsProtected, args("demo", false, false)), []);
  }
});

test("proxy-listeners-only-from-the-lb: a web server's cloud firewall opens SSH and nothing else", () => {
  const site = { direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0"] };
  assert.deepEqual(violations(proxyListenersOnlyFromTheLb, fw([ssh(["198.51.100.7/32"])], "web")), []);
  assert.deepEqual(violations(proxyListenersOnlyFromTheLb, fw([ssh(["198.51.100.7/32"]), site], "web")), ["firewall fw of a web server opens port 443 publicly; its PROXY listeners must be reachable from the LB only"]);
  assert.deepEqual(violations(proxyListenersOnlyFromTheLb, fw([site], "ingress")), []);
});

/** The resources `pulumi up` of a shipped stack sends, from the program under mocks (a child process per stack). */
function resourcesOf(request: Omit<RunRequest, "prior" | "replace" | "bundleDir" | "nextId">): RunResult["state"] {
  const work = mkdtempSync(join(tmpdir(), "policy-"));
  try {
    const file = join(work, "request.json");
    writeFileSync(file, JSON.stringify({ ...request, prior: {}, replace: [], bundleDir: join(work, "bundles"), nextId: 1000 }));
    const run = spawnSync(process.execPath, ["--import", "tsx", join(__dirname, "..", "components", "lifecycle", "run-program.ts")], { env: { ...process.env, LIFECYCLE_REQUEST: file }, encoding: "utf8" });
    const result = JSON.parse(run.stdout.trimEnd().split("\n").pop() ?? "{}") as RunResult & { error?: string };
    if (result.error !== undefined || !result.state) throw new Error(`program failed: ${result.error ?? run.stderr}`);
    return result.state;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test("the shipped stacks pass every policy", { timeout: 120_000 }, () => {
  const prod = resourcesOf({ stack: "prod", config: configFromYaml(stackFile("prod")), secrets: { statsPassword: "pw" } });
  const stacks: Record<string, RunResult["state"]> = {
    prod,
    demo: resourcesOf({ stack: "demo", config: configFromYaml(stackFile("demo")), stackReferences: { [PROD_REF]: PROD_OUTPUTS } }),
    standalone: resourcesOf({ stack: "standalone-demo", config: configFromYaml(join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml")), secrets: { statsPassword: "pw" } }),
  };
  let checked = 0;
  for (const [stack, state] of Object.entries(stacks)) {
    for (const r of Object.values(state)) {
      for (const policy of POLICIES) {
        assert.deepEqual(violations(policy, { type: r.type, name: r.name, props: r.inputs, opts: { protect: r.protect } }), [], `${stack}: ${r.type} ${r.name}, ${policy.name}`);
        checked++;
      }
    }
  }
  // prod's stateful resources are there to be checked, and protected.
  const kinds = new Set(Object.values(prod).map((r) => r.type));
  for (const type of [T.server, T.firewall, T.network, T.primaryIp]) assert.ok(kinds.has(type), type);
  assert.ok(checked > 100);
  // The policies read what the program really sends: the same resources, made wrong, fail.
  const webFirewall = Object.values(prod).find((r) => r.type === T.firewall && r.name === "firewall-frontend")!;
  const opened = { ...webFirewall.inputs, rules: [...(webFirewall.inputs["rules"] as unknown[]), { direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0"] }] };
  assert.equal(violations(proxyListenersOnlyFromTheLb, { type: T.firewall, name: webFirewall.name, props: opened, opts: { protect: true } }).length, 1);
  const lb = Object.values(prod).find((r) => r.type === T.server && r.name === "server-loadbalancer")!;
  assert.equal(violations(prodIsProtected, { type: T.server, name: lb.name, props: { ...lb.inputs, deleteProtection: false }, opts: { protect: false } }).length, 2);
  assert.equal(violations(everyServerHasAFirewall, { type: T.server, name: lb.name, props: { ...lb.inputs, firewallIds: [] }, opts: { protect: true } }).length, 1);
});
