import { firstHost, ipv4InCidr, parseIpv4Cidr, type Ipv4Cidr } from "./address";
import type { Netns } from "./netns";
import type { Sandbox } from "./sandbox";

/** Hetzner Cloud private interfaces have MTU 1450 (VXLAN underneath). */
export const HETZNER_PRIVATE_MTU = 1450;
const BRIDGE = "br0";

/**
 * How servers on a private network get their address:
 * - "hetzner": as Hetzner's DHCP does it: the address as a /32, the gateway
 *   on-link, and the network's whole range via the gateway. Every packet
 *   between two servers passes the router namespace, as on Hetzner.
 * - "onlink": the address with the network's prefix; servers reach each other
 *   directly on the bridge. Simpler, and enough when the path does not matter.
 */
export type Addressing = "hetzner" | "onlink";

export interface RoutedNetworkSpec {
  /** Short name, e.g. "prod"; the router namespace is "net-<name>". */
  readonly name: string;
  /** The network's range, e.g. "172.24.0.0/16". */
  readonly ipRange: string;
  readonly mtu?: number;
  readonly addressing?: Addressing;
}

export interface Attachment {
  readonly host: Netns;
  readonly ifname: string;
  /** The bridge port in the switch namespace that this host is plugged into. */
  readonly port: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
}

async function plugIn(sb: Sandbox, sw: Netns, host: Netns, ifname: string, port: string, mtu: number): Promise<void> {
  await sb.veth({ ns: host, ifname }, { ns: sw, ifname: port }, mtu);
  await sw.addToBridge(port, BRIDGE);
}

function defaultIfname(network: string): string {
  return `eth-${network}`.slice(0, 15);
}

/**
 * A Hetzner private network: one namespace that is both the switch (a bridge)
 * and the network's router at .1, the only namespace with forwarding on.
 */
export class RoutedNetwork {
  private ports = 0;
  private readonly range: Ipv4Cidr;

  private constructor(
    private readonly sb: Sandbox,
    readonly name: string,
    readonly ipRange: string,
    readonly gateway: string,
    readonly mtu: number,
    readonly addressing: Addressing,
    readonly router: Netns,
  ) {
    this.range = parseIpv4Cidr(ipRange);
  }

  static async create(sb: Sandbox, spec: RoutedNetworkSpec): Promise<RoutedNetwork> {
    const range = parseIpv4Cidr(spec.ipRange);
    const gateway = firstHost(range);
    const mtu = spec.mtu ?? HETZNER_PRIVATE_MTU;
    const router = await sb.namespace(`net-${spec.name}`);
    await router.addBridge(BRIDGE, mtu);
    await router.addAddress(BRIDGE, `${gateway}/${range.prefix}`);
    await router.setForwarding(true);
    // Routing a packet back out of the port it came in on is the normal path
    // here; redirects would teach servers a shortcut Hetzner never offers.
    for (const scope of ["all", "default", BRIDGE]) await router.sysctl(`net.ipv4.conf.${scope}.send_redirects`, 0);
    return new RoutedNetwork(sb, spec.name, spec.ipRange, gateway, mtu, spec.addressing ?? "hetzner", router);
  }

  /** Plugs `host` into this network with address `ip`, like hcloud's ServerNetwork. */
  async attach(host: Netns, options: { readonly ip: string; readonly ifname?: string }): Promise<Attachment> {
    if (!ipv4InCidr(options.ip, this.range)) throw new Error(`${options.ip} is not in network ${this.name} (${this.ipRange})`);
    if (options.ip === this.gateway) throw new Error(`${options.ip} is the gateway of network ${this.name}`);
    const ifname = options.ifname ?? defaultIfname(this.name);
    const port = `p${this.ports++}`;
    await plugIn(this.sb, this.router, host, ifname, port, this.mtu);
    if (this.addressing === "hetzner") {
      await host.addAddress(ifname, `${options.ip}/32`);
      await host.addRoute(this.gateway, { dev: ifname, scopeLink: true });
      await host.addRoute(this.ipRange, { via: this.gateway, dev: ifname });
    } else {
      await host.addAddress(ifname, `${options.ip}/${this.range.prefix}`);
    }
    return { host, ifname, port, ipv4: options.ip };
  }
}

export interface SegmentSpec {
  /** Short name; the switch namespace is "seg-<name>". */
  readonly name: string;
  readonly mtu?: number;
}

/**
 * A plain layer-2 segment (a switch, no router), e.g. the "internet" side
 * where clients and the load balancer's public interface meet on-link.
 * Use documentation ranges here: 198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32. (192.0.2.0/24 may be this machine's real uplink.)
 */
export class Segment {
  private ports = 0;

  private constructor(
    private readonly sb: Sandbox,
    readonly name: string,
    readonly mtu: number,
    readonly switchNs: Netns,
  ) {}

  static async create(sb: Sandbox, spec: SegmentSpec): Promise<Segment> {
    const mtu = spec.mtu ?? 1500;
    const sw = await sb.namespace(`seg-${spec.name}`);
    await sw.addBridge(BRIDGE, mtu);
    return new Segment(sb, spec.name, mtu, sw);
  }

  /** Addresses are CIDRs with their on-link prefix, e.g. "203.0.113.10/24", "2001:db8:113::10/64". */
  async attach(
    host: Netns,
    options: { readonly ipv4?: string; readonly ipv6?: string; readonly ifname?: string; readonly defaultVia4?: string; readonly defaultVia6?: string },
  ): Promise<Attachment> {
    const ifname = options.ifname ?? defaultIfname(this.name);
    const port = `p${this.ports++}`;
    await plugIn(this.sb, this.switchNs, host, ifname, port, this.mtu);
    if (options.ipv4 !== undefined) await host.addAddress(ifname, options.ipv4);
    if (options.ipv6 !== undefined) await host.addAddress(ifname, options.ipv6);
    if (options.defaultVia4 !== undefined) await host.addRoute("default", { via: options.defaultVia4, dev: ifname });
    if (options.defaultVia6 !== undefined) await host.addRoute("::/0", { via: options.defaultVia6, dev: ifname });
    return {
      host,
      ifname,
      port,
      ...(options.ipv4 !== undefined ? { ipv4: options.ipv4.split("/")[0] } : {}),
      ...(options.ipv6 !== undefined ? { ipv6: options.ipv6.split("/")[0] } : {}),
    };
  }
}
