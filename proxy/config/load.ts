/**
 * Reads proxy.json and the routes directory, and hands them to assemble.ts.
 * Also the cheap stat signature the primary polls to notice changes.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ProxyConfig } from "../../contract/proxy-config";
import { assembleProxyConfig, SourceFile } from "./assemble";

export interface LoadedProxyConfig {
  readonly config: ProxyConfig;
  /** Hash of every text read; equal fingerprints mean nothing changed. */
  readonly fingerprint: string;
  /** Names of the routes files merged, in merge order. */
  readonly routeFiles: readonly string[];
}

export type LoadResult =
  | ({ readonly ok: true } & LoadedProxyConfig)
  | { readonly ok: false; readonly errors: readonly string[]; readonly fingerprint: string | null };

/** `*.json`, not hidden (editors and atomic writers leave dotfiles), sorted by code unit so the order never depends on locale. */
export function isRoutesFileName(name: string): boolean {
  return name.endsWith(".json") && !name.startsWith(".");
}

async function listRoutesFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter(isRoutesFileName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    // No directory: no routes, so every connection gets the listener's no-match action.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

function fingerprintOf(files: readonly SourceFile[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file.path}\0${file.text.length}\0${file.text}\0`);
  return hash.digest("hex");
}

/** proxy.json, plus every routes file of `routesDir` when one is given. */
export async function loadProxyConfig(configPath: string, routesDir: string | null = null): Promise<LoadResult> {
  const files: SourceFile[] = [];
  const errors: string[] = [];
  const read = async (file: string) => {
    try {
      files.push({ path: file, text: await readFile(file, "utf8") });
    } catch (error) {
      errors.push(`${file}: (file): cannot read: ${(error as Error).message}`);
    }
  };
  await read(configPath);
  let names: string[] = [];
  if (routesDir !== null) {
    try {
      names = await listRoutesFiles(routesDir);
    } catch (error) {
      errors.push(`${routesDir}: (directory): cannot list: ${(error as Error).message}`);
    }
    for (const name of names) await read(path.join(routesDir, name));
  }
  if (errors.length > 0) return { ok: false, errors, fingerprint: null };
  const fingerprint = fingerprintOf(files);
  const [base, ...fragments] = files;
  const result = assembleProxyConfig(base!, fragments);
  if (!result.ok) return { ok: false, errors: result.errors, fingerprint };
  return { ok: true, config: result.config, fingerprint, routeFiles: names };
}

/**
 * Identity of what loadProxyConfig would read, from stat alone: inode, size and mtime of
 * the config and of every routes file, and the directory's own inode. Paths are resolved
 * on every call, so a swap of the `current` symlink to another release is seen too.
 */
export async function statSignature(configPath: string, routesDir: string | null): Promise<string> {
  const one = async (file: string) => {
    try {
      const s = await stat(file);
      return `${file}:${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (error) {
      return `${file}:${(error as NodeJS.ErrnoException).code ?? "error"}`;
    }
  };
  const parts = [await one(configPath)];
  if (routesDir !== null) {
    parts.push(await one(routesDir));
    let names: string[] = [];
    try {
      names = await listRoutesFiles(routesDir);
    } catch (error) {
      parts.push(`list:${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
    for (const name of names) parts.push(await one(path.join(routesDir, name)));
  }
  return parts.join("\n");
}
