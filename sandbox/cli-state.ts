// The CLI's record of a running sandbox: `up` starts a supervisor process that owns the
// sandbox (its namespaces carry that process's pid) and writes this file; `test` and `down`
// find the sandbox through it.
import { readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Engine } from "../topology";
import type { SandboxStacks } from "./ingress-plan";
import { SANDBOX_RUN_DIR } from "./mount-points";

export const STATE_FILE = join(SANDBOX_RUN_DIR, "state.json");
export const CONTROL_SOCKET = join(SANDBOX_RUN_DIR, "control.sock");
export const SUPERVISOR_LOG = join(SANDBOX_RUN_DIR, "supervisor.log");

export interface SandboxState {
  readonly version: 1;
  readonly status: "starting" | "ready" | "failed";
  readonly supervisorPid: number;
  readonly stacks: SandboxStacks;
  readonly engine: Engine;
  readonly startedAt: string;
  readonly error?: string;
  /** Every namespace of the run starts with this. */
  readonly namePrefix?: string;
  /** The run's temp dir: host roots, certificates, logs. */
  readonly dir?: string;
  /** IG_SANDBOX_KEEP=1 was set: the temp dir outlives `down` on purpose. */
  readonly keepFiles?: boolean;
  /** Namespace name by role. */
  readonly namespaces?: Readonly<Record<string, string>>;
  /** Daemon pid by name, e.g. "loadbalancer/haproxy". */
  readonly pids?: Readonly<Record<string, number>>;
  /** What `up` prints. */
  readonly summary?: readonly string[];
}

export function readState(): SandboxState | undefined {
  try {
    const s = JSON.parse(readFileSync(STATE_FILE, "utf8")) as SandboxState;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a temp name and renamed, so a reader never sees half a file. */
export function writeState(s: SandboxState): void {
  mkdirSync(SANDBOX_RUN_DIR, { recursive: true, mode: 0o700 });
  const tmp = `${STATE_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, STATE_FILE);
}

export function removeState(): void {
  rmSync(STATE_FILE, { force: true });
  rmSync(CONTROL_SOCKET, { force: true });
}
