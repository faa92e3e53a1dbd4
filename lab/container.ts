import { parseIpv4Cidr, firstHost, formatIpv4 } from "./address";
import { waitForListening } from "./daemons";
import type { Netns } from "./netns";
import type { ManagedProcess } from "./process";
import type { Sandbox } from "./sandbox";

// A reduced model of what `podman run -p HOST:CONTAINER` sets up with
// netavark on a rootful host: a bridge on the host, the container's own
// network namespace behind a veth, and a DNAT of the host port to the
// container's address. It exists to reproduce the failure that `Network=host`
// avoids; the project itself never publishes ports.

export interface PublishedPort {
  readonly hostPort: number;
  readonly containerPort: number;
}

export interface BridgedContainerSpec {
  /** Role name; the namespace is "<host>-<name>". */
  readonly name: string;
  /**
   * The container bridge's range. Podman's default is 10.88.0.0/16; a
   * documentation range stands in for it so nothing here can collide with a
   * real network. The bridge takes .1, the container .2.
   */
  readonly subnet?: string;
  readonly bridge?: string;
}

export interface BridgedContainer {
  readonly ns: Netns;
  readonly host: Netns;
  readonly ip: string;
  readonly bridgeIp: string;
  readonly bridge: string;
}

export async function createBridgedContainer(sb: Sandbox, host: Netns, spec: BridgedContainerSpec): Promise<BridgedContainer> {
  const range = parseIpv4Cidr(spec.subnet ?? "198.51.100.0/24");
  const bridge = spec.bridge ?? "podman0";
  const bridgeIp = firstHost(range);
  const ip = formatIpv4(range.network + 2);
  const ns = await sb.namespace(`${host.host}-${spec.name}`);
  await host.addBridge(bridge, 1500);
  await host.addAddress(bridge, `${bridgeIp}/${range.prefix}`);
  await sb.veth({ ns: host, ifname: "veth0" }, { ns, ifname: "eth0" }, 1500);
  await host.addToBridge("veth0", bridge);
  await ns.addAddress("eth0", `${ip}/${range.prefix}`);
  await ns.addRoute("default", { via: bridgeIp, dev: "eth0" });
  return { ns, host, ip, bridgeIp, bridge };
}

/** The nftables table (ip family) that holds the published ports' DNAT. */
export const NAT_TABLE = "netavark";

/**
 * The DNAT part of netavark's rules as one nftables table: connections to a
 * local address on `hostPort` go to the container instead. They are then
 * forwarded, not delivered locally, which is why `net.ipv4.ip_forward=0` (or
 * a forward chain with policy drop) silently eats them.
 */
export function podmanPublishRuleset(containerIp: string, ports: readonly PublishedPort[]): string {
  const rules = ports.map((p) => `    fib daddr type local tcp dport ${p.hostPort} dnat to ${containerIp}:${p.containerPort}`);
  return [
    `table ip ${NAT_TABLE} {`,
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    ...rules,
    "  }",
    "}",
    "",
  ].join("\n");
}

export async function publishPorts(c: BridgedContainer, ports: readonly PublishedPort[]): Promise<void> {
  await c.host.nft(podmanPublishRuleset(c.ip, ports));
}

export async function unpublishPorts(c: BridgedContainer): Promise<void> {
  await c.host.exec(["nft", "delete", "table", "ip", NAT_TABLE], { allowFailure: true });
}

/**
 * Rootful podman keeps each published host port bound by conmon, which is why
 * `netstat -ltnp` on the user's host showed `0.0.0.0:443 ... conmon` and a
 * local `nc -vz localhost 443` connected, while outside connections, DNATed
 * before any socket sees them, timed out.
 */
export async function holdHostPort(host: Netns, port: number): Promise<ManagedProcess> {
  const script = `require("node:net").createServer((s) => s.destroy()).listen(${port}, "0.0.0.0")`;
  const holder = await host.spawn(`conmon-${port}`, [process.execPath, "-e", script]);
  await waitForListening(host, [{ port, address: "0.0.0.0" }], { process: holder });
  return holder;
}
