// The user's original failure on a deployed server: its nginx unit started in a podman-style
// container behind a DNAT of its ports (`podman run -p 443:443`), with forwarding off as on the
// user's host. The LB then sees Layer4 timeouts; restoring host networking (what the project
// deploys) brings the server back. Everything runs on the server's own machine: its network
// namespace gets the bridge and the DNAT, its unit and files start the nginx in the container.
import { createBridgedContainer, holdHostPort, publishPorts, unpublishPorts } from "../lab/container";
import type { ManagedProcess } from "../lab/process";
import type { IngressSandbox } from "./ingress-sandbox";

/** Stands in for podman's 10.88.0.0/16; apart from every address the local cloud uses. */
export const CONTAINER_SUBNET = "198.51.100.128/25";
const BRIDGE = "podman0";
let containers = 0;

export interface PublishedNginx {
  /** Puts nginx back on the host network and removes the container, bridge and DNAT. */
  restore(): Promise<void>;
}

/** Runs the host's nginx unit in a container published with DNAT, forwarding off. */
export async function publishThroughDnat(s: IngressSandbox, host: string): Promise<PublishedNginx> {
  const w = s.webHost(host);
  const ports = [...new Set(w.plan.listens.filter((l) => l.by === "nginx").map((l) => l.port))];
  const forwarding = await w.ns.readSysctl("net.ipv4.ip_forward");
  await s.stopNginx(host);
  const holders: ManagedProcess[] = [];
  let container: Awaited<ReturnType<typeof createBridgedContainer>> | undefined;
  const restore = async (): Promise<void> => {
    // The unit's stop ends the nginx wherever it runs (the machine's systemctl knows its pid).
    await s.stopNginx(host);
    for (const h of holders) await h.stop();
    if (container) {
      // The machine is left as deployed: no DNAT, no bridge; the veth's end in the container
      // goes with the host's, and the emptied namespace with the check session.
      await unpublishPorts(container);
      await w.ns.ip(["link", "del", "veth0"], { allowFailure: true });
      await w.ns.ip(["link", "del", BRIDGE], { allowFailure: true });
    }
    await w.ns.sysctl("net.ipv4.ip_forward", forwarding);
    await s.startNginx(host);
  };
  try {
    await w.ns.sysctl("net.ipv4.ip_forward", 0);
    container = await createBridgedContainer(s.sb, w.ns, { name: `ctr${++containers}`, subnet: CONTAINER_SUBNET, bridge: BRIDGE });
    await s.startNginx(host, container.ns);
    await publishPorts(container, ports.map((p) => ({ hostPort: p, containerPort: p })));
    // conmon keeps the published ports bound on the host, as `netstat -ltnp` showed the user.
    for (const p of ports) holders.push(await holdHostPort(w.ns, p));
  } catch (e) {
    await restore().catch(() => undefined);
    throw e;
  }
  return { restore };
}
