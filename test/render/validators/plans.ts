// The plans the render tests use: the repo's prod and demo stacks and the standalone example.
import { join } from "node:path";
import { loadTopology, readStackConfig, REPO_ROOT, stackFile } from "../../../scripts/stack-files";
import { planStack, validateStackConfig, type HostPlan, type OwnIngress, type StackPlan, type Topology } from "../../../topology";

export const EXAMPLE_FILE = join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml");

export function prodTopology(): Topology {
  return loadTopology("prod");
}

export const prodPlan = (): StackPlan => planStack(prodTopology());
export const demoPlan = (): StackPlan => planStack(loadTopology("demo"));

/** The shipped demo stack as before ACME: each site's certificate from certbot's tree on the server. */
export function demoWithCertbotPlan(): StackPlan {
  const raw = structuredClone(readStackConfig(stackFile("demo"))) as { sites: { hostname: string; tls: unknown }[]; acme?: unknown };
  raw.sites = raw.sites.map((site) => ({ ...site, tls: { source: "host", path: `/etc/letsencrypt/live/${site.hostname}` } }));
  delete raw.acme;
  return planStack(validateStackConfig("demo", raw));
}
export const examplePlan = (): StackPlan => planStack(loadTopology("standalone-demo", EXAMPLE_FILE));

/** A copy of an `own` topology with its ingress changed, e.g. the example with engine haproxy. */
export function withIngress(topo: Topology, change: (ingress: OwnIngress) => OwnIngress): Topology {
  if (topo.ingress.mode !== "own") throw new Error(`stack ${topo.stack} does not own its ingress`);
  return { ...topo, ingress: change(topo.ingress) };
}

/** The standalone example (engine ts) rendered as if it ran HAProxy. */
export function exampleOnHaproxy(): StackPlan {
  return planStack(withIngress(loadTopology("standalone-demo", EXAMPLE_FILE), (i) => ({ ...i, engine: "haproxy" })));
}

export function ingressHost(plan: StackPlan): HostPlan {
  const lb = plan.hosts.find((h) => h.role === "ingress");
  if (!lb) throw new Error(`stack ${plan.stack} has no ingress host`);
  return lb;
}

export function webHosts(plan: StackPlan): HostPlan[] {
  return plan.hosts.filter((h) => h.role === "web");
}
