// One Hetzner server with public IPv4 and IPv6, its cloud firewall applied at first boot,
// and one ServerNetwork per private network at the plan's fixed address.
//
// Private networks are attached with ServerNetwork resources, never with the server's
// inline `networks` argument: an attached stack adds the LB to its own network with a
// ServerNetwork of its own, which the inline form would see as drift and remove.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan, NetworkConfig } from "../topology";
import { childName, displayName, resourceLabels } from "./deploy/names";
import { subnetFor } from "./deploy/network-plan";
import { attachmentOptions } from "./private-network";

/**
 * A change to any of these replaces a Hetzner server, and with it its disk (the provider
 * marks them ForceNew; see local/engine/provider-schema.ts). They only matter at
 * first boot: cloud-init is kept minimal and stable, and everything that changes is pushed
 * over SSH. A rebuild or a move is an explicit `pulumi up --replace <urn>` (docs/deploy.md).
 * sshKeys is here as well because a rotated deploy key would otherwise replace every server.
 * `serverType` too: the provider resizes in place but powers the server off for it and does
 * not power it on again (terraform-provider-hcloud internal/server/resource.go, v1.68.0), so
 * a config edit would leave the LB or a web server off. docs/deploy.md gives both ways to
 * resize on purpose.
 */
const SERVER_IGNORE_CHANGES: readonly string[] = ["userData", "sshKeys", "image", "location", "serverType"];
import type { PrivateNetwork } from "./private-network";

export interface HostServerArgs {
  readonly host: HostPlan;
  readonly location: string;
  readonly networks: readonly NetworkConfig[];
  /** By network name. */
  readonly privateNetworks: ReadonlyMap<string, PrivateNetwork>;
  readonly firewallId: pulumi.Input<number>;
  readonly sshKeyId: pulumi.Input<string>;
  readonly placementGroupId: pulumi.Input<number>;
  readonly userData: string;
  /** Primary IP ids for the public interface (the LB's); otherwise Hetzner assigns new ones. */
  readonly primaryIps?: { readonly ipv4: pulumi.Input<number>; readonly ipv6: pulumi.Input<number> };
  readonly protect: boolean;
}

export class HostServer extends pulumi.ComponentResource {
  readonly server: hcloud.Server;
  /** By network name. */
  readonly attachments: ReadonlyMap<string, hcloud.ServerNetwork>;
  readonly ipv4: pulumi.Output<string>;
  readonly ipv6: pulumi.Output<string>;

  constructor(name: string, args: HostServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:Server", name, {}, opts);
    const { host, protect } = args;

    this.server = new hcloud.Server(
      name,
      {
        name: displayName(host.stack, host.name),
        serverType: host.serverType,
        image: host.image,
        location: args.location,
        labels: resourceLabels(host.stack, host.role, host.labels),
        sshKeys: [args.sshKeyId],
        // On the server, not a FirewallAttachment: only this way is the firewall in place
        // from first boot, before sshd or anything else listens.
        firewallIds: [args.firewallId],
        placementGroupId: args.placementGroupId,
        publicNets: [{ ipv4Enabled: true, ipv6Enabled: true, ...(args.primaryIps ? { ipv4: args.primaryIps.ipv4, ipv6: args.primaryIps.ipv6 } : {}) }],
        userData: args.userData,
        // Hetzner's own protection, driven by the same switch; the API wants both equal.
        deleteProtection: protect,
        rebuildProtection: protect,
      },
      // Delete first: a server's name and its private IPs are unique, so a create-first
      // replacement (the engine's default, and what a targeted `--replace` does) would fail.
      { parent: this, protect, deleteBeforeReplace: true, ignoreChanges: [...SERVER_IGNORE_CHANGES] },
    );
    const serverId = this.server.id.apply(Number);

    const attachments = new Map<string, hcloud.ServerNetwork>();
    for (const { network, ip } of host.privateIps) {
      const subnet = subnetFor(args.networks, network, ip);
      const pn = args.privateNetworks.get(network);
      const subnetResource = pn?.subnets.get(subnet.ipRange);
      if (!subnetResource) throw new Error(`host ${host.name}: network "${network}" subnet ${subnet.ipRange} is not in this stack`);
      attachments.set(
        network,
        new hcloud.ServerNetwork(
          childName(name, "network", network),
          // aliasIps: [] because the provider otherwise reports a diff on every preview.
          { serverId, subnetId: subnetResource.id, ip, aliasIps: [] },
          attachmentOptions(protect, this),
        ),
      );
    }
    this.attachments = attachments;
    this.ipv4 = this.server.ipv4Address;
    this.ipv6 = this.server.ipv6Address;
    this.registerOutputs({ serverId: this.server.id, ipv4: this.ipv4, ipv6: this.ipv6 });
  }
}
