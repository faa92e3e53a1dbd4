// Runs a probe script on a host over SSH as root with the stack's deploy key: the script on
// stdin, never on the command line. The LB's host key is pinned (an output of the owning stack);
// a web server's is taken on first contact into a throwaway known_hosts: the doctor only reads,
// and the key it authenticates with never leaves this machine.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SshTarget {
  readonly ip: string;
  readonly privateKey: string;
  readonly hostKey?: string;
}

export interface RemoteResult {
  readonly ok: boolean;
  readonly stdout: string;
  /** When the host ran it, as seen here (the middle of the call, epoch s): what its clock is compared with. */
  readonly atS: number;
  /** Why it did not run: ssh's own words. */
  readonly error?: string;
}

/** Key directories still on disk: removed on the way out, however the doctor ends. */
const live = new Set<string>();
const removeAll = () => {
  for (const d of live) rmSync(d, { recursive: true, force: true });
  live.clear();
};
process.once("exit", removeAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    removeAll();
    process.exit(130);
  });
}

const MAX_OUTPUT = 16 * 1024 * 1024;

export function runProbe(t: SshTarget, script: string, timeoutMs = 60_000): Promise<RemoteResult> {
  // The key lives in a 0700 directory under the runtime dir when there is one (not a shared /tmp).
  const dir = mkdtempSync(join(process.env["XDG_RUNTIME_DIR"] ?? tmpdir(), "doctor-ssh-"));
  live.add(dir);
  const started = Date.now();
  const key = join(dir, "key");
  const known = join(dir, "known_hosts");
  writeFileSync(key, t.privateKey.endsWith("\n") ? t.privateKey : `${t.privateKey}\n`, { mode: 0o600 });
  const opts = ["-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=8", "-o", "LogLevel=ERROR", "-o", `UserKnownHostsFile=${known}`];
  if (t.hostKey !== undefined) {
    writeFileSync(known, `${t.ip} ${t.hostKey.trim()}\n`);
    opts.push("-o", "StrictHostKeyChecking=yes", "-o", `HostKeyAlgorithms=${t.hostKey.trim().split(" ")[0]}`);
  } else {
    opts.push("-o", "StrictHostKeyChecking=accept-new");
  }
  return new Promise((resolve) => {
    const child = spawn("ssh", [...opts, `root@${t.ip}`, "bash -s"], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    // A host that floods its output is cut off: the doctor reads what it asked for, nothing more.
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString("utf8");
      if (stdout.length > MAX_OUTPUT) child.kill("SIGKILL");
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8").slice(0, 65536)));
    let settled = false;
    const finish = (r: Omit<RemoteResult, "atS">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      live.delete(dir);
      resolve({ ...r, atS: Math.floor((started + Date.now()) / 2000) });
    };
    child.on("error", (e) => finish({ ok: false, stdout: "", error: `ssh: ${e.message}` }));
    // ssh may end before reading the whole script (a refused key, a host key mismatch).
    child.stdin.on("error", () => undefined);
    child.on("close", (code, signal) => {
      if (code === 0) finish({ ok: true, stdout });
      else finish({ ok: false, stdout, error: signal ? `no answer within ${timeoutMs / 1000} s, or more output than ${MAX_OUTPUT} bytes` : stderr.trim().split("\n").slice(-2).join(" ") || `ssh exited ${code}` });
    });
    child.stdin.end(script);
  });
}
