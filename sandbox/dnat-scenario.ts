// The user's original failure on a running sandbox: a web host's nginx moved into a
// podman-style container behind a DNAT of its ports (`podman run -p 443:443`), with forwarding
// off as on the user's host. The rendered LB config then sees Layer4 timeouts; restoring host
// networking (what the project deploys) brings the server back.
import { createBridgedContainer, holdHostPort, publishPorts, unpublishPorts, type BridgedContainer } from "../lab/container";
import { CONTAINER_SUBNET, type IngressSandbox } from "./ingress-sandbox";
import type { ManagedProcess } from "../lab/process";

const containers = new WeakMap<IngressSandbox, Map<string, BridgedContainer>>();

/** One container namespace per host and run, made on first use and reused after. */
async function containerOf(s: IngressSandbox, host: string): Promise<BridgedContainer> {
  const byHost = containers.get(s) ?? new Map<string, BridgedContainer>();
  containers.set(s, byHost);
  let c = byHost.get(host);
  if (!c) {
    c = await createBridgedContainer(s.sb, s.webHost(host).ns, { name: "ctr", subnet: CONTAINER_SUBNET });
    byHost.set(host, c);
  }
  return c;
}

export interface PublishedNginx {
  readonly container: BridgedContainer;
  /** Puts nginx back on the host network and removes the DNAT. */
  restore(): Promise<void>;
}

/** Runs the host's rendered nginx in a container published with DNAT, forwarding off. */
export async function publishThroughDnat(s: IngressSandbox, host: string): Promise<PublishedNginx> {
  const w = s.webHost(host);
  const ports = [...new Set(w.plan.listens.filter((l) => l.by === "nginx").map((l) => l.port))];
  await s.stopNginx(host);
  const container = await containerOf(s, host);
  const holders: ManagedProcess[] = [];
  let inContainer: ManagedProcess | undefined;
  const restore = async (): Promise<void> => {
    await inContainer?.stop();
    await unpublishPorts(container);
    for (const h of holders) await h.stop();
    await w.ns.setForwarding(false);
    if (w.nginx === undefined) await s.startNginx(host);
  };
  try {
    await w.ns.setForwarding(false);
    inContainer = await s.startNginx(host, container.ns);
    await publishPorts(container, ports.map((p) => ({ hostPort: p, containerPort: p })));
    // conmon keeps the published ports bound on the host, as `netstat -ltnp` showed the user.
    for (const p of ports) holders.push(await holdHostPort(w.ns, p));
  } catch (e) {
    await restore().catch(() => undefined);
    throw e;
  }
  return { container, restore };
}
