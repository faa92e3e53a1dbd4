// What the bench reads from /proc: a core's busy time, the CPU time and resident memory of an
// engine's whole process group (HAProxy's and nginx's master and workers, Node's threads).
import { readdirSync, readFileSync } from "node:fs";

const USER_HZ = 100;

/**
 * One CPU's time since boot, µs: busy (every state but idle and iowait), and the part spent in
 * processes (user, nice, system) rather than interrupts, which the engine's own CPU time should
 * account for when nothing else runs there.
 */
export function coreTimes(cpu: number): { busyUs: number; taskUs: number; totalUs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) throw new Error(`no cpu${cpu} in /proc/stat`);
  const [user, nice, system, idle, iowait, irq, softirq] = line.trim().split(/\s+/).slice(1, 8).map(Number) as number[];
  const toUs = (ticks: number): number => (ticks * 1e6) / USER_HZ;
  // Not steal: time the hypervisor gave elsewhere is no work of the engine's.
  const busy = user! + nice! + system! + irq! + softirq!;
  return { busyUs: toUs(busy), taskUs: toUs(user! + nice! + system!), totalUs: toUs(busy + idle! + iowait!) };
}

/** The CPU ids this process may run on (a container may allow 2-3, not 0-1). */
export function allowedCpus(): number[] {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (m === null) throw new Error("no Cpus_allowed_list in /proc/self/status");
  return m[1]!.split(",").flatMap((part) => {
    const [a, b] = part.split("-").map(Number) as [number, number | undefined];
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/** Every process in `pgid`'s process group (a ManagedProcess leads its own group). */
export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 5 is the process group; the command name (field 2) may hold spaces and parens.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return pids;
}

/** On-CPU time of every thread of `pids`, µs (schedstat: nanoseconds, not ticks). */
export function cpuTimeUs(pids: readonly number[]): number {
  let ns = 0;
  for (const pid of pids) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // thread ended
      }
    }
  }
  return ns / 1000;
}

/** Summed VmRSS of `pids`, KiB. */
export function residentKiB(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kib;
}

export interface CpuWindow {
  /** Engine core busy µs over the window, or null when the engine is not pinned to one core. */
  readonly coreBusyUs: number | null;
  /** Of which in processes, not interrupts. */
  readonly coreTaskUs: number | null;
  readonly processUs: number;
  readonly wallUs: number;
}

/** Starts a measurement window over an engine's processes (and its core, when pinned). */
export function startCpuWindow(pgid: number | null, core: number | null): () => CpuWindow {
  const pids = () => (pgid === null ? [] : groupPids(pgid));
  const core0 = core === null ? null : coreTimes(core);
  const proc0 = cpuTimeUs(pids());
  const wall0 = performance.now();
  return () => {
    const core1 = core === null ? null : coreTimes(core);
    return {
      coreBusyUs: core0 === null || core1 === null ? null : core1.busyUs - core0.busyUs,
      coreTaskUs: core0 === null || core1 === null ? null : core1.taskUs - core0.taskUs,
      processUs: cpuTimeUs(pids()) - proc0,
      wallUs: (performance.now() - wall0) * 1000,
    };
  };
}
