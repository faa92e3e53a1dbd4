// What the sandbox deploys: the repo's prod and demo stacks, with three changes made in the stack
// config (the files the local engine's `up` reads, so the plan here is what runs): short health
// check timers, so the checks wait seconds and not minutes, the engine asked for, and the
// sandbox's own ACME CA (Pebble) in place of Let's Encrypt.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { displayName } from "../components/deploy/names";
import { loadTopology, stackFile } from "../scripts/stack-files";
import { assembleRoutingTable, planStack, type Engine, type HostPlan, type RoutingRow } from "../topology";
import type { OwnIngress } from "../topology/types";

export type HealthCheck = OwnIngress["healthCheck"];

/** Checks every second, DOWN after two misses, UP after one success (as config: durations). */
const SANDBOX_HEALTH_CHECK_CONFIG = { interval: "1s", timeout: "1s", fall: 2, rise: 1 } as const;
/** The stacks in the order `up` takes them: prod owns the LB, demo attaches to it. */
export const SANDBOX_STACKS = ["prod", "demo"] as const;
export type SandboxStack = (typeof SANDBOX_STACKS)[number];

export interface IngressSandboxPlan {
  readonly engine: Engine;
  readonly healthCheck: HealthCheck;
  /** The ingress host of prod, the stack that owns the LB (demo attaches to it). */
  readonly lb: HostPlan;
  readonly webHosts: readonly HostPlan[];
  /** Every host's Hetzner server name (what the local cloud calls the machine). */
  readonly serverNames: ReadonlyMap<string, string>;
  /** The LB's private addresses: prod's own, plus demo's attachment. */
  readonly lbNetworks: readonly { readonly network: string; readonly ip: string }[];
  /** The LB's routing table: every fragment that meets on it. */
  readonly routing: readonly RoutingRow[];
}

/** The stack config file the sandbox deploys for a stack, in its run dir. */
export function sandboxConfigFile(runDir: string, stack: SandboxStack): string {
  return join(runDir, `Pulumi.${stack}.yaml`);
}

/** The sandbox's ACME CA as the stacks use it: its directory, and the root of its own HTTPS. */
export interface SandboxAcme {
  readonly directoryUrl: string;
  readonly httpsRootPem: string;
}

/** Pebble's certificates in the sandbox live a week, inside the stacks' 30-day renewal window: every look renews. */
export const SANDBOX_CERT_VALIDITY_S = 7 * 24 * 3600;

/** The Hetzner name of prod's LB, where the sandbox's DNS sends every site name. */
export function sandboxLbServerName(): string {
  const topo = loadTopology("prod");
  if (topo.ingress.mode !== "own") throw new Error("stack prod must own the ingress");
  return displayName("prod", topo.ingress.server.name);
}

/**
 * Writes the sandbox's stack configs: the shipped ones, prod's with the sandbox's ingress
 * changes, and both with their ACME directory moved to the sandbox's CA (`acme`).
 */
export function writeSandboxConfigs(runDir: string, engine: Engine, acme?: SandboxAcme): void {
  for (const stack of SANDBOX_STACKS) {
    const doc = parse(readFileSync(stackFile(stack), "utf8")) as { config: Record<string, unknown> };
    const key = "hetzner-ingress:ingress";
    const ingress = doc.config[key] as { mode?: string } | undefined;
    if (ingress?.mode === "own") doc.config[key] = { ...ingress, engine, healthCheck: SANDBOX_HEALTH_CHECK_CONFIG };
    const acmeKey = "hetzner-ingress:acme";
    const settings = doc.config[acmeKey] as Record<string, unknown> | undefined;
    if (settings && acme) doc.config[acmeKey] = { ...settings, directory: acme.directoryUrl, caCertificate: acme.httpsRootPem };
    writeFileSync(sandboxConfigFile(runDir, stack), `# Written by npm run sandbox: Pulumi.${stack}.yaml with the sandbox's changes.\n${stringify(doc)}`, { mode: 0o600 });
  }
}

/** The plan of the stacks as the run dir's configs (writeSandboxConfigs) have them. */
export function planIngressSandbox(runDir: string): IngressSandboxPlan {
  const prodTopo = loadTopology("prod", sandboxConfigFile(runDir, "prod"));
  const demoTopo = loadTopology("demo", sandboxConfigFile(runDir, "demo"));
  if (prodTopo.ingress.mode !== "own") throw new Error("stack prod must own the ingress");
  const prod = planStack(prodTopo);
  const demo = planStack(demoTopo);
  const lb = prod.hosts.find((h) => h.role === "ingress");
  if (!lb?.ingress) throw new Error("stack prod has no ingress host");
  if (!demo.attach) throw new Error("stack demo does not attach to prod's LB");
  const serverNames = new Map<string, string>();
  for (const [stack, p] of [["prod", prod], ["demo", demo]] as const) for (const h of p.hosts) serverNames.set(h.name, displayName(stack, h.name));
  return {
    engine: prodTopo.ingress.engine,
    healthCheck: prodTopo.ingress.healthCheck,
    lb,
    webHosts: [...prod.hosts, ...demo.hosts].filter((h) => h.role === "web"),
    serverNames,
    lbNetworks: [...lb.privateIps, { network: demo.attach.network, ip: demo.attach.ip }],
    routing: assembleRoutingTable([lb.ingress.fragment, demo.attach.fragment]),
  };
}
