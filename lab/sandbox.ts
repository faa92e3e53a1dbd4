import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createVeth, destroyNetns, destroyNetnsSync, Netns, type VethEnd } from "./netns";
import type { ManagedProcess } from "./process";
import { isLive, netnsInode, pidsInNetns } from "./procfs";

export interface SandboxOptions {
  /** First part of every namespace and temp dir name. Default "ig". */
  readonly prefix?: string;
  /** Keep the temp dir (configs, logs) after teardown. Default: env IG_SANDBOX_KEEP=1. */
  readonly keepFiles?: boolean;
}

export interface Leftovers {
  readonly namespaces: readonly string[];
  readonly processes: readonly number[];
  readonly files: readonly string[];
}

interface Undo {
  readonly label: string;
  readonly run: () => Promise<void>;
  /** Exit-time variant: the event loop is gone, so it must not await. */
  readonly runSync: () => void;
}

const NAME_PART = /^[a-z0-9][a-z0-9-]*$/;
const DEFAULT_PREFIX = "ig";

// Module state, on purpose: one exit hook per process has to reach every
// sandbox still open, whichever test created it.
const open = new Set<Sandbox>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const sb of [...open]) sb.teardownSync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      for (const sb of [...open]) sb.teardownSync();
      // Alone, re-raise so the exit status still says which signal ended us;
      // otherwise the other listeners decide.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/**
 * One run of a topology: names everything it creates as
 * `<prefix>-<pid36>-<rand>-<host>`, remembers it, and removes it in reverse
 * order on teardown, on process exit, or on SIGINT/SIGTERM/SIGHUP. The owner
 * pid in the name lets `cleanupStale` tell a crashed run from a live one.
 */
export class Sandbox {
  private readonly undo: Undo[] = [];
  private readonly namespaces = new Map<string, Netns>();
  private readonly processes: ManagedProcess[] = [];
  private closing = false;
  private readonly names = new Set<string>();

  private constructor(
    readonly prefix: string,
    readonly runId: string,
    /** Temp dir of this run: configs, keys, certificates, logs. */
    readonly dir: string,
    readonly logDir: string,
    private readonly keepFiles: boolean,
  ) {}

  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (!NAME_PART.test(prefix)) throw new Error(`invalid sandbox prefix "${prefix}"`);
    if (process.getuid?.() !== 0) throw new Error("the sandbox needs root: it creates network namespaces");
    installExitHooks();
    const runId = `${process.pid.toString(36)}-${randomBytes(2).toString("hex")}`;
    const dir = await mkdtemp(join(tmpdir(), `${prefix}-${runId}-`));
    const logDir = join(dir, "logs");
    await mkdir(logDir);
    const keep = options.keepFiles ?? process.env["IG_SANDBOX_KEEP"] === "1";
    const sb = new Sandbox(prefix, runId, dir, logDir, keep);
    open.add(sb);
    sb.undo.push({
      label: `dir ${dir}`,
      run: async () => {
        if (keep) process.stderr.write(`sandbox files kept in ${dir}\n`);
        else await rm(dir, { recursive: true, force: true });
      },
      runSync: () => {
        if (!keep) rmSync(dir, { recursive: true, force: true });
      },
    });
    return sb;
  }

  /** Every namespace of this run starts with this. */
  get namePrefix(): string {
    return `${this.prefix}-${this.runId}-`;
  }

  async namespace(host: string): Promise<Netns> {
    this.assertOpen();
    if (!NAME_PART.test(host)) throw new Error(`invalid host name "${host}" (lowercase letters, digits, '-')`);
    if (this.namespaces.has(host)) throw new Error(`namespace for "${host}" already exists in this run`);
    const name = this.namePrefix + host;
    let inode: number | undefined;
    // Registered before creation, so a failure half-way is still cleaned up.
    this.undo.push({
      label: `netns ${name}`,
      run: async () => {
        inode ??= safeInode(name);
        if (inode !== undefined) await destroyNetns(name, inode);
      },
      runSync: () => destroyNetnsSync(name, inode ?? safeInode(name)),
    });
    const ns = await Netns.create(name, host, this);
    inode = ns.inode;
    this.namespaces.set(host, ns);
    return ns;
  }

  async veth(a: VethEnd, b: VethEnd, mtu = 1500): Promise<void> {
    this.assertOpen();
    await createVeth(a, b, mtu);
  }

  /** A fresh directory under the run's temp dir, named `label` or `label-N`. */
  async subdir(label: string): Promise<string> {
    this.assertOpen();
    const d = join(this.dir, this.claimName(`dir:${label}`).slice(4));
    await mkdir(d, { recursive: false });
    return d;
  }

  track(p: ManagedProcess): void {
    this.processes.push(p);
    this.undo.push({ label: `process ${p.name} (${p.pid})`, run: async () => void (await p.stop()), runSync: () => p.stopSync() });
  }

  /** Registers extra cleanup that runs in reverse order with the rest. */
  defer(label: string, run: () => Promise<void>, runSync: () => void = () => undefined): void {
    this.undo.push({ label, run, runSync });
  }

  /** Undoes everything in reverse order; carries on past failures and reports them all. */
  async teardown(): Promise<void> {
    this.closing = true;
    const errors: Error[] = [];
    // One step at a time, each left in the list until done, so that a signal
    // arriving half-way lets teardownSync finish the rest (steps are idempotent).
    for (let u = this.undo.at(-1); u !== undefined; u = this.undo.at(-1)) {
      try {
        await u.run();
      } catch (e) {
        errors.push(new Error(`teardown of ${u.label} failed: ${e instanceof Error ? e.message : String(e)}`));
      }
      const i = this.undo.lastIndexOf(u);
      if (i >= 0) this.undo.splice(i, 1);
    }
    open.delete(this);
    if (errors.length > 0) throw new AggregateError(errors, `sandbox ${this.runId}: ${errors.length} teardown step(s) failed`);
  }

  teardownSync(): void {
    this.closing = true;
    for (const u of this.undo.splice(0).reverse()) {
      try {
        u.runSync();
      } catch {
        // best effort: the process is exiting and has nobody to report to
      }
    }
    open.delete(this);
  }

  /** What of this run still exists. All empty after a successful teardown. */
  leftovers(): Leftovers {
    const inodes = new Set([...this.namespaces.values()].map((n) => n.inode));
    const processes = new Set(pidsInNetns(inodes));
    for (const p of this.processes) if (isLive(p.pid)) processes.add(p.pid);
    return {
      namespaces: listNetns().filter((n) => n.startsWith(this.namePrefix)),
      processes: [...processes].sort((x, y) => x - y),
      files: !this.keepFiles && existsSync(this.dir) ? [this.dir] : [],
    };
  }

  private assertOpen(): void {
    if (this.closing) throw new Error(`sandbox ${this.runId} is torn down`);
  }

  /** `base`, or `base-2`, `base-3`... if taken: a restarted daemon gets a fresh dir and log. */
  claimName(base: string): string {
    let name = base;
    for (let n = 2; this.names.has(name); n++) name = `${base}-${n}`;
    this.names.add(name);
    return name;
  }
}

function safeInode(name: string): number | undefined {
  try {
    return netnsInode(name);
  } catch {
    return undefined;
  }
}

export function listNetns(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

export interface StaleCleanup {
  readonly namespaces: readonly string[];
  readonly dirs: readonly string[];
  /** Names skipped because their owner process is still alive. */
  readonly live: readonly string[];
}

/**
 * Removes namespaces and temp dirs of earlier runs whose owner process is
 * gone (a crash, a SIGKILL). Runs of live processes are left alone, so test
 * files running in parallel do not tear each other down. A recycled pid only
 * makes a leftover survive longer; it never removes a live run's namespace.
 */
export async function cleanupStale(prefix = DEFAULT_PREFIX): Promise<StaleCleanup> {
  const owned = new RegExp(`^${prefix}-([0-9a-z]+)-[0-9a-f]{4}-`);
  const ownerAlive = (name: string): boolean | undefined => {
    const m = owned.exec(name);
    return m === null ? undefined : isLive(parseInt(m[1] ?? "", 36));
  };
  const namespaces: string[] = [];
  const dirs: string[] = [];
  const live: string[] = [];
  for (const name of listNetns()) {
    const alive = ownerAlive(name);
    if (alive === undefined) continue;
    if (alive) {
      live.push(name);
      continue;
    }
    const inode = safeInode(name);
    if (inode !== undefined) await destroyNetns(name, inode);
    namespaces.push(name);
  }
  for (const entry of readdirSync(tmpdir())) {
    if (ownerAlive(entry) === false) {
      const d = join(tmpdir(), entry);
      await rm(d, { recursive: true, force: true });
      dirs.push(d);
    }
  }
  return { namespaces, dirs, live };
}

/** Processes still inside any namespace with this prefix (a check for tests). */
export function processesInPrefixedNetns(prefix: string): number[] {
  const inodes = new Set<number>();
  for (const n of listNetns()) {
    if (!n.startsWith(prefix)) continue;
    const ino = safeInode(n);
    if (ino !== undefined) inodes.add(ino);
  }
  return pidsInNetns(inodes);
}
