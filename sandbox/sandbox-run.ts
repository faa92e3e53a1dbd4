// Where a sandbox lives and how it is deployed: its own run dir (a local cloud, stack state,
// bundles and the stack configs it deploys, apart from the user's `npm run local` stacks), and
// every deploy done by the local engine's CLI, one process per command, as a user runs it.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Engine } from "../topology";
import { run, type RunResult } from "../lab/command";
import { writeSandboxConfigs, sandboxConfigFile, sandboxLbServerName, SANDBOX_CERT_VALIDITY_S, SANDBOX_STACKS, type SandboxAcme } from "./ingress-plan";

const PROJECT_ROOT = join(__dirname, "..");
export const DEFAULT_SANDBOX_RUN_DIR = "/run/hetzner-ingress-sandbox";

export interface SandboxRun {
  readonly dir: string;
  /** The environment the local engine's CLI runs with for this sandbox. */
  readonly env: NodeJS.ProcessEnv;
}

export function sandboxRun(dir: string = process.env["HETZNER_INGRESS_SANDBOX_RUN"] ?? DEFAULT_SANDBOX_RUN_DIR): SandboxRun {
  return {
    dir,
    env: {
      ...process.env,
      HETZNER_INGRESS_LOCAL_RUN: dir,
      HETZNER_INGRESS_LOCAL_STATE: join(dir, "state"),
      HETZNER_INGRESS_BUNDLE_DIR: join(dir, "bundles"),
    },
  };
}

/** True when this run dir holds a sandbox's stack state. */
export function sandboxExists(r: SandboxRun): boolean {
  return existsSync(join(r.dir, "state"));
}

/** `npm run local -- ARGS` for this sandbox. */
export async function runLocal(r: SandboxRun, args: readonly string[], extraEnv: Readonly<Record<string, string>> = {}): Promise<RunResult> {
  return run([process.execPath, "--import", "tsx", join(PROJECT_ROOT, "local", "cli.ts"), ...args], {
    env: { ...r.env, ...extraEnv },
    cwd: PROJECT_ROOT,
    allowFailure: true,
    timeoutMs: 10 * 60_000,
  });
}

export interface SandboxUp {
  readonly ok: boolean;
  /** The CA's start and each stack's `up`, in order (the command line as a user types it); the failed one last. */
  readonly runs: readonly { readonly command: string; readonly result: RunResult }[];
}

/** The local engine's `up` of prod, then of demo, from the sandbox's configs. */
export async function sandboxUp(r: SandboxRun, engine: Engine, starting: (command: string) => void = () => undefined): Promise<SandboxUp> {
  mkdirSync(r.dir, { recursive: true, mode: 0o700 });
  const runs: { command: string; result: RunResult }[] = [];
  // The CA first: the first deploy of each web server already asks it for certificates. Its DNS
  // answers with the LB's address as soon as the LB exists (what DNS records do for real).
  const caArgs = ["acme-ca", "start", "--resolve-to", sandboxLbServerName(), "--validity", String(SANDBOX_CERT_VALIDITY_S)];
  starting(`npm run local -- ${caArgs.join(" ")}`);
  const ca = await runLocal(r, caArgs);
  runs.push({ command: `npm run local -- ${caArgs.join(" ")}`, result: ca });
  if (ca.code !== 0) return { ok: false, runs };
  writeSandboxConfigs(r.dir, engine, JSON.parse(ca.stdout) as SandboxAcme);
  // One stats password per sandbox; the checks read it back from the LB as an operator would.
  const password = { STATSPASSWORD: randomBytes(12).toString("hex") };
  for (const stack of SANDBOX_STACKS) {
    const command = `npm run local -- up --stack ${stack} --config ${sandboxConfigFile(r.dir, stack)}`;
    starting(command);
    const result = await runLocal(r, ["up", "--stack", stack, "--config", sandboxConfigFile(r.dir, stack)], password);
    runs.push({ command, result });
    if (result.code !== 0) return { ok: false, runs };
  }
  return { ok: true, runs };
}

/** Stops the sandbox's local cloud (every machine and namespace) and removes its run dir. */
export async function sandboxDown(r: SandboxRun): Promise<RunResult> {
  const result = await runLocal(r, ["down"]);
  if (result.code === 0) rmSync(r.dir, { recursive: true, force: true });
  return result;
}
