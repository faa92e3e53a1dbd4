// Every shell command that Pulumi runs on a host, built in one place so that the interface
// of the on-host apply script (files/apply.sh, docs/deploy.md) is one function to align.
// Pure: no Pulumi import.
import { STACK_NAME, type HostPlan } from "../../topology";
import { INGRESS_ROOT, QUADLET_DIR, SECRETS_DIR } from "../../topology/paths";

/** Bundles land here, one directory per bundle hash, before apply.sh stages them. */
export const INCOMING_DIR = `${INGRESS_ROOT}/incoming`;
export { APPLY_SCRIPT, INSTALLED_APPLY } from "../../render/host-bundle";
import { APPLY_SCRIPT, INSTALLED_APPLY } from "../../render/host-bundle";

export type HostRole = HostPlan["role"];

/**
 * Deploys log in as root (Hetzner installs the server's SSH keys for root), so no command
 * needs sudo, which not every Hetzner image ships. A non-root deploy user gets it prefixed.
 */
export const DEPLOY_USER = "root";
const AS_ROOT = DEPLOY_USER === "root" ? "" : "sudo ";

function checkHash(hash: string): string {
  if (!/^[0-9a-f]{16,64}$/.test(hash)) throw new Error(`bundle hash "${hash}" is not lowercase hex`);
  return hash;
}

export function incomingDir(hash: string): string {
  return `${INCOMING_DIR}/${checkHash(hash)}`;
}

export type ApplyAction =
  /** Stage, validate, swap and reload a host's own bundle. */
  | { readonly kind: "bundle"; readonly hash: string; readonly role: HostRole }
  /**
   * Put an attached stack's routes data on the LB (its routes.json, read from stdin), then
   * rebuild, validate, swap and reload it. Stdin, not an uploaded file: nothing on the LB
   * (the owner's prune of incoming/, a rebuilt LB) can take it away between a copy and a
   * retried run.
   */
  | { readonly kind: "routes"; readonly stack: string }
  /** Take an attached stack's routes off the LB and reload; run by the fragment's delete. */
  | { readonly kind: "remove-routes"; readonly stack: string };

/**
 * sshd's extra authorized_keys on the LB: one line per attached stack, its own key bound to
 * `apply.sh --attached <stack>` (`restrict`: no shell, no forwarding, no pty). Whatever command
 * the key's holder asks for arrives only as SSH_ORIGINAL_COMMAND, and apply.sh accepts
 * `routes` and `remove-routes` for that one stack.
 */
export function attachedKeysFile(keys: readonly { readonly stack: string; readonly publicKey: string }[]): string {
  return keys
    .map(({ stack, publicKey }) => {
      const key = ED25519_PUBLIC_KEY.exec(publicKey.trim());
      if (!key || key[0] !== publicKey.trim()) throw new Error(`routes key of stack ${stack} is not one ssh-ed25519 public key`);
      return `restrict,command="${attachedCommand(stack)}" ${key[0]} routes-${stack}\n`;
    })
    .join("");
}

/** The forced command of an attached stack's key. */
export function attachedCommand(stack: string): string {
  return `/bin/bash ${INSTALLED_APPLY} --attached ${stackArg(stack)}`;
}

/** What an attached stack asks its forced command for (SSH_ORIGINAL_COMMAND). */
export const ATTACHED_ADD = "routes";
export const ATTACHED_REMOVE = "remove-routes";

/** Stack names travel as arguments; apply.sh accepts the same set. */
function stackArg(stack: string): string {
  if (!STACK_NAME.test(stack)) throw new Error(`stack name "${stack}" cannot be passed to apply.sh (lowercase letters, digits, "-" and "_")`);
  return stack;
}

/** The one place that knows apply.sh's command line (docs/deploy.md, docs/apply.md). */
export function applyCommand(action: ApplyAction): string {
  switch (action.kind) {
    case "bundle": {
      const dir = incomingDir(action.hash);
      // The bundle's own script runs: a new release may ship a new apply.sh.
      return `${AS_ROOT}/bin/bash ${dir}/${APPLY_SCRIPT} --bundle ${dir} --role ${action.role}`;
    }
    case "routes":
      // The LB's installed script: the owner's version decides how its releases are built.
      return `${AS_ROOT}/bin/bash ${INSTALLED_APPLY} --routes - --stack ${stackArg(action.stack)}`;
    case "remove-routes":
      return `${AS_ROOT}/bin/bash ${INSTALLED_APPLY} --remove-routes ${stackArg(action.stack)}`;
    default: {
      const never: never = action;
      throw new Error(`unknown apply action ${JSON.stringify(never)}`);
    }
  }
}

/**
 * After secret files changed on a running host: a container that reads an env file
 * (stats.env) must restart to see it; nginx re-reads key files on reload, which apply.sh
 * --switch-certs does when a certificate changed. `try-` leaves a
 * unit that is not running alone, so this is harmless before the first deploy. A unit whose
 * Quadlet file is not installed yet is skipped: systemd answers "Unit proxy.service not
 * found." and fails the step, which is what an engine switch did (the secrets step runs
 * before the apply that installs the new engine's unit; found by the local engine).
 */
export function secretsChangedCommand(host: Pick<HostPlan, "containers">): string {
  // A job (the ACME client) reads its env file at each run: restarting it would only cut one short.
  const steps = host.containers.filter((c) => c.job === undefined).map((c) => {
    const unit = `${QUADLET_DIR}/${c.name}.container`;
    if (c.name === "nginx") {
      // New certificates: the live release's apply.sh writes what the health check says about
      // them and reloads nginx after checking the release with them (docs/apply.md); before the
      // first release there is none, and nothing of nginx's to reload either.
      return `{ test ! -e ${unit} || if test -e ${INSTALLED_APPLY}; then ${AS_ROOT}/bin/bash ${INSTALLED_APPLY} --switch-certs; else ${AS_ROOT}systemctl try-reload-or-restart nginx.service; fi; }`;
    }
    return `{ test ! -e ${unit} || ${AS_ROOT}systemctl ${c.envFile === undefined ? "try-reload-or-restart" : "try-restart"} ${c.name}.service; }`;
  });
  return steps.join(" && ");
}

/** Bundles of earlier deploys older than a day: a recent one may belong to a deploy still being retried. */
export function pruneIncomingCommand(keepHash: string): string {
  return `${AS_ROOT}find ${INCOMING_DIR} -mindepth 1 -maxdepth 1 ! -name ${checkHash(keepHash)} -mmin +1440 -exec rm -rf -- {} +`;
}

/** An OpenSSH ed25519 public key, type and base64, at the start of a line. */
const ED25519_PUBLIC_KEY = /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}/;

/** The server's SSH host key that the first contact records and every later step pins. */
export const HOST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key.pub";

/**
 * The first command on a new server. cloud-init exits 2 for "done with recoverable
 * errors" (deprecation warnings, since 23.4), which still means boot is complete; any other
 * non-zero status is a failed boot and stops the deploy with cloud-init's own account of it.
 * Its last line of output is the server's ed25519 host key (hostKeyFromBootOutput): this first
 * contact trusts the server, every later step insists on that key.
 */
export function waitForBootCommand(incoming: string = INCOMING_DIR, hostKeyFile: string = HOST_KEY_FILE): string {
  const script = [
    "set -u",
    "if command -v cloud-init >/dev/null 2>&1; then",
    "  rc=0; cloud-init status --wait >/dev/null || rc=$?",
    '  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then cloud-init status --long >&2; exit "$rc"; fi',
    "fi",
    `install -d -m 0755 ${incoming}`,
    `cat ${hostKeyFile}`,
  ].join("\n");
  return bashC(script);
}

/**
 * The host key as pulumi-command's `connection.hostKey` takes it ("ssh-ed25519 <base64>",
 * authorized_keys format; the provider then accepts that key type only). Throws with what it
 * got when the boot step printed no such line.
 */
export function hostKeyFromBootOutput(stdout: string): string {
  const line = stdout.trimEnd().split("\n").pop()?.trim() ?? "";
  const key = ED25519_PUBLIC_KEY.exec(line);
  // The key, then nothing or a comment after a space.
  if (!key || (line.length > key[0].length && line[key[0].length] !== " ")) {
    throw new Error(`the boot step printed no ed25519 host key (${HOST_KEY_FILE}) as its last line, but: ${JSON.stringify(line.slice(0, 120))}`);
  }
  return key[0];
}

/** `bash -c '<script>'` with the script single-quoted, so no character of it is special to the login shell. */
function bashC(script: string): string {
  return `${AS_ROOT}/bin/bash -c '${script.replace(/'/g, `'\\''`)}'`;
}

/** A secret file to write on the host: content arrives on stdin, never on the command line. */
export interface SecretFileContent {
  readonly path: string;
  readonly content: string;
}

/** One line per file, `<name>\t<base64 of content>`: base64 keeps newlines and any byte out of the framing. */
function filesPayload(files: readonly { readonly name: string; readonly content: string }[]): string {
  return files.map((f) => `${f.name}\t${Buffer.from(f.content, "utf8").toString("base64")}\n`).join("");
}

/** stdin of the secrets command: each file by its absolute path under `root`. */
export function secretPayload(files: readonly SecretFileContent[], root: string = SECRETS_DIR): string {
  for (const f of files) {
    if (!f.path.startsWith(`${root}/`) || f.path.includes("..") || /[\s']/.test(f.path)) {
      throw new Error(`secret file ${f.path} must be a plain path under ${root}`);
    }
  }
  return filesPayload(files.map((f) => ({ name: f.path, content: f.content })));
}

/**
 * Writes the files of `secretPayload` from stdin: mode 0600 under a 0700 root, each file
 * replaced atomically, and nothing outside `root`. No secret is ever an argument, so none
 * shows in `ps` or in Pulumi's logs of the command.
 */
export function writeSecretsCommand(root: string = SECRETS_DIR): string {
  const script = [
    "set -eu",
    "umask 077",
    `root=${root}`,
    'install -d -m 0700 "$root"',
    "while IFS=\"$(printf '\\t')\" read -r path b64; do",
    '  [ -n "$path" ] || continue',
    '  case "$path" in "$root"/*) ;; *) echo "refusing $path: not under $root" >&2; exit 1 ;; esac',
    '  case "$path" in *..*) echo "refusing $path" >&2; exit 1 ;; esac',
    '  dir=${path%/*}',
    '  install -d -m 0700 "$dir"',
    '  tmp=$(mktemp "$dir/.secret.XXXXXX")',
    '  printf %s "$b64" | base64 -d >"$tmp"',
    '  chmod 0600 "$tmp"',
    '  mv -f "$tmp" "$path"',
    "done",
  ].join("\n");
  return bashC(script);
}
