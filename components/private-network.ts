// A Hetzner private network and its subnets. Subnets are of type "cloud" (servers), keyed
// by their range so that adding a subnet never renames another.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { NetworkConfig } from "../topology";
import { childName, displayName, resourceLabels } from "./deploy/names";
import { subnetSpecs } from "./deploy/network-plan";

/**
 * A ServerNetwork or a NetworkSubnet: replaced delete first. Created first, a new
 * ServerNetwork finds the server already attached, which the provider accepts and records
 * under the same id, and the old one's delete then detaches the server; a new subnet would
 * overlap the old one's range.
 */
export function attachmentOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect, deleteBeforeReplace: true };
}
import type { CustomResourceOptions, Resource } from "@pulumi/pulumi";

export interface PrivateNetworkArgs {
  readonly stack: string;
  readonly network: NetworkConfig;
  readonly networkZone: string;
  readonly protect: boolean;
}

export class PrivateNetwork extends pulumi.ComponentResource {
  readonly network: hcloud.Network;
  /** By subnet range, as written in the stack config. */
  readonly subnets: ReadonlyMap<string, hcloud.NetworkSubnet>;

  constructor(name: string, args: PrivateNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:PrivateNetwork", name, {}, opts);
    const { stack, network, protect } = args;
    const specs = subnetSpecs(network);

    this.network = new hcloud.Network(
      name,
      {
        name: displayName(stack, network.name),
        ipRange: network.ipRange,
        labels: resourceLabels(stack, "network", network.labels),
        deleteProtection: protect,
      },
      { parent: this, protect },
    );
    const networkId = this.network.id.apply(Number);
    const subnets = new Map<string, hcloud.NetworkSubnet>();
    for (const spec of specs) {
      subnets.set(
        spec.ipRange,
        new hcloud.NetworkSubnet(
          childName(name, "subnet", spec.key),
          { networkId, type: "cloud", networkZone: args.networkZone, ipRange: spec.ipRange },
          attachmentOptions(protect, this),
        ),
      );
    }
    this.subnets = subnets;
    this.registerOutputs({ networkId: this.network.id });
  }
}
