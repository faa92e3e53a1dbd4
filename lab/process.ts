import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { sleepSync } from "./command";
import { isLive, killQuietly } from "./procfs";

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StopOptions {
  /** How long SIGTERM gets before SIGKILL. Default 2 s. */
  readonly graceMs?: number;
  readonly signal?: NodeJS.Signals;
}

export interface SpawnSpec {
  readonly name: string;
  readonly argv: readonly string[];
  /** stdout and stderr both go here, appended, so logs survive the process. */
  readonly logPath: string;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
}

/**
 * A long-lived child (a daemon in the foreground). It runs in its own process
 * group so that stopping it also reaches the workers it forked.
 */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly argv: readonly string[];
  /** Resolves when the process has exited, however that happened. */
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;

  private constructor(spec: SpawnSpec, pid: number, exited: Promise<ExitInfo>) {
    this.name = spec.name;
    this.argv = spec.argv;
    this.logPath = spec.logPath;
    this.pid = pid;
    this.exited = exited.then((info) => {
      this.exitInfo = info;
      return info;
    });
  }

  static start(spec: SpawnSpec): Promise<ManagedProcess> {
    const [file, ...args] = spec.argv;
    if (file === undefined) throw new Error(`${spec.name}: empty argv`);
    const fd = openSync(spec.logPath, "a");
    try {
      const child = spawn(file, args, {
        stdio: ["ignore", fd, fd],
        detached: true,
        env: spec.env ?? process.env,
        cwd: spec.cwd,
      });
      // Not keeping the test process alive on its own: a test that forgets
      // teardown still exits, and the exit hook then kills the daemon.
      child.unref();
      const exited = new Promise<ExitInfo>((res) => {
        child.once("exit", (code, signal) => res({ code, signal }));
      });
      return new Promise((resolve, reject) => {
        child.once("error", (e) => reject(new Error(`${spec.name}: cannot start ${file}: ${e.message}`)));
        child.once("spawn", () => {
          const pid = child.pid;
          if (pid === undefined) reject(new Error(`${spec.name}: no pid after spawn`));
          else resolve(new ManagedProcess(spec, pid, exited));
        });
      });
    } finally {
      closeSync(fd);
    }
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The exit status once it has exited, else undefined. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  log(): Promise<string> {
    return readFile(this.logPath, "utf8").catch(() => "");
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) killQuietly(this.pid, signal);
  }

  /** SIGTERM to the group, then SIGKILL after the grace period. Idempotent. */
  async stop(options: StopOptions = {}): Promise<ExitInfo> {
    if (this.exitInfo !== undefined) return this.exitInfo;
    const grace = options.graceMs ?? 2000;
    killQuietly(-this.pid, options.signal ?? "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((res) => {
      timer = setTimeout(() => res("timeout"), grace);
    });
    const first = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (first !== "timeout") return first;
    killQuietly(-this.pid, "SIGKILL");
    // SIGKILL cannot be ignored; the bound only guards against a stuck reaper.
    const killed = new Promise<ExitInfo>((res) => {
      timer = setTimeout(() => res({ code: null, signal: "SIGKILL" }), 2000);
    });
    const info = await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return info;
  }

  /** For the exit hook: no event loop, so poll /proc instead of awaiting 'exit'. */
  stopSync(graceMs = 500): void {
    if (this.exitInfo !== undefined || !isLive(this.pid)) return;
    killQuietly(-this.pid, "SIGTERM");
    for (let waited = 0; waited < graceMs && isLive(this.pid); waited += 20) sleepSync(20);
    killQuietly(-this.pid, "SIGKILL");
  }
}
