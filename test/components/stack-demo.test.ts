// The demo stack under Pulumi's mocks: it owns its network and server and attaches to the
// prod stack's LB through a StackReference, whose outputs the mock returns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { stackFile } from "../../scripts/stack-files";
import { renderAttachedRoutes } from "../../render/bundle";
import { planStack } from "../../topology";
import { loadTopology } from "../../scripts/stack-files";
import { configFromYaml, isSecret, loadProgram, one, reveal, sent, urnOf, type Loaded } from "./harness";
import { PROD_KEY, PROD_OUTPUTS, PROD_REF, ROUTE_SETTINGS } from "./prod-reference";

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
  copy: "command:remote:CopyToRemote",
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
      `${T.copy} deploy-demo-bundle`,
      `${T.command} deploy-demo-apply`,
      "ingress:hetzner:IngressAttachment ingress",
      `${T.ref} ingress-owner`,
      `${T.serverNetwork} ingress-network-demo`,
      `${T.copy} ingress-routes-bundle`,
      `${T.command} ingress-routes`,
    ].sort(),
  );
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

test("the routes go to prod's LB with prod's key, as flat route files, added in place and removed on destroy", async () => {
  const hash = loaded.exports["routesBundleHash"] as string;
  assert.match(hash, /^[0-9a-f]{64}$/);
  const copy = one(loaded, T.copy, "ingress-routes-bundle");
  const dir = await (copy.inputs["source"] as { path: Promise<string> }).path;
  assert.equal(dir, join(loaded.bundleDir, "demo", "_routes-for-prod", hash));
  const expected = renderAttachedRoutes(planStack(loadTopology("demo")).attach!.fragment, ROUTE_SETTINGS);
  assert.deepEqual(readdirSync(dir).sort(), ["demo.cfg", "demo.json", "demo.map"]);
  for (const f of expected) assert.equal(readFileSync(join(dir, f.path.slice(f.path.lastIndexOf("/") + 1)), "utf8"), f.content);
  assert.equal(copy.inputs["remotePath"], "/srv/ingress/incoming");
  assert.deepEqual(copy.inputs["triggers"], [hash]);

  const routes = one(loaded, T.command, "ingress-routes");
  const add = `/bin/bash /srv/ingress/current/apply.sh --routes /srv/ingress/incoming/${hash} --stack demo`;
  assert.deepEqual(
    { create: routes.inputs["create"], update: routes.inputs["update"], delete: routes.inputs["delete"], triggers: routes.inputs["triggers"] },
    { create: add, update: add, delete: "/bin/bash /srv/ingress/current/apply.sh --remove-routes demo", triggers: undefined },
  );
  for (const r of [copy, routes]) {
    assert.ok(isSecret(r.inputs["connection"]), `${r.name}: connection is secret`);
    const c = reveal(r.inputs["connection"]) as Record<string, unknown>;
    assert.equal(c["host"], "198.51.100.50");
    assert.equal(c["privateKey"], PROD_KEY);
  }
});

test("sent options: the routes wait for the LB attachment and the demo deploy, and are never deletedWith", () => {
  const routes = sent(loaded, T.command, "ingress-routes");
  assert.equal(routes.deletedWith, "");
  for (const dep of [
    urnOf(loaded, T.serverNetwork, "ingress-network-demo"),
    urnOf(loaded, T.copy, "ingress-routes-bundle"),
    urnOf(loaded, T.command, "deploy-demo-apply"),
  ]) {
    assert.ok(routes.dependencies.includes(dep), `ingress-routes waits for ${dep}`);
  }
  assert.ok(sent(loaded, T.copy, "ingress-routes-bundle").dependencies.includes(urnOf(loaded, T.serverNetwork, "ingress-network-demo")));
  // demo is not protected: `pulumi destroy -s demo` must be able to remove all of it.
  // (The StackReference is read, not registered: it has no options.)
  assert.ok(loaded.resources.filter((r) => r.type !== T.ref).every((r) => sent(loaded, r.type, r.name).protect === false));
  assert.equal(one(loaded, T.server, "server-demo").inputs["deleteProtection"], false);
  assert.equal(one(loaded, T.network, "network-demo").inputs["deleteProtection"], false);
  assert.deepEqual(sent(loaded, T.server, "server-demo").ignoreChanges, ["userData", "sshKeys", "image"]);
});

test("the demo server gets its bundle like any host, with no secret files (certbot certificates)", () => {
  const hash = (loaded.exports["bundleHashes"] as Record<string, string>)["demo"]!;
  assert.equal(one(loaded, T.command, "deploy-demo-apply").inputs["create"], `/bin/bash /srv/ingress/incoming/${hash}/apply.sh --bundle /srv/ingress/incoming/${hash} --role web && find /srv/ingress/incoming -mindepth 1 -maxdepth 1 ! -name ${hash} -mmin +1440 -exec rm -rf -- {} +`);
  assert.equal(loaded.resources.some((r) => r.name === "deploy-demo-secrets"), false);
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
  assert.equal(e["lbRouteSettings"], undefined);
  assert.deepEqual([...loaded.secretExports], ["deployPrivateKey"]);
});
