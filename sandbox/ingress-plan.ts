// What the local sandbox runs: the repo's prod and demo stacks, planned and rendered exactly as
// for Hetzner, with two sandbox changes made on the topology before planning: short health
// check timers (so the tests wait seconds, not minutes) and, on request, the other engine.
import { renderStack, type RenderedFile, type RenderedHost } from "../render";
import { loadTopology } from "../scripts/stack-files";
import { assembleRoutingTable, planStack, type Engine, type HostPlan, type RoutingRow, type Topology } from "../topology";
import type { OwnIngress } from "../topology/types";

export type SandboxStacks = "prod" | "demo" | "all";
export const SANDBOX_STACKS: readonly SandboxStacks[] = ["prod", "demo", "all"];

export type HealthCheck = OwnIngress["healthCheck"];

/** Checks every second, DOWN after two misses, UP after one success. */
export const SANDBOX_HEALTH_CHECK: HealthCheck = { interval: 1000, timeout: 1000, fall: 2, rise: 1 };

export interface SandboxNetwork {
  readonly name: string;
  readonly ipRange: string;
}

export interface IngressSandboxPlan {
  readonly stacks: SandboxStacks;
  readonly engine: Engine;
  readonly healthCheck: HealthCheck;
  /** What Pulumi.prod.yaml says, for the record. */
  readonly configuredHealthCheck: HealthCheck;
  /** The ingress host of prod, the stack that owns the LB (demo attaches to it). */
  readonly lb: HostPlan;
  /** The LB's private addresses: prod's own, plus demo's attachment when demo runs. */
  readonly lbNetworks: readonly { readonly network: string; readonly ip: string }[];
  readonly webHosts: readonly HostPlan[];
  readonly networks: readonly SandboxNetwork[];
  /** Every host's rendered bundle, by host name. */
  readonly rendered: ReadonlyMap<string, RenderedHost>;
  /** Route files attached stacks push to the LB, at their pushed paths. */
  readonly attachedRoutes: readonly RenderedFile[];
  /** The LB's routing table: every fragment that meets on it. */
  readonly routing: readonly RoutingRow[];
}

export interface IngressPlanOptions {
  readonly stacks: SandboxStacks;
  readonly engine: Engine;
  readonly healthCheck?: HealthCheck;
  /** dist/proxy.js, placed in the release for engine ts. */
  readonly proxyScript?: string;
}

function withSandboxIngress(topo: Topology, engine: Engine, healthCheck: HealthCheck): Topology {
  if (topo.ingress.mode !== "own") throw new Error(`stack ${topo.stack} must own its ingress`);
  return { ...topo, ingress: { ...topo.ingress, engine, healthCheck } };
}

export function planIngressSandbox(o: IngressPlanOptions): IngressSandboxPlan {
  const healthCheck = o.healthCheck ?? SANDBOX_HEALTH_CHECK;
  const prodConfig = loadTopology("prod");
  if (prodConfig.ingress.mode !== "own") throw new Error("stack prod must own the ingress");
  const prodTopo = withSandboxIngress(prodConfig, o.engine, healthCheck);
  const demoTopo = loadTopology("demo");
  const prod = planStack(prodTopo);
  const demo = planStack(demoTopo);
  const lb = prod.hosts.find((h) => h.role === "ingress");
  if (!lb?.ingress) throw new Error("stack prod has no ingress host");

  const withDemo = o.stacks !== "prod";
  const rendered = new Map<string, RenderedHost>();
  for (const h of renderStack(prod, o.proxyScript !== undefined ? { proxyScript: o.proxyScript } : {})) rendered.set(h.host, h);
  let attachedRoutes: RenderedFile[] = [];
  if (withDemo) {
    for (const h of renderStack(demo)) {
      if (h.host.startsWith("_routes-for-")) attachedRoutes = [...h.files];
      else rendered.set(h.host, h);
    }
  }

  const webHosts = [
    ...(o.stacks !== "demo" ? prod.hosts.filter((h) => h.role === "web") : []),
    ...(withDemo ? demo.hosts.filter((h) => h.role === "web") : []),
  ];
  const lbNetworks = [...lb.privateIps, ...(withDemo && demo.attach ? [{ network: demo.attach.network, ip: demo.attach.ip }] : [])];
  const networks = [
    ...prodTopo.networks.map((n) => ({ name: n.name, ipRange: n.ipRange })),
    ...(withDemo ? demoTopo.networks.map((n) => ({ name: n.name, ipRange: n.ipRange })) : []),
  ];
  const fragments = [lb.ingress.fragment, ...(withDemo && demo.attach ? [demo.attach.fragment] : [])];
  return {
    stacks: o.stacks,
    engine: o.engine,
    healthCheck,
    configuredHealthCheck: prodConfig.ingress.healthCheck,
    lb,
    lbNetworks,
    webHosts,
    networks,
    rendered,
    attachedRoutes,
    routing: assembleRoutingTable(fragments),
  };
}

/** Routing rows whose server runs in this sandbox (with --stack demo, prod's servers do not). */
export function servedRows(plan: IngressSandboxPlan): RoutingRow[] {
  const running = new Set(plan.webHosts.map((h) => h.name));
  return plan.routing.filter((r) => running.has(r.server));
}
