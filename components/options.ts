// Resource options, built here because Pulumi's mocks never see them (protect,
// ignoreChanges, deletedWith, dependsOn): these functions are what the tests check.
// No runtime Pulumi import: types only.
import type { CustomResourceOptions, Resource } from "@pulumi/pulumi";

/**
 * A change to any of these replaces a Hetzner server, and with it its disks and IPs. They
 * only matter at first boot: cloud-init is kept minimal and stable, and everything that
 * changes is pushed over SSH. A rebuild is an explicit `pulumi up --replace <urn>`.
 * sshKeys is here as well because a rotated deploy key would otherwise replace every server.
 */
export const SERVER_IGNORE_CHANGES: readonly string[] = ["userData", "sshKeys", "image"];

/** Options of a stateful resource that a prod stack must not lose by accident. */
export function protectedOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect };
}

export function serverOptions(protect: boolean, parent: Resource): CustomResourceOptions {
  return { parent, protect, ignoreChanges: [...SERVER_IGNORE_CHANGES] };
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
 * The route fragment an attached stack pushes to another stack's LB. Never deletedWith:
 * its delete is what removes the routes from the LB when the attached stack is destroyed.
 */
export function fragmentOptions(parent: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  return { parent, dependsOn: [...dependsOn] };
}
