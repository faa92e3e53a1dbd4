// An attached ingress: this stack's routes on another stack's LB.
//
//   owner     StackReference to the stack that owns the LB; its outputs (OWNER_OUTPUTS) give
//             the LB's server id, addresses, route settings and its deploy key (secret)
//   network   ServerNetwork putting that LB into this stack's network at the configured IP
//   routes    the fragment (_routes-for-<owner>) copied to the LB and applied with its apply.sh
//
// All three belong to this stack: `pulumi destroy` here runs the routes' delete
// (apply.sh --remove-routes <stack>, which rebuilds and reloads the LB) and then detaches the LB from
// this network, and the owning stack never notices. Destroy attached stacks before their owner.
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { renderAttachedRoutes, stackOfReference, type LbSettings } from "../render/bundle";
import type { AttachPlan, NetworkConfig } from "../topology";
import { writeRoutesBundle } from "./bundle-dir";
import { applyCommand, INCOMING_DIR } from "./deploy-commands";
import { sshConnection } from "./host-deploy";
import { childName } from "./names";
import { subnetFor } from "./network-plan";
import { fragmentOptions, protectedOptions } from "./options";
import { OWNER_OUTPUTS } from "./outputs";
import type { PrivateNetwork } from "./private-network";
import { parseLbSettings } from "./lb-settings";

export interface IngressAttachmentArgs {
  readonly stack: string;
  readonly attach: AttachPlan;
  readonly networks: readonly NetworkConfig[];
  readonly privateNetworks: ReadonlyMap<string, PrivateNetwork>;
  /** Where the fragment's local bundle is written (see bundle-dir.ts). */
  readonly bundleRoot: string;
  /** The routes go live once these exist (the deploys of this stack's servers). */
  readonly after: readonly pulumi.Resource[];
  readonly protect: boolean;
}

export class IngressAttachment extends pulumi.ComponentResource {
  readonly owner: pulumi.StackReference;
  readonly network: hcloud.ServerNetwork;
  readonly routesBundle: command.remote.CopyToRemote;
  readonly routes: command.remote.Command;
  readonly lbIpv4: pulumi.Output<string>;
  readonly lbIpv6: pulumi.Output<string>;
  readonly settings: pulumi.Output<LbSettings>;
  readonly statsUrl: pulumi.Output<string | undefined>;
  readonly fragmentHash: pulumi.Output<string>;

  constructor(name: string, args: IngressAttachmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:IngressAttachment", name, {}, opts);
    const { attach, stack } = args;

    this.owner = new pulumi.StackReference(childName(name, "owner"), { name: attach.stack }, { parent: this });
    const out = (key: keyof typeof OWNER_OUTPUTS) => this.owner.requireOutput(OWNER_OUTPUTS[key]);
    this.lbIpv4 = out("ipv4").apply(String);
    this.lbIpv6 = out("ipv6").apply(String);
    this.settings = out("routeSettings").apply((value: unknown) => parseLbSettings(attach.stack, value));
    this.statsUrl = this.owner.getOutput(OWNER_OUTPUTS.statsUrl).apply((v: unknown) => (typeof v === "string" ? v : undefined));
    // Secret in the owner's outputs already; wrapped again because a StackReference only
    // knows that once it has read them.
    const lbKey = pulumi.secret(out("deployPrivateKey").apply(String));

    const subnet = subnetFor(args.networks, attach.network, attach.ip);
    const subnetResource = args.privateNetworks.get(attach.network)?.subnets.get(subnet.ipRange);
    if (!subnetResource) throw new Error(`ingress.network "${attach.network}" subnet ${subnet.ipRange} is not in this stack`);
    this.network = new hcloud.ServerNetwork(
      childName(name, "network", attach.network),
      { serverId: out("serverId").apply(Number), subnetId: subnetResource.id, ip: attach.ip, aliasIps: [] },
      protectedOptions(args.protect, this),
    );

    // The fragment depends on the owner's engine and settings, known once the reference is read.
    const bundle = this.settings.apply((settings) => {
      return writeRoutesBundle(args.bundleRoot, stack, `_routes-for-${stackOfReference(attach.stack)}`, renderAttachedRoutes(attach.fragment, settings));
    });
    this.fragmentHash = bundle.hash;
    const connection = sshConnection(this.lbIpv4, lbKey);

    this.routesBundle = new command.remote.CopyToRemote(
      childName(name, "routes-bundle"),
      {
        connection,
        source: bundle.localDir.apply((dir) => new pulumi.asset.FileArchive(dir)),
        remotePath: INCOMING_DIR,
        triggers: [bundle.hash],
      },
      fragmentOptions(this, [this.network]),
    );
    const add = bundle.hash.apply((hash) => applyCommand({ kind: "routes", hash, stack }));
    this.routes = new command.remote.Command(
      childName(name, "routes"),
      {
        connection,
        // No triggers here: a replacement would run the old resource's delete after the new
        // create and take the fresh routes away again. A changed hash changes `create`, which
        // runs `update` (the same --routes) in place; only a destroy runs `delete`.
        create: add,
        update: add,
        delete: applyCommand({ kind: "remove-routes", stack }),
      },
      fragmentOptions(this, [this.network, this.routesBundle, ...args.after]),
    );
    this.registerOutputs({ lbIpv4: this.lbIpv4, fragmentHash: this.fragmentHash });
  }
}
