// The embedded proxy built as `npm run build:proxy` builds it, for the proxy tests.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildScript } from "../../../components/program/program-files";

let built: string | undefined;

/**
 * Builds this checkout's proxy once per process into a temp dir with no node_modules near it,
 * so the bundle must stand alone; the dir goes when the process exits.
 */
export function buildProxyScript(): string {
  if (built !== undefined && existsSync(built)) return built;
  const dir = mkdtempSync(path.join(os.tmpdir(), "pxt-bundle-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const outfile = path.join(dir, "proxy.js");
  writeFileSync(outfile, buildScript(path.join(__dirname, "..", "..", "..", "proxy", "main.ts")));
  built = outfile;
  return outfile;
}

export const NODE20 = "/usr/bin/node";
export const NODE_CURRENT = process.execPath;
