/** Builds the bundle exactly as `npm run build:proxy` does, into a directory with no node_modules near it. */
import { buildSync } from "esbuild";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const NODE20 = "/usr/bin/node";
export const NODE_CURRENT = process.execPath;

export function buildBundle(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pxt-bundle-"));
  const outfile = path.join(dir, "proxy.js");
  buildSync({ entryPoints: [path.join(__dirname, "../../../proxy/main.ts")], bundle: true, platform: "node", target: "node20", outfile, logLevel: "error" });
  return outfile;
}
