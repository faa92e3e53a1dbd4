// The LB's public addresses as Hetzner primary IPs (IPv4 and IPv6) that exist apart from
// the server: a rebuilt or replaced LB takes the same addresses back, so the DNS records
// and every attached stack's SSH connection stay valid. `autoDelete: false`, or Hetzner
// deletes them with the server they are assigned to.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { childName, displayName, resourceLabels } from "./deploy/names";

export interface PrimaryIpsArgs {
  readonly stack: string;
  /** The host whose addresses these are (the LB's config name). */
  readonly host: string;
  readonly location: string;
  readonly protect: boolean;
}

export class PrimaryIps extends pulumi.ComponentResource {
  readonly ipv4: hcloud.PrimaryIp;
  readonly ipv6: hcloud.PrimaryIp;
  /** As a server's `publicNets` wants them: IDs are strings in outputs and numbers in args. */
  readonly ipv4Id: pulumi.Output<number>;
  readonly ipv6Id: pulumi.Output<number>;

  constructor(name: string, args: PrimaryIpsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:PrimaryIps", name, {}, opts);
    const make = (type: "ipv4" | "ipv6") =>
      new hcloud.PrimaryIp(
        childName(name, type),
        {
          name: displayName(args.stack, `${args.host}-${type}`),
          type,
          location: args.location,
          assigneeType: "server",
          autoDelete: false,
          deleteProtection: args.protect,
          labels: resourceLabels(args.stack, "primary-ip"),
        },
        // They outlive the LB's server, so a rebuild keeps the addresses DNS points at. Their
        // location is ignored like the server's: a move is an explicit replace.
        { parent: this, protect: args.protect, ignoreChanges: ["location"] },
      );
    this.ipv4 = make("ipv4");
    this.ipv6 = make("ipv6");
    this.ipv4Id = this.ipv4.id.apply(Number);
    this.ipv6Id = this.ipv6.id.apply(Number);
    this.registerOutputs({ ipv4: this.ipv4.ipAddress, ipv6: this.ipv6.ipAddress });
  }
}
