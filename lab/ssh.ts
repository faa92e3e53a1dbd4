import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run, type RunOptions, type RunResult } from "./command";
import { waitForListening } from "./daemons";
import type { Netns } from "./netns";
import type { ManagedProcess } from "./process";
import type { Sandbox } from "./sandbox";

export interface SshKeys {
  readonly dir: string;
  readonly hostKeyPath: string;
  /** "ssh-ed25519 AAAA..." without a comment, as a pinned host key is given. */
  readonly hostPublicKey: string;
  readonly clientKeyPath: string;
  readonly clientPublicKey: string;
  readonly authorizedKeysPath: string;
  readonly knownHostsPath: string;
}

async function keygen(path: string, comment: string): Promise<string> {
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
  const pub = (await readFile(`${path}.pub`, "utf8")).trim();
  return pub.split(" ").slice(0, 2).join(" ");
}

/** A throwaway host key and client key, made at test time in `dir`; never committed. */
export async function generateSshKeys(dir: string): Promise<SshKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const hostKeyPath = join(dir, "ssh_host_ed25519_key");
  const clientKeyPath = join(dir, "client_ed25519");
  const hostPublicKey = await keygen(hostKeyPath, "sandbox-host");
  const clientPublicKey = await keygen(clientKeyPath, "sandbox-client");
  const authorizedKeysPath = join(dir, "authorized_keys");
  await writeFile(authorizedKeysPath, `${clientPublicKey}\n`, { mode: 0o600 });
  return { dir, hostKeyPath, hostPublicKey, clientKeyPath, clientPublicKey, authorizedKeysPath, knownHostsPath: join(dir, "known_hosts") };
}

export interface SshServer {
  readonly process: ManagedProcess;
  readonly ns: Netns;
  readonly address: string;
  readonly port: number;
  readonly keys: SshKeys;
}

export function sshdConfig(keys: SshKeys, address: string, port: number): string {
  return [
    `ListenAddress ${address.includes(":") ? `[${address}]` : address}:${port}`,
    `HostKey ${keys.hostKeyPath}`,
    `PidFile ${keys.dir}/sshd.pid`,
    `AuthorizedKeysFile ${keys.authorizedKeysPath}`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    // No PAM: there is no login session machinery to talk to in a namespace.
    "UsePAM no",
    // The keys live under /tmp, which is world-writable (sticky); StrictModes
    // would refuse the authorized_keys file for that alone.
    "StrictModes no",
    "LogLevel VERBOSE",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "",
  ].join("\n");
}

/**
 * Runs `sshd -D -e` in `ns`, listening on `address:port`, letting in root
 * with the throwaway client key only.
 */
export async function startSshd(
  sb: Sandbox,
  ns: Netns,
  options: { readonly address: string; readonly port?: number; readonly name?: string },
): Promise<SshServer> {
  const port = options.port ?? 22;
  const name = options.name ?? "sshd";
  const keys = await generateSshKeys(await sb.subdir(`${ns.host}-${name}`));
  const configPath = join(keys.dir, "sshd_config");
  await writeFile(configPath, sshdConfig(keys, options.address, port), { mode: 0o600 });
  // sshd's privilege-separation directory; shared by every sshd on the machine, so never removed.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  // sshd re-execs itself and insists on an absolute path.
  const process = await ns.spawn(name, ["/usr/sbin/sshd", "-D", "-e", "-f", configPath]);
  await waitForListening(ns, [{ port, address: options.address }], { process });
  return { process, ns, address: options.address, port, keys };
}

export type HostKeyPolicy =
  /** Trust on first use, as an operator's first `ssh` does; the key is remembered. */
  | "accept-new"
  /** Only the server's known key is accepted, as a deploy with a pinned hostKey does. */
  | "pinned";

/** The ssh argv up to and including the destination; append the remote command. */
export async function sshArgv(server: SshServer, policy: HostKeyPolicy = "accept-new", user = "root"): Promise<string[]> {
  const k = server.keys;
  if (policy === "pinned") {
    const host = server.port === 22 ? server.address : `[${server.address}]:${server.port}`;
    await writeFile(k.knownHostsPath, `${host} ${k.hostPublicKey}\n`, { mode: 0o600 });
  }
  return [
    "ssh", "-F", "/dev/null",
    "-i", k.clientKeyPath, "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", `StrictHostKeyChecking=${policy === "pinned" ? "yes" : "accept-new"}`,
    "-o", `UserKnownHostsFile=${k.knownHostsPath}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
    "-p", String(server.port),
    `${user}@${server.address}`,
  ];
}

/** Runs `command` on `server` over real ssh, from inside the namespace `from`. */
export async function sshRun(
  from: Netns,
  server: SshServer,
  command: string,
  options: RunOptions & { readonly hostKey?: HostKeyPolicy } = {},
): Promise<RunResult> {
  const argv = await sshArgv(server, options.hostKey);
  return from.exec([...argv, command], { timeoutMs: 15_000, ...options });
}
