// One SSH key per stack that may attach to this stack's LB. The LB accepts each for one
// thing only, adding or removing that stack's routes (a forced command, deploy-commands.ts
// attachedKeysFile); the attached stack reads its private half from this stack's outputs
// (routesKeys, secret), so it never needs the deploy key, which is root on every server here.
import * as pulumi from "@pulumi/pulumi";
import { childName } from "./deploy/names";
import { sshKeyPair } from "./ssh-key-pair";

export class RoutesKeys extends pulumi.ComponentResource {
  /** OpenSSH public keys, by stack. */
  readonly publicKeys: ReadonlyMap<string, pulumi.Output<string>>;
  /** OpenSSH private keys by stack, one secret object. */
  readonly privateKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: { readonly stacks: readonly string[] }, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:RoutesKeys", name, {}, opts);
    const publicKeys = new Map<string, pulumi.Output<string>>();
    const privateKeys: Record<string, pulumi.Output<string>> = {};
    for (const stack of args.stacks) {
      const pair = sshKeyPair(childName(name, stack), { parent: this });
      publicKeys.set(stack, pair.publicKey);
      privateKeys[stack] = pair.privateKey;
    }
    this.publicKeys = publicKeys;
    this.privateKeys = pulumi.secret(pulumi.all(privateKeys));
    this.registerOutputs({});
  }
}
