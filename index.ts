// The Pulumi program: stack config -> topology -> plan -> rendered bundles -> resources.
// Everything up to the bundles is pure and decided before the first resource exists; the
// resources are then created in one flat pass. docs/deploy.md explains what a `pulumi up`
// changes and what it never touches.
import * as pulumi from "@pulumi/pulumi";
import { planStack } from "./topology";
import { writeHostBundle } from "./components/program/bundle-dir";
import { secretLookup, topologyFromConfig } from "./components/program/config";
import { DeployKey } from "./components/deploy-key";
import { HostFirewall } from "./components/firewall";
import { renderHostBundles } from "./components/deploy/host-bundles";
import { HostDeploy } from "./components/host-deploy";
import { IngressAttachment } from "./components/ingress-attachment";
import { certificateOutputs, dnsRecords, sshCommand, statsUrl as statsUrlOf } from "./components/deploy/outputs";
import { PrimaryIps } from "./components/primary-ip";
import { RoutesKeys } from "./components/routes-keys";
import { PrivateNetwork } from "./components/private-network";
import { bundleRoot, programBundles, readApplyScript } from "./components/program/program-files";
import { HostServer } from "./components/server";
import { spreadPlacementGroup } from "./components/placement-group";

// --- Decide: nothing below this block may fail for a reason the config could have shown.
const stack = pulumi.getStack();
const config = new pulumi.Config();
const topology = topologyFromConfig(config, stack);
const plan = planStack(topology);
const lookupSecret = secretLookup(config, plan);
const attach = plan.attach;
// This stack's own servers; an attached stack's routes go to the owner's LB as data.
const rendered = renderHostBundles(plan, readApplyScript(), programBundles(plan));
const bundles = new Map(rendered.map((r) => [r.host, { rendered: r, local: writeHostBundle(bundleRoot(), stack, r) }]));

// --- Create.
const networks = new Map(
  topology.networks.map((network) => [
    network.name,
    new PrivateNetwork(`network-${network.name}`, { stack, network, networkZone: topology.networkZone, protect: topology.protect }),
  ]),
);
const deployKey = new DeployKey("deploy-key", { stack, protect: topology.protect });
const placementGroupId = spreadPlacementGroup(stack).id;

// Stacks that attach to this stack's LB: a key each, good for their own routes only.
const lbPlan = plan.hosts.find((h) => h.role === "ingress");
const routesKeys_ = lbPlan && lbPlan.ingress!.attachedStacks.length > 0 ? new RoutesKeys("routes-key", { stacks: lbPlan.ingress!.attachedStacks.map((a) => a.stack) }) : undefined;

const hosts = plan.hosts.map((host) => {
  const bundle = bundles.get(host.name);
  if (!bundle?.rendered.userData) throw new Error(`renderer returned no bundle with user data for host ${host.name}`);
  const firewall = new HostFirewall(`firewall-${host.name}`, { host, protect: topology.protect });
  // The LB's addresses are what DNS points at: they outlive a rebuilt LB.
  const primaryIps =
    host.role === "ingress" ? new PrimaryIps(`ips-${host.name}`, { stack, host: host.name, location: topology.location, protect: topology.protect }) : undefined;
  const server = new HostServer(`server-${host.name}`, {
    host,
    location: topology.location,
    networks: topology.networks,
    privateNetworks: networks,
    firewallId: firewall.firewallId,
    sshKeyId: deployKey.sshKey.id,
    placementGroupId,
    userData: bundle.rendered.userData,
    ...(primaryIps ? { primaryIps: { ipv4: primaryIps.ipv4Id, ipv6: primaryIps.ipv6Id } } : {}),
    protect: topology.protect,
  });
  const deploy = new HostDeploy(`deploy-${host.name}`, {
    host,
    server,
    privateKey: deployKey.privateKey,
    bundle: bundle.local,
    lookupSecret,
    ...(host.role === "ingress" && routesKeys_ ? { attachedKeys: routesKeys_.publicKeys } : {}),
  });
  return { host, server, deploy };
});

const attachment = attach
  ? new IngressAttachment("ingress", {
      stack,
      attach,
      networks: topology.networks,
      privateNetworks: networks,
      organization: pulumi.getOrganization(),
      project: pulumi.getProject(),
      after: hosts.map((h) => h.deploy.apply),
      protect: topology.protect,
    })
  : undefined;

// --- Outputs.
const lb = hosts.find((h) => h.host.role === "ingress");
const hostnames = [...(lb?.host.ingress?.fragment.routes ?? []), ...(attach?.fragment.routes ?? [])].map((r) => r.hostname);
const lbIpv4 = lb ? lb.server.ipv4 : attachment!.lbIpv4;
const lbIpv6 = lb ? lb.server.ipv6 : attachment!.lbIpv6;
const stats = lb?.host.ingress?.stats;

export const engine: pulumi.Output<string> = lb ? pulumi.output(lb.host.ingress!.engine) : attachment!.engine;
export { lbIpv4, lbIpv6 };
/** Create these at your DNS provider: every hostname of this stack, A and AAAA to the LB. */
export const dnsRecordsToCreate = pulumi.all([lbIpv4, lbIpv6]).apply(([v4, v6]) => dnsRecords(hostnames, v4, v6));
export const statsUrl: pulumi.Output<string | undefined> = lb
  ? lb.server.ipv4.apply((ip) => (stats?.enabled ? statsUrlOf(ip, stats.port) : undefined))
  : attachment!.statsUrl;
/**
 * Per hostname of this stack: its server, certificate source, issuer and renewal. The live
 * certificate (expiry, days left, the ACME job's state) is on the stats page.
 */
export const certificates = certificateOutputs(plan.hosts);
export const sshCommands = pulumi.all(Object.fromEntries(hosts.map((h) => [h.host.name, h.server.ipv4.apply(sshCommand)])));
/** Hash of each host's bundle: a host is redeployed exactly when its hash changes. */
export const bundleHashes = Object.fromEntries([...bundles.values()].map((b) => [b.local.host, b.local.hash]));
export const routesBundleHash = attachment?.fragmentHash;

// What stacks attaching to this LB read (OWNER_OUTPUTS); only the owning stack has them.
export const lbServerId = lb?.server.server.id;
export const lbHostKey = lb?.deploy.hostKey;
/** Secret: each attached stack's key for its own routes on this LB, by stack. */
export const routesKeys = routesKeys_?.privateKeys;
/**
 * Secret: root on every server of this stack. Not exported by a stack that others attach to:
 * they can read its outputs, and need only their routes key (docs/security.md).
 */
export const deployPrivateKey = routesKeys_ ? undefined : deployKey.privateKey;
