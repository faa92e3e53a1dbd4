// Pushes one host's rendered bundle and secret files over SSH and runs the on-host apply.
//
//   boot     waits for cloud-init, once per server; after the private networks are attached
//   bundle   copies .pulumi-bundles/<stack>/<host>/<hash>/ to /srv/ingress/incoming/<hash>/
//   secrets  writes /srv/ingress/secrets/* from stdin (never logged, never an argument)
//   apply    apply.sh --bundle ... --role ...: validate, swap, reload, roll back; then prunes
//            bundles older than a day from incoming/
//
// `triggers: [hash, server id]` replaces bundle and apply whenever the bundle's content or
// the server changes, so a host whose files did not change is not touched, and a new server
// gets everything. Every step is deletedWith the server: its
// teardown is the server's deletion, and an SSH delete against a gone host would fail.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "../topology";
import { applyCommand, DEPLOY_USER, hostKeyFromBootOutput, INCOMING_DIR, pruneIncomingCommand, secretPayload, secretsChangedCommand, waitForBootCommand, writeSecretsCommand } from "./deploy/deploy-commands";
import { childName } from "./deploy/names";
import { dialErrorLimitFor, SSH_DIAL_BUDGET_MS } from "./deploy/ssh-retry";
import type { CustomResourceOptions, Resource } from "@pulumi/pulumi";
import { secretFileContents, type AttachedKeys, type SecretLookup } from "./secret-files";

/**
 * A deploy step on a host: it goes away with the host's server without being run (its
 * delete would fail once the server is gone), and it waits for what must exist first.
 */
function deployStepOptions(parent: Resource, server: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  return { parent, deletedWith: server, dependsOn: [...dependsOn] };
}

/** A step that handles secrets: Pulumi stores its stdin, stdout and stderr encrypted. */
function secretStepOptions(parent: Resource, server: Resource, dependsOn: readonly Resource[]): CustomResourceOptions {
  return { ...deployStepOptions(parent, server, dependsOn), additionalSecretOutputs: ["stdin", "stdout", "stderr"] };
}
import type { HostServer } from "./server";

export interface HostDeployArgs {
  readonly host: HostPlan;
  readonly server: HostServer;
  readonly privateKey: pulumi.Input<string>;
  readonly bundle: { readonly hash: string; readonly localDir: string };
  readonly lookupSecret: SecretLookup;
  /** The LB: attached stacks' routes keys, which its sshd accepts for their routes only. */
  readonly attachedKeys?: AttachedKeys;
}

/**
 * A fresh server answers SSH a minute or so after creation: keep dialling for SSH_DIAL_BUDGET_MS.
 * With `hostKey`, only a server that shows that key is talked to (a changed key fails the step
 * with "ssh: handshake failed: ssh: host key mismatch"); without it, the first contact.
 */
export function sshConnection(host: pulumi.Input<string>, privateKey: pulumi.Input<string>, hostKey?: pulumi.Input<string>): command.types.input.remote.ConnectionArgs {
  return { host, user: DEPLOY_USER, privateKey, dialErrorLimit: dialErrorLimitFor(SSH_DIAL_BUDGET_MS), perDialTimeout: 15, ...(hostKey === undefined ? {} : { hostKey }) };
}

export class HostDeploy extends pulumi.ComponentResource {
  readonly boot: command.remote.Command;
  readonly bundle: command.remote.CopyToRemote;
  readonly secrets?: command.remote.Command;
  readonly apply: command.remote.Command;
  /** The server's host key, recorded by the boot step: every later step pins it. */
  readonly hostKey: pulumi.Output<string>;

  constructor(name: string, args: HostDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ingress:hetzner:HostDeploy", name, {}, opts);
    const { host, server, bundle } = args;
    const connection = sshConnection(server.ipv4, args.privateKey);
    const attached = [...server.attachments.values()];
    // Every step names the server in its triggers: a replaced server is a new machine that
    // needs each step run again (CopyToRemote, in particular, copies again only on a trigger,
    // a new source or a new remote path, never because its connection's host changed).
    const serverId = server.server.id;
    // Debian's sshd refuses the PULUMI_COMMAND_* variables this would send, and logs it.
    const noEnv = { addPreviousOutputInEnv: false } as const;

    this.boot = new command.remote.Command(
      childName(name, "boot"),
      { connection, create: waitForBootCommand(), triggers: [serverId], ...noEnv },
      deployStepOptions(this, server.server, attached),
    );

    this.hostKey = this.boot.stdout.apply(hostKeyFromBootOutput);
    const pinned = sshConnection(server.ipv4, args.privateKey, this.hostKey);

    this.bundle = new command.remote.CopyToRemote(
      childName(name, "bundle"),
      { connection: pinned, source: new pulumi.asset.FileArchive(bundle.localDir), remotePath: INCOMING_DIR, triggers: [bundle.hash, serverId] },
      deployStepOptions(this, server.server, [this.boot]),
    );

    const secretFiles = secretFileContents(name, host, args.lookupSecret, this, args.attachedKeys);
    if (secretFiles) {
      const write = writeSecretsCommand();
      this.secrets = new command.remote.Command(
        childName(name, "secrets"),
        {
          connection: pinned,
          create: write,
          // A changed secret (stdin) runs update: rewrite, then let running services see it.
          update: `${write} && ${secretsChangedCommand(host)}`,
          stdin: pulumi.secret(secretFiles.apply((files) => secretPayload(files))),
          logging: "none",
          triggers: [serverId],
          ...noEnv,
        },
        secretStepOptions(this, server.server, [this.boot]),
      );
    }

    this.apply = new command.remote.Command(
      childName(name, "apply"),
      { connection: pinned, create: `${applyCommand({ kind: "bundle", hash: bundle.hash, role: host.role })} && ${pruneIncomingCommand(bundle.hash)}`, triggers: [bundle.hash, serverId], ...noEnv },
      // Its output is validators' output: secret in the state, whatever apply.sh already masks.
      secretStepOptions(this, server.server, this.secrets ? [this.bundle, this.secrets] : [this.bundle]),
    );
    this.registerOutputs({ hash: bundle.hash, hostKey: this.hostKey });
  }
}
