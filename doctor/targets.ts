// What the doctor examines: each stack's plan (from its Pulumi.<stack>.yaml, as `up` plans it)
// and what `up` left behind: the LB's and each server's public address, the LB's pinned host
// key, and the deploy key. From Pulumi (`pulumi stack output` / `stack export`, secrets shown
// to this process only) or from the local engine's state (npm run local, npm run sandbox).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadTopology, stackFile } from "../scripts/stack-files";
import { planStack, type StackPlan } from "../topology";
import { readStackFile } from "../local/engine/state-file";

export interface StackTarget {
  readonly stack: string;
  readonly plan: StackPlan;
  /** Public IPv4 of each of this stack's servers, by host name. */
  readonly hostIps: ReadonlyMap<string, string>;
  readonly lbIpv4?: string;
  readonly lbIpv6?: string;
  /** The LB's SSH host key (the owning stack's output): pinned. */
  readonly lbHostKey?: string;
  /** OpenSSH private key of the stack's deploy key; absent when the state does not give it. */
  readonly privateKey?: string;
}

/** The deploy key's PrivateKey resource as both Pulumi and the local engine name it. */
const DEPLOY_KEY_TYPE = "tls:index/privateKey:PrivateKey";
const DEPLOY_KEY_NAME = "deploy-key";

function ipsFromSshCommands(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof value !== "object" || value === null) return out;
  for (const [host, command] of Object.entries(value as Record<string, unknown>)) {
    const ip = /@([0-9.]+)$/.exec(String(command))?.[1];
    if (ip) out.set(host, ip);
  }
  return out;
}

function target(stack: string, configDir: string, outputs: Record<string, unknown>, privateKey: string | undefined): StackTarget {
  const plan = planStack(loadTopology(stack, stackFile(stack, configDir)));
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const lbIpv4 = str(outputs["lbIpv4"]);
  const lbIpv6 = str(outputs["lbIpv6"]);
  const lbHostKey = str(outputs["lbHostKey"]);
  return { stack, plan, hostIps: ipsFromSshCommands(outputs["sshCommands"]), ...(lbIpv4 ? { lbIpv4 } : {}), ...(lbIpv6 ? { lbIpv6 } : {}), ...(lbHostKey ? { lbHostKey } : {}), ...(privateKey ? { privateKey } : {}) };
}

/** A stack of the local engine (its state dir: .local-engine, or a sandbox's run/state). */
export function localTarget(stack: string, stateDir: string, configDir: string): StackTarget {
  const file = readStackFile(stateDir, stack);
  if (Object.keys(file.resources).length === 0) throw new Error(`stack ${stack} has no resources in ${stateDir}: run npm run local -- up --stack ${stack} first`);
  const key = file.resources[`${DEPLOY_KEY_TYPE} ${DEPLOY_KEY_NAME}`]?.state["privateKeyOpenssh"];
  return target(stack, configDir, file.outputs, typeof key === "string" ? key : undefined);
}

function pulumiJson(args: readonly string[]): unknown {
  const r = spawnSync("pulumi", [...args, "--json"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`pulumi ${args.join(" ")}: ${r.error.message} (is the Pulumi CLI installed and logged in?)`);
  if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}

/** A stack of the Pulumi CLI's current backend. */
export function pulumiTarget(stack: string, configDir: string): StackTarget {
  const outputs = pulumiJson(["stack", "output", "--show-secrets", "--stack", stack]) as Record<string, unknown>;
  const exported = pulumiJson(["stack", "export", "--show-secrets", "--stack", stack]) as { deployment?: { resources?: { urn?: string; outputs?: Record<string, unknown> }[] } };
  const key = exported.deployment?.resources?.find((r) => r.urn?.endsWith(`${DEPLOY_KEY_TYPE}::${DEPLOY_KEY_NAME}`))?.outputs?.["privateKeyOpenssh"];
  return target(stack, configDir, outputs, typeof key === "string" ? key : undefined);
}

export const sandboxDirs = (runDir: string) => ({ stateDir: join(runDir, "state"), configDir: runDir });
