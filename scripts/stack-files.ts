// Reads Pulumi.<stack>.yaml files from disk for the render CLI, the sandbox and tests.
// The Pulumi program itself reads config through pulumi.Config instead.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { projectConfig, Topology, validateStackConfig } from "../topology";

export const REPO_ROOT = join(__dirname, "..");

export function stackFile(stack: string, dir: string = REPO_ROOT): string {
  return join(dir, `Pulumi.${stack}.yaml`);
}

export function readStackConfig(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new Error(`no stack config at ${file}`);
  const doc = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  return projectConfig(doc?.config ?? {});
}

export function loadTopology(stack: string, file: string = stackFile(stack)): Topology {
  return validateStackConfig(stack, readStackConfig(file));
}
