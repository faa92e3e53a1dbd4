// An attached ingress: this stack's routes on another stack's LB.
//
//   owner     StackReference to the stack that owns the LB; its outputs (OWNER_OUTPUTS) give
//             the LB's server id, addresses, host key and this stack's routes key (secret)
//   network   ServerNetwork putting that LB into this stack's network at the configured IP
//   routes    this stack's routes as data (hostnames, backends, servers), sent on stdin to the
//             LB's forced command; the LB checks them against its owner's policy and renders
//             the config itself, so nothing this stack sends is ever read as config
//
// All three belong to this stack: `pulumi destroy` here runs the routes' delete
// (apply.sh --remove-routes <stack>, which rebuilds and reloads the LB) and then detaches the LB from
// this network, and the owning stack never notices. Destroy attached stacks before their owner.
//
// The routes name the LB (its server id) and the owning stack in their triggers, with
// delete-first replacement: moving to another owner, or a rebuilt LB, first removes the routes
// from the old LB (over its old connection; a rebuilt LB keeps its primary IPs, so that is the
// new server, where the removal finds nothing and succeeds), then adds them to the new one.
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { bundleHash, renderRoutesData } from "../render/stack";
import type { AttachPlan, NetworkConfig } from "../topology";
import { ATTACHED_ADD, ATTACHED_REMOVE } from "./deploy/deploy-commands";
import { sshConnection } from "./host-deploy";
import { childName } from "./deploy/names";
import { subnetFor } from "./deploy/network-plan";
import { OWNER_OUTPUTS, stackReferenceName } from "./deploy/outputs";
import { attachmentOptions, type PrivateNetwork } from "./private-network";

/** This stack's routes key from the owner's `routesKeys` output, or what to do when it is not there. */
export function routesKeyOf(owner: string, stack: string, keys: unknown): string {
  const key = typeof keys === "object" && keys !== null ? (keys as Record<string, unknown>)[stack] : undefined;
  if (typeof key !== "string" || key === "") {
    throw new Error(`stack ${owner} does not let stack ${stack} attach: add "${stack}" to its ingress.attachedStacks and run \`pulumi up\` on ${owner}, then here`);
  }
  return key;
}

export interface IngressAttachmentArgs {
  readonly stack: string;
  readonly attach: AttachPlan;
  readonly networks: readonly NetworkConfig[];
  readonly privateNetworks: ReadonlyMap<string, PrivateNetwork>;
  /** The organization and project a bare `ingress.stack` name is resolved in. */
  readonly organization: string;
  readonly project: string;
  /** The routes go live once these exist (the deploys of this stack's servers). */
  readonly after: readonly pulumi.Resource[];
  readonly protect: boolean;
}

export class IngressAttachment extends pulumi.ComponentResource {
  readonly owner: pulumi.StackReference;
  /** The StackReference name, "<org>/<project>/<stack>". */
  readonly ownerName: string;
  readonly network: hcloud.ServerNetwork;
  readonly routes: command.remote.Command;
  readonly lbIpv4: pulumi.Output<string>;
  readonly lbIpv6: pulumi.Output<string>;
  readonly statsUrl: pulumi.Output<string | undefined>;
  /** The owner's engine, for this stack's outputs; the routes pushed do not depend on it. */
  readonly engine: pulumi.Output<string>;
  readonly fragmentHash: pulumi.Output<string>;

  constructor(name: string, args: IngressAttachmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:IngressAttachment", name, {}, opts);
    const { attach, stack } = args;

    this.ownerName = stackReferenceName(attach.stack, args.organization, args.project);
    this.owner = new pulumi.StackReference(childName(name, "owner"), { name: this.ownerName }, { parent: this });
    const out = (key: keyof typeof OWNER_OUTPUTS) => this.owner.requireOutput(OWNER_OUTPUTS[key]);
    this.lbIpv4 = out("ipv4").apply(String);
    this.lbIpv6 = out("ipv6").apply(String);
    this.engine = out("engine").apply(String);
    this.statsUrl = this.owner.getOutput(OWNER_OUTPUTS.statsUrl).apply((v: unknown) => (typeof v === "string" ? v : undefined));
    // Secret in the owner's outputs already; wrapped again because a StackReference only
    // knows that once it has read them.
    const lbKey = pulumi.secret(out("routesKeys").apply((keys: unknown) => routesKeyOf(attach.stack, stack, keys)));

    const subnet = subnetFor(args.networks, attach.network, attach.ip);
    const subnetResource = args.privateNetworks.get(attach.network)?.subnets.get(subnet.ipRange);
    if (!subnetResource) throw new Error(`ingress.network "${attach.network}" subnet ${subnet.ipRange} is not in this stack`);
    this.network = new hcloud.ServerNetwork(
      childName(name, "network", attach.network),
      { serverId: out("serverId").apply(Number), subnetId: subnetResource.id, ip: attach.ip, aliasIps: [] },
      attachmentOptions(args.protect, this),
    );

    const data = renderRoutesData(attach.fragment);
    this.fragmentHash = pulumi.output(bundleHash([data]));
    // Pinned to the host key the owner recorded at the LB's first boot.
    const connection = sshConnection(this.lbIpv4, lbKey, out("hostKey").apply(String));
    // The LB's sshd runs `apply.sh --attached <stack>` for this key whatever is asked; the
    // command asked for (SSH_ORIGINAL_COMMAND) only says which of the two it is.
    const add = ATTACHED_ADD;
    this.routes = new command.remote.Command(
      childName(name, "routes"),
      {
        connection,
        // New routes change stdin, which runs `update` (the same push) in place.
        create: add,
        update: add,
        delete: ATTACHED_REMOVE,
        stdin: data.content,
        triggers: [out("serverId").apply(String), this.ownerName],
        addPreviousOutputInEnv: false,
      },
      // Never deletedWith: its delete is what removes the routes from the LB when this stack
      // is destroyed. Delete first on a replacement (a new LB or another owning stack): the old
      // LB loses the routes before the new one gets them. stdout and stderr are the LB's
      // checkers' output: stored encrypted.
      { parent: this, deleteBeforeReplace: true, dependsOn: [this.network, ...args.after], additionalSecretOutputs: ["stdout", "stderr"] },
    );
    this.registerOutputs({ lbIpv4: this.lbIpv4, fragmentHash: this.fragmentHash });
  }
}
