import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";

// Read /proc directly rather than through `ip netns pids`: it works after a
// namespace's name is gone, and it works synchronously inside the exit hook.

export type ProcessState = "running" | "zombie" | "gone";

export function processState(pid: number): ProcessState {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return "gone";
  }
  // The command name may contain spaces and parentheses; the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "Z" || state === "X" ? "zombie" : "running";
}

/** A zombie has finished: it holds no socket, file or namespace any more. */
export function isLive(pid: number): boolean {
  return processState(pid) === "running";
}

/** The inode that identifies a named network namespace, as /proc/PID/ns/net shows it. */
export function netnsInode(name: string): number {
  return statSync(`/run/netns/${name}`).ino;
}

/** Live processes whose network namespace is one of `inodes`. */
export function pidsInNetns(inodes: ReadonlySet<number>): number[] {
  if (inodes.size === 0) return [];
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue; // gone, or a zombie, which has no namespaces left
    }
    const m = /^net:\[(\d+)\]$/.exec(link);
    if (m !== null && inodes.has(Number(m[1]))) found.push(Number(entry));
  }
  return found;
}

export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
