// pulumi-command's remote.Command and remote.CopyToRemote as the local engine runs them: real
// ssh/scp from the operator's namespace, with the provider's connection semantics: root with
// the given private key; `hostKey` pins the server's key (a mismatch fails the step), without
// it the first contact is trusted; a refused or timed-out dial is retried up to
// `dialErrorLimit` times, each dial bounded by `perDialTimeout` seconds.
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { run, type RunResult } from "../../lab/command";
import { withScratch } from "./scratch";

export interface Connection {
  readonly host: string;
  readonly user?: string;
  readonly port?: number;
  readonly privateKey: string;
  readonly hostKey?: string;
  readonly dialErrorLimit?: number;
  readonly perDialTimeout?: number;
}

export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** What the provider reports when a command fails: its status, the command, and its output. */
export class RemoteCommandError extends Error {}

const DIAL_FAILURE = /^ssh: connect to host .*(Connection refused|Connection timed out|No route to host|Network is unreachable)|^kex_exchange_identification|Connection closed by .* port \d+\s*$/m;

function sshOptions(conn: Connection, dir: string): string[] {
  const keyFile = join(dir, "key");
  writeFileSync(keyFile, conn.privateKey.endsWith("\n") ? conn.privateKey : `${conn.privateKey}\n`, { mode: 0o600 });
  const opts = ["-i", keyFile, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", `ConnectTimeout=${conn.perDialTimeout ?? 15}`, "-o", "LogLevel=ERROR"];
  if (conn.hostKey !== undefined) {
    const known = join(dir, "known_hosts");
    writeFileSync(known, `${conn.host} ${conn.hostKey.trim()}\n`);
    opts.push("-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes", "-o", `HostKeyAlgorithms=${conn.hostKey.trim().split(" ")[0]}`);
  } else {
    opts.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
  }
  if (conn.port !== undefined) opts.push("-o", `Port=${conn.port}`);
  return opts;
}

async function withDials(conn: Connection, attempt: () => Promise<RunResult>): Promise<RunResult> {
  const limit = conn.dialErrorLimit ?? 10;
  for (let dial = 1; ; dial++) {
    const r = await attempt();
    if (!(r.code === 255 && DIAL_FAILURE.test(r.stderr)) || (limit >= 0 && dial >= limit)) return r;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Runs `command` on the host; throws RemoteCommandError on a non-zero exit, as the provider fails the step. */
export function runRemote(operatorNetns: string, conn: Connection, command: string, stdin?: string, timeoutMs = 15 * 60_000): Promise<CommandOutput> {
  return withScratch(async (dir) => {
    const argv = ["ip", "netns", "exec", operatorNetns, "ssh", ...sshOptions(conn, dir), `${conn.user ?? "root"}@${conn.host}`, command];
    const r = await withDials(conn, () => run(argv, { allowFailure: true, timeoutMs, ...(stdin !== undefined ? { input: stdin } : {}) }));
    if (r.code !== 0) {
      throw new RemoteCommandError(`Process exited with status ${r.code ?? r.signal}: running ${JSON.stringify(command.length > 300 ? `${command.slice(0, 300)}...` : command)}:\n${r.stdout}${r.stderr}`);
    }
    return { stdout: r.stdout, stderr: r.stderr };
  });
}

/** Copies a local directory into `remotePath` (it lands at remotePath/<its name>), as scp -r does. */
export function copyToRemote(operatorNetns: string, conn: Connection, localDir: string, remotePath: string): Promise<void> {
  return withScratch(async (dir) => {
    const argv = ["ip", "netns", "exec", operatorNetns, "scp", "-r", "-p", "-q", ...sshOptions(conn, dir), localDir, `${conn.user ?? "root"}@${conn.host}:${remotePath}/`];
    const r = await withDials(conn, () => run(argv, { allowFailure: true, timeoutMs: 10 * 60_000 }));
    if (r.code !== 0) throw new RemoteCommandError(`failed to copy ${basename(localDir)} to ${conn.host}:${remotePath}: ${r.stderr.trim()}`);
  });
}
