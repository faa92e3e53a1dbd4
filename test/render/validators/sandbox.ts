// The shared sandbox (sandbox/) as the render tests use it: a run per test, always torn down.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../../../lab/sandbox";

export const isRoot = process.getuid?.() === 0;

/** Whether `name` is on PATH; synchronous because a test's skip option is decided before it runs. */
export function haveBinary(name: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, name)));
}

/** Runs `fn` with a fresh sandbox; its namespaces, processes and temp dir are gone afterwards. */
export async function withSandbox<T>(fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const sb = await Sandbox.create({ prefix: "rtest" });
  try {
    return await fn(sb);
  } finally {
    await sb.teardown();
  }
}
