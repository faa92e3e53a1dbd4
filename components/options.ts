// Resource options, built here because Pulumi's mocks never see them (protect,
// ignoreChanges, deletedWith, dependsOn): these functions are what the tests check.
// No runtime Pulumi import: types only.
import type { CustomResourceOptions, Resource } from "@pulumi/pulumi";

/**
 * A change to any of these replaces a Hetzner server, and with it its disk (the provider
 * marks them ForceNew; see test/components/lifecycle/provider-schema.ts). They only matter at
 * first boot: cloud-init is kept minimal and stable, and everything that changes is pushed
 * over SSH. A rebuild or a move is an explicit `pulumi up --replace <urn>` (docs/deploy.md).
 * sshKeys is here as well because a rotated deploy key would otherwise replace every server.
 * `serverType` too: the provider resizes in place but powers the server off for it and does
 * not power it on again (terraform-provider-hcloud internal/server/resource.go, v1.68.0), so
 * a config edit would leave the LB or a web server off. docs/deploy.md gives both ways to
 * resize on purpose.
 */
export const SERVER_IGNORE_CHANGES: readonly string[] = ["userData", "sshKeys", "image", "location", "serverType"];

/** Options of a stateful resource that a prod stack must not lose by accident. */
export function protectedOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect };
}

/**
 * Delete first: a server's name and its private IPs are unique, so a create-first
 * replacement (the engine's default, and what a targeted `--replace` does) would fail.
 */
export function serverOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect, deleteBeforeReplace: true, ignoreChanges: [...SERVER_IGNORE_CHANGES] };
}

/**
 * A ServerNetwork or a NetworkSubnet: replaced delete first. Created first, a new
 * ServerNetwork finds the server already attached, which the provider accepts and records
 * under the same id, and the old one's delete then detaches the server; a new subnet would
 * overlap the old one's range.
 */
export function attachmentOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect, deleteBeforeReplace: true };
}

/**
 * The LB's primary IPs outlive its server, so a rebuild keeps the addresses DNS points at.
 * Their location is ignored like the server's: a move is an explicit replace.
 */
export function primaryIpOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect, ignoreChanges: ["location"] };
}

/** Hetzner's own protection, driven by the same switch; the API wants both equal on servers. */
export function serverProtection(protect: boolean): { deleteProtection: boolean; rebuildProtection: boolean } {
  return { deleteProtection: protect, rebuildProtection: protect };
}

/**
 * A deploy step on a host: it goes away with the host's server without being run (its
 * delete would fail once the server is gone), and it waits for what must exist first.
 */
export function deployStepOptions(parent: Resource, server: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  return { parent, deletedWith: server, dependsOn: [...dependsOn] };
}

/** Outputs of a command that handles secrets: Pulumi stores them encrypted. */
export const SECRET_COMMAND_OUTPUTS: readonly string[] = ["stdin", "stdout", "stderr"];

export function secretStepOptions(parent: Resource, server: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  return { ...deployStepOptions(parent, server, dependsOn), additionalSecretOutputs: [...SECRET_COMMAND_OUTPUTS] };
}

/**
 * The routes an attached stack pushes to another stack's LB. Never deletedWith: its delete
 * is what removes the routes from the LB when the attached stack is destroyed. Delete first
 * on a replacement (a new LB or another owning stack): the old LB loses the routes before the
 * new one gets them, and a create-first replacement's late delete would remove the fresh ones.
 */
export function fragmentOptions(parent: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  // stdout and stderr are the LB's validators' output: stored encrypted.
  return { parent, deleteBeforeReplace: true, dependsOn: [...dependsOn], additionalSecretOutputs: ["stdout", "stderr"] };
}
