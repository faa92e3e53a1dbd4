// The user's original failure on a deployed server: its nginx unit started in a podman-style
// container behind a DNAT of its ports (`podman run -p 443:443`), with forwarding off as on the
// user's host. The LB then sees Layer4 timeouts; restoring host networking (what the project
// deploys) brings the server back. Everything runs on the server's own machine: its network
// namespace gets the bridge and the DNAT, its unit and files start the nginx in the container.
import { createBridgedContainer, holdHostPort, NAT_TABLE, publishPorts } from "../lab/container";
import type { ManagedProcess } from "../lab/process";
import type { IngressSandbox } from "./ingress-sandbox";

/** Stands in for podman's 10.88.0.0/16; the local cloud gives out no address in it. */
export const CONTAINER_SUBNET = "198.51.100.128/25";
/** The container bridge podman makes on the host, as its default network does. */
export const CONTAINER_BRIDGE = "podman0";
let containers = 0;

export interface PublishedNginx {
  /** Puts nginx back on the host network and removes the container, bridge and DNAT. */
  restore(): Promise<void>;
}

/**
 * Runs the host's nginx unit in a container published with DNAT, forwarding off. The machine
 * is put back as deployed by `restore()`, or by the check session's close if the check never
 * gets there (Ctrl-C during `npm run sandbox -- test`).
 */
export async function publishThroughDnat(s: IngressSandbox, host: string): Promise<PublishedNginx> {
  const w = s.webHost(host);
  const ports = [...new Set(w.plan.listens.filter((l) => l.by === "nginx").map((l) => l.port))];
  const forwarding = await w.ns.readSysctl("net.ipv4.ip_forward");
  const holders: ManagedProcess[] = [];
  let restored: Promise<void> | undefined;
  // Every step, whatever the others did, so the machine is back as deployed; then the errors.
  const putBack = async (): Promise<void> => {
    const errors: string[] = [];
    const step = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    // The unit's stop ends the nginx wherever it runs (the machine's systemctl knows its pid).
    await step("stop nginx", () => s.stopNginx(host));
    for (const h of holders) await step(`stop ${h.name}`, () => h.stop());
    await step("remove the DNAT", () => w.ns.exec(["nft", "delete", "table", "ip", NAT_TABLE], { allowFailure: true }));
    // The veth's end in the container goes with the host's; the emptied namespace with the session.
    await step("remove veth0", () => w.ns.ip(["link", "del", "veth0"], { allowFailure: true }));
    await step(`remove ${CONTAINER_BRIDGE}`, () => w.ns.ip(["link", "del", CONTAINER_BRIDGE], { allowFailure: true }));
    await step("restore ip_forward", () => w.ns.sysctl("net.ipv4.ip_forward", forwarding));
    await step("start nginx", () => s.startNginx(host));
    if (errors.length > 0) throw new Error(`putting ${host} back as deployed: ${errors.join("; ")}`);
  };
  const restore = (): Promise<void> => (restored ??= putBack());
  s.sb.defer(`put ${host} back as deployed`, restore);
  try {
    await s.stopNginx(host);
    await w.ns.sysctl("net.ipv4.ip_forward", 0);
    const container = await createBridgedContainer(s.sb, w.ns, { name: `ctr${++containers}`, subnet: CONTAINER_SUBNET, bridge: CONTAINER_BRIDGE });
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
