// Runs the real binaries for the render tests. Synchronous on purpose: each call is short,
// and a test reads top to bottom as the commands an operator would type.
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, unlinkSync } from "node:fs";

export interface ExecResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs argv to completion. stdout goes through a real file, not a pipe: node's pipes are
 * socketpairs, and nginx cannot open /dev/stdout when that is a socket (ENXIO).
 */
export function exec(argv: readonly string[], env?: NodeJS.ProcessEnv, timeoutMs = 20_000): ExecResult {
  const [cmd, ...args] = argv;
  const outFile = `/tmp/rtest-exec-${process.pid}.out`;
  const out = openSync(outFile, "w+");
  try {
    const r = spawnSync(cmd!, args, { encoding: "utf8", env: env ?? process.env, timeout: timeoutMs, stdio: ["ignore", out, "pipe"] });
    if (r.error) throw new Error(`${argv.join(" ")}: ${r.error.message}`);
    return { status: r.status, stdout: readFileSync(outFile, "utf8"), stderr: r.stderr };
  } finally {
    closeSync(out);
    unlinkSync(outFile);
  }
}

export function mustExec(argv: readonly string[], env?: NodeJS.ProcessEnv): ExecResult {
  const r = exec(argv, env);
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r;
}

export function haveBinary(name: string): boolean {
  return exec(["sh", "-c", `command -v ${name}`]).status === 0;
}

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
