// One private scratch directory per engine process (0700) for the private keys ssh and openssl
// read from files: each use takes a subdirectory and removes it, and whatever a crash or a
// signal leaves is removed with the whole directory when the process exits.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let root: string | undefined;

function scratchRoot(): string {
  if (root === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "local-engine-"));
    root = dir;
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return root;
}

/** Runs `f` with a fresh private directory, removed afterwards. */
export async function withScratch<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(scratchRoot(), "x"));
  try {
    return await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
