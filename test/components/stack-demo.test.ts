// The demo stack under Pulumi's mocks: it owns its network and server and attaches to the
// prod stack's LB through a StackReference, whose outputs the mock returns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { stackFile } from "../../scripts/stack-files";
import { renderRoutesData } from "../../render/stack";
import { planStack } from "../../topology";
import { loadTopology } from "../../scripts/stack-files";
import { configFromYaml, isSecret, loadProgram, one, reveal, sent, urnOf, type Loaded } from "./harness";
import { PROD_KEY, PROD_OUTPUTS, PROD_REF } from "./prod-reference";

let loaded: Loaded;
test.before(async () => {
  loaded = await loadProgram({ stack: "demo", config: configFromYaml(stackFile("demo")), stackReferences: { [PROD_REF]: PROD_OUTPUTS } });
});
test.after(() => rmSync(loaded.bundleDir, { recursive: true, force: true }));

const T = {
  server: "hcloud:index/server:Server",
  serverNetwork: "hcloud:index/serverNetwork:ServerNetwork",
  network: "hcloud:index/network:Network",
  firewall: "hcloud:index/firewall:Firewall",
  command: "command:remote:Command",
  ref: "pulumi:pulumi:StackReference",
};

test("the exact set of resources: own network and server, plus the LB attachment and routes", () => {
  assert.deepEqual(
    loaded.resources.map((r) => `${r.type} ${r.name}`).sort(),
    [
      "ingress:hetzner:PrivateNetwork network-demo",
      `${T.network} network-demo`,
      "hcloud:index/networkSubnet:NetworkSubnet network-demo-subnet-172-20-0-0-24",
      "hcloud:index/networkSubnet:NetworkSubnet network-demo-subnet-172-20-1-0-24",
      "ingress:hetzner:DeployKey deploy-key",
      "tls:index/privateKey:PrivateKey deploy-key",
      "hcloud:index/sshKey:SshKey deploy-key",
      "hcloud:index/placementGroup:PlacementGroup spread",
      "ingress:hetzner:Firewall firewall-demo",
      `${T.firewall} firewall-demo`,
      "ingress:hetzner:Server server-demo",
      `${T.server} server-demo`,
      `${T.serverNetwork} server-demo-network-demo`,
      "ingress:hetzner:HostDeploy deploy-demo",
      `${T.command} deploy-demo-boot`,
      "command:remote:CopyToRemote deploy-demo-bundle",
      `${T.command} deploy-demo-apply`,
      // Self-signed stand-ins for the two sites until certbot's certificates exist.
      `${T.command} deploy-demo-secrets`,
      "tls:index/privateKey:PrivateKey deploy-demo-tls-key-demo-fiscalismia-com",
      "tls:index/selfSignedCert:SelfSignedCert deploy-demo-tls-cert-demo-fiscalismia-com",
      "tls:index/privateKey:PrivateKey deploy-demo-tls-key-backend-demo-fiscalismia-com",
      "tls:index/selfSignedCert:SelfSignedCert deploy-demo-tls-cert-backend-demo-fiscalismia-com",
      "ingress:hetzner:IngressAttachment ingress",
      `${T.ref} ingress-owner`,
      `${T.serverNetwork} ingress-network-demo`,
      `${T.command} ingress-routes`,
    ].sort(),
  );
  // Pulumi.demo.yaml names the owner "prod"; the reference completes it with this program's
  // organization (what the backend answers: "organization" on a self-managed one) and project.
  assert.equal(one(loaded, T.ref, "ingress-owner").inputs["name"], PROD_REF);
});

test("private IPs: the demo server at 172.20.0.2, prod's LB joins at 172.20.1.3 by the id prod exports", () => {
  const net = one(loaded, T.network, "network-demo");
  assert.deepEqual(one(loaded, T.serverNetwork, "server-demo-network-demo").inputs, {
    serverId: Number(one(loaded, T.server, "server-demo").id),
    subnetId: `${net.id}-172.20.0.0/24`,
    ip: "172.20.0.2",
    aliasIps: [],
  });
  assert.deepEqual(one(loaded, T.serverNetwork, "ingress-network-demo").inputs, { serverId: 4242, subnetId: `${net.id}-172.20.1.0/24`, ip: "172.20.1.3", aliasIps: [] });
});

test("the demo server's cloud firewall is SSH from the admin CIDR only", () => {
  assert.deepEqual(one(loaded, T.firewall, "firewall-demo").inputs["rules"], [
    { direction: "in", protocol: "tcp", port: "22", sourceIps: ["198.51.100.7/32"], description: "SSH for admins and deploys" },
  ]);
});

test("the routes go to prod's LB with prod's key on stdin, updated in place, replaced delete first when the LB or owner changes", () => {
  const hash = loaded.exports["routesBundleHash"] as string;
  assert.match(hash, /^[0-9a-f]{64}$/);
  const routes = one(loaded, T.command, "ingress-routes");
  // The LB runs `apply.sh --attached demo` for demo's key whatever is asked (sshd's forced
  // command); the command asked for only picks add or remove.
  assert.deepEqual(
    { create: routes.inputs["create"], update: routes.inputs["update"], delete: routes.inputs["delete"], triggers: routes.inputs["triggers"] },
    // prod's LB server id and the owner: a rebuilt LB or another owner replaces the routes.
    { create: "routes", update: "routes", delete: "remove-routes", triggers: ["4242", PROD_REF] },
  );
  assert.equal(routes.inputs["addPreviousOutputInEnv"], false);
  // stdin: demo's routes as data, never config text; the LB renders them with its own settings.
  const fragment = planStack(loadTopology("demo")).attach!.fragment;
  assert.equal(routes.inputs["stdin"], renderRoutesData(fragment).content);
  assert.deepEqual(JSON.parse(String(routes.inputs["stdin"])), JSON.parse(JSON.stringify(fragment)));
  assert.doesNotMatch(String(routes.inputs["stdin"]), /^backend |send-proxy/m);
  assert.ok(isSecret(routes.inputs["connection"]), "connection is secret");
  const c = reveal(routes.inputs["connection"]) as Record<string, unknown>;
  assert.equal(c["host"], "198.51.100.50");
  assert.equal(c["privateKey"], PROD_KEY, "demo's own routes key from prod's routesKeys, not prod's deploy key");
  assert.equal(c["hostKey"], PROD_OUTPUTS.lbHostKey, "pinned to the LB host key prod recorded");
});

test("sent options: the routes wait for the LB attachment and the demo deploy, and are never deletedWith", () => {
  const routes = sent(loaded, T.command, "ingress-routes");
  assert.equal(routes.deletedWith, "");
  assert.equal(routes.deleteBeforeReplace, true, "the old LB loses the routes before the new one gets them");
  assert.deepEqual(routes.additionalSecretOutputs.slice().sort(), ["connection", "stderr", "stdout"], "the LB's validator output is stored encrypted");
  assert.equal(sent(loaded, T.serverNetwork, "ingress-network-demo").deleteBeforeReplace, true);
  for (const dep of [urnOf(loaded, T.serverNetwork, "ingress-network-demo"), urnOf(loaded, T.command, "deploy-demo-apply")]) {
    assert.ok(routes.dependencies.includes(dep), `ingress-routes waits for ${dep}`);
  }
  // demo is not protected: `pulumi destroy -s demo` must be able to remove all of it.
  // (The StackReference is read, not registered: it has no options.)
  assert.ok(loaded.resources.filter((r) => r.type !== T.ref).every((r) => sent(loaded, r.type, r.name).protect === false));
  assert.equal(one(loaded, T.server, "server-demo").inputs["deleteProtection"], false);
  assert.equal(one(loaded, T.network, "network-demo").inputs["deleteProtection"], false);
  assert.deepEqual(sent(loaded, T.server, "server-demo").ignoreChanges, ["userData", "sshKeys", "image", "location", "serverType"]);
});

test("the demo server gets its bundle like any host, and a self-signed stand-in per site as secret files", () => {
  const hash = (loaded.exports["bundleHashes"] as Record<string, string>)["demo"]!;
  assert.equal(one(loaded, T.command, "deploy-demo-apply").inputs["create"], `/bin/bash /srv/ingress/incoming/${hash}/apply.sh --bundle /srv/ingress/incoming/${hash} --role web && find /srv/ingress/incoming -mindepth 1 -maxdepth 1 ! -name ${hash} -mmin +1440 -exec rm -rf -- {} +`);
  const secrets = one(loaded, T.command, "deploy-demo-secrets");
  assert.ok(isSecret(secrets.inputs["stdin"]));
  const paths = String(reveal(secrets.inputs["stdin"])).trimEnd().split("\n").map((l) => l.split("\t")[0]);
  assert.deepEqual(paths, ["demo.fiscalismia.com", "backend.demo.fiscalismia.com"].flatMap((h) => [`/srv/ingress/secrets/tls/standin/${h}/${h}.crt`, `/srv/ingress/secrets/tls/standin/${h}/${h}.key`]));
});

test("outputs: DNS for the demo hostnames to prod's LB, prod's engine and stats, SSH to the demo server", () => {
  const e = loaded.exports;
  assert.equal(e["engine"], "haproxy");
  assert.equal(e["lbIpv4"], "198.51.100.50");
  assert.equal(e["lbIpv6"], "2001:db8:50::1");
  assert.equal(e["statsUrl"], "http://198.51.100.50:8404/stats");
  assert.deepEqual(e["dnsRecordsToCreate"], [
    { name: "backend.demo.fiscalismia.com", type: "A", value: "198.51.100.50" },
    { name: "backend.demo.fiscalismia.com", type: "AAAA", value: "2001:db8:50::1" },
    { name: "demo.fiscalismia.com", type: "A", value: "198.51.100.50" },
    { name: "demo.fiscalismia.com", type: "AAAA", value: "2001:db8:50::1" },
  ]);
  assert.deepEqual(e["sshCommands"], { demo: `ssh -i ./deploy-key root@${String(one(loaded, T.server, "server-demo").state["ipv4Address"])}` });
  // Not an owner: nothing for other stacks to attach to.
  assert.equal(e["lbServerId"], undefined);
  assert.deepEqual([...loaded.secretExports], ["deployPrivateKey"]);
});
