import { spawn, spawnSync } from "node:child_process";

/** Outcome of a finished command. `code` is null when a signal ended it. */
export interface RunResult {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface RunOptions {
  /** Hard deadline; the command is SIGKILLed when it passes. Default 10 s. */
  readonly timeoutMs?: number;
  /** Written to stdin, which is then closed. Without it stdin is empty. */
  readonly input?: string | Buffer;
  /** Return a non-zero exit instead of throwing. */
  readonly allowFailure?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export type CommandErrorCode = "nonzero-exit" | "timeout" | "spawn-failed";

export class CommandError extends Error {
  constructor(
    readonly code: CommandErrorCode,
    readonly argv: readonly string[],
    readonly result: RunResult | undefined,
    detail: string,
  ) {
    super(`${argv.join(" ")}: ${detail}`);
    this.name = "CommandError";
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
// Output beyond this is dropped, so a chatty command cannot grow memory without bound.
const MAX_CAPTURE_BYTES = 8 * 1024 * 1024;

function describeFailure(r: RunResult): string {
  const how = r.signal !== null ? `killed by ${r.signal}` : `exit ${r.code}`;
  const err = r.stderr.trim();
  return err === "" ? how : `${how}: ${err.slice(-2000)}`;
}

/** Runs a command to completion with a deadline; never through a shell. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("run: empty argv");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout.on("data", (b: Buffer) => {
      if (outBytes < MAX_CAPTURE_BYTES) out.push(b);
      outBytes += b.length;
    });
    child.stderr.on("data", (b: Buffer) => {
      if (errBytes < MAX_CAPTURE_BYTES) err.push(b);
      errBytes += b.length;
    });
    // A command that exits without reading its stdin makes the write fail with EPIPE; that is not our error.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);

    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new CommandError("spawn-failed", argv, undefined, e.message));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = {
        argv,
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        durationMs: Date.now() - started,
      };
      if (timedOut) {
        reject(new CommandError("timeout", argv, result, `timed out after ${timeoutMs} ms`));
      } else if (code !== 0 && options.allowFailure !== true) {
        reject(new CommandError("nonzero-exit", argv, result, describeFailure(result)));
      } else {
        resolve(result);
      }
    });
  });
}

/**
 * Synchronous twin of `run`, for the only place that cannot await: the
 * process 'exit' hook that tears down what a crashing test left behind.
 */
export function runSync(argv: readonly string[], options: { readonly timeoutMs?: number } = {}): RunResult {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("runSync: empty argv");
  const started = Date.now();
  const r = spawnSync(file, args, {
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: "SIGKILL",
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return {
    argv,
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? (r.error?.message ?? ""),
    durationMs: Date.now() - started,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread; only for the synchronous exit-time teardown. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Thrown by a `pollUntil` probe to stop waiting at once: the awaited thing can no longer happen. */
export class PollAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PollAbort";
  }
}

/**
 * Polls `probe` until it returns a value other than undefined, or throws once
 * `timeoutMs` has passed. Every wait in the sandbox goes through here, so
 * none of them is unbounded.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { readonly timeoutMs: number; readonly intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 25;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof PollAbort) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(interval);
  }
}
