// The cloud firewall in front of one host's public interfaces: least privilege, from the
// public rules of its plan. Hetzner firewalls have no delete protection of their own, so
// the protect switch maps to Pulumi's `protect` only.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "../topology";
import { cloudFirewallRules } from "./deploy/firewall-rules";
import { displayName, resourceLabels } from "./deploy/names";

export interface HostFirewallArgs {
  readonly host: HostPlan;
  readonly protect: boolean;
}

export class HostFirewall extends pulumi.ComponentResource {
  readonly firewall: hcloud.Firewall;
  /** As a server's `firewallIds` wants it: IDs are strings in outputs and numbers in args. */
  readonly firewallId: pulumi.Output<number>;

  constructor(name: string, args: HostFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:Firewall", name, {}, opts);
    const { host, protect } = args;
    this.firewall = new hcloud.Firewall(
      name,
      {
        name: displayName(host.stack, host.name),
        labels: resourceLabels(host.stack, host.role, host.labels),
        rules: cloudFirewallRules(host),
      },
      { parent: this, protect },
    );
    this.firewallId = this.firewall.id.apply(Number);
    this.registerOutputs({ firewallId: this.firewall.id });
  }
}
