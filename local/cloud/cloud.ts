// The local cloud: Hetzner's API as the program uses it, realised with namespaces on this
// machine. Servers are Machines behind one router ("isp") that holds their public addresses
// (documentation ranges only) and enforces their cloud firewalls; private networks are routed
// bridges with Hetzner's gateway at .1 and MTU 1450; the operator is the "admin" namespace
// (198.51.100.7, the shipped stacks' admin CIDR) and a user on the internet is "client".
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { destroyNetns, formatIpv4, parseIpv4Cidr, RoutedNetwork, Sandbox, type Netns } from "../../lab";
import { buildScript, PROJECT_ROOT } from "../../components/program/program-files";
import { firewallRuleset, type FirewallRule } from "./firewall-ruleset";
import { Machine } from "./machine";
import { AcmeCa, ACME_CA_IPV4, type AcmeCaInfo, type AcmeCaOptions } from "./acme-ca";

/** The router's address on every public link, as Hetzner's 172.31.1.1 on-link gateway. */
const PUBLIC_GATEWAY = "172.31.1.1";
export const OPERATOR = { ipv4: "198.51.100.7" } as const;
export const CLIENT = { ipv4: "203.0.113.50", ipv6: "2001:db8:113::50" } as const;
/** A second internet client, for checks that use one up (the rate limit). */
export const FLOOD = { ipv4: "203.0.113.66" } as const;
/** A client from another network than the operator's allowed /32. */
export const CLIENT2 = { ipv4: "198.51.100.20" } as const;
/** A server's IPv6 /64, from 2001:db8:1::/48: apart from the clients' 2001:db8:113::/64. */
function serverIpv6Net(id: number): string {
  return `2001:db8:1:${id.toString(16)}::/64`;
}

/** Public addresses of the cloud's own clients, never given to a server. */
const RESERVED_PUBLIC = new Set<string>([CLIENT.ipv4, FLOOD.ipv4]);

export interface ServerInfo {
  readonly id: number;
  readonly name: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly netns: string;
  readonly initPid: number;
  readonly privateIps: Record<string, string>;
}

/** The namespaces the sandbox's checks probe from; made on first request (`probes`). */
export interface ProbeInfo {
  readonly flood: string;
  readonly client2: string;
  /** One machine per private network that is not any server of a stack: at the range's last host address. */
  readonly intruders: readonly { readonly ipRange: string; readonly netns: string; readonly ip: string }[];
}

/** Every namespace of this cloud starts with this (its operator's name without "operator"). */
export function cloudNetnsPrefix(info: Pick<CloudInfo, "operatorNetns">): string {
  return info.operatorNetns.replace(/operator$/, "");
}

export interface CloudInfo {
  /** Random per cloud: a stack state written for another cloud names nothing that exists. */
  readonly cloudId: string;
  readonly operatorNetns: string;
  readonly clientNetns: string;
  readonly routerNetns: string;
  readonly servers: readonly ServerInfo[];
}

interface ServerRecord {
  readonly id: number;
  readonly machine: Machine;
  readonly link: string;
  readonly ipv4: string;
  readonly ipv6: string;
  firewallIds: number[];
  /** Attachment id -> interface and network. */
  readonly attachments: Map<number, { readonly ifname: string; readonly networkId: number; readonly ip: string }>;
}

export class LocalCloud {
  private nextId = 1;
  private nextPublic = 10;
  private nextPrimary = 100;
  readonly cloudId = randomBytes(6).toString("hex");
  private readonly networks = new Map<number, { readonly net: RoutedNetwork; readonly ipRange: string; intruder?: { readonly ns: Netns; readonly ip: string } }>();
  private probeClients: { readonly flood: Netns; readonly client2: Netns } | undefined;
  private ca: AcmeCa | undefined;
  private probeAttempts = 0;
  private readonly sshKeys = new Map<number, string>();
  private readonly firewalls = new Map<number, readonly FirewallRule[]>();
  private readonly primaryIps = new Map<number, { readonly type: string; readonly ip: string; assignee?: number | undefined }>();
  private readonly servers = new Map<number, ServerRecord>();
  private readonly attachmentServer = new Map<number, number>();

  private constructor(
    readonly sb: Sandbox,
    private readonly router: Netns,
    private readonly operator: Netns,
    private readonly client: Netns,
    private readonly toolsScript: string,
  ) {}

  static async create(prefix = "inglc"): Promise<LocalCloud> {
    const sb = await Sandbox.create({ prefix });
    try {
      const router = await sb.namespace("isp");
      await router.setForwarding(true);
      await router.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
      const toolsScript = join(sb.dir, "machine-tools.js");
      writeFileSync(toolsScript, buildScript(join(PROJECT_ROOT, "local", "machine", "tools.ts")), { mode: 0o755 });
      const operator = await sb.namespace("operator");
      const client = await sb.namespace("client");
      const cloud = new LocalCloud(sb, router, operator, client, toolsScript);
      await cloud.publicLink(operator, "op0", OPERATOR.ipv4);
      await cloud.publicLink(client, "cl0", CLIENT.ipv4, CLIENT.ipv6);
      await cloud.syncFirewalls();
      return cloud;
    } catch (e) {
      await sb.teardown().catch(() => undefined);
      throw e;
    }
  }

  private id(): number {
    return this.nextId++;
  }

  /** A point-to-point public link from the router, addresses routed as Hetzner does (/32, gateway on-link). */
  private async publicLink(ns: Netns, link: string, ipv4: string, ipv6?: string): Promise<void> {
    await this.sb.veth({ ns: this.router, ifname: link }, { ns, ifname: "eth0" });
    await this.router.addAddress(link, `${PUBLIC_GATEWAY}/32`);
    await this.router.addRoute(`${ipv4}/32`, { dev: link });
    await ns.addAddress("eth0", `${ipv4}/32`);
    await ns.addRoute(PUBLIC_GATEWAY, { dev: "eth0", scopeLink: true });
    await ns.addRoute("default", { via: PUBLIC_GATEWAY, dev: "eth0" });
    if (ipv6 !== undefined) {
      await this.router.exec(["ip", "-6", "addr", "add", "fe80::1/64", "dev", link]);
      await this.router.exec(["ip", "-6", "route", "add", `${ipv6}/128`, "dev", link]);
      await ns.exec(["ip", "-6", "addr", "add", `${ipv6}/64`, "dev", "eth0", "nodad"]);
      await ns.exec(["ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
    }
  }

  private allocateIpv4(): string {
    while (RESERVED_PUBLIC.has(`203.0.113.${this.nextPublic}`)) this.nextPublic++;
    if (this.nextPublic > 250) throw new Error("local cloud: out of public addresses");
    return `203.0.113.${this.nextPublic++}`;
  }

  // --- networks -----------------------------------------------------------------------------

  async createNetwork(ipRange: string): Promise<number> {
    const id = this.id();
    const net = await RoutedNetwork.create(this.sb, { name: `n${id}`, ipRange });
    this.networks.set(id, { net, ipRange });
    return id;
  }

  async deleteNetwork(id: number): Promise<void> {
    const n = this.networks.get(id);
    if (!n) return;
    for (const [att, serverId] of this.attachmentServer) {
      if (this.servers.get(serverId)?.attachments.get(att)?.networkId === id) throw new Error(`network ${id} has attached servers (detach them first)`);
    }
    if (n.intruder) await destroyNetns(n.intruder.ns.name, n.intruder.ns.inode);
    await destroyNetns(n.net.router.name, n.net.router.inode);
    this.networks.delete(id);
  }

  // --- keys, firewalls, placement, primary IPs -----------------------------------------------

  createSshKey(publicKey: string): number {
    const id = this.id();
    this.sshKeys.set(id, publicKey.trim());
    return id;
  }

  deleteSshKey(id: number): void {
    this.sshKeys.delete(id);
  }

  async createFirewall(rules: readonly FirewallRule[]): Promise<number> {
    const id = this.id();
    this.firewalls.set(id, rules);
    return id;
  }

  async updateFirewall(id: number, rules: readonly FirewallRule[]): Promise<void> {
    if (!this.firewalls.has(id)) throw new Error(`firewall ${id} not found`);
    this.firewalls.set(id, rules);
    await this.syncFirewalls();
  }

  async deleteFirewall(id: number): Promise<void> {
    for (const s of this.servers.values()) if (s.firewallIds.includes(id)) throw new Error(`firewall ${id} is still applied to server ${s.id}`);
    this.firewalls.delete(id);
  }

  createPlacementGroup(): number {
    return this.id();
  }

  createPrimaryIp(type: string): { id: number; ip: string } {
    const id = this.id();
    // 198.51.100.128/25 stands in for podman's container network in the sandbox's DNAT scenario.
    if (type !== "ipv6" && this.nextPrimary > 127) throw new Error("local cloud: out of primary IPv4 addresses (198.51.100.100-127)");
    const ip = type === "ipv6" ? serverIpv6Net(id) : `198.51.100.${this.nextPrimary++}`;
    this.primaryIps.set(id, { type, ip });
    return { id, ip };
  }

  deletePrimaryIp(id: number): void {
    const p = this.primaryIps.get(id);
    if (p?.assignee !== undefined && this.servers.has(p.assignee)) throw new Error(`primary IP ${id} is assigned to server ${p.assignee}`);
    this.primaryIps.delete(id);
  }

  // --- servers ------------------------------------------------------------------------------

  async createServer(o: {
    readonly name: string;
    readonly sshKeyIds: readonly number[];
    readonly firewallIds: readonly number[];
    readonly userData: string;
    readonly primaryIpv4?: number;
    readonly primaryIpv6?: number;
  }): Promise<ServerInfo> {
    const id = this.id();
    const keys = o.sshKeyIds.map((k) => {
      const key = this.sshKeys.get(k);
      if (key === undefined) throw new Error(`ssh key ${k} not found`);
      return key;
    });
    for (const f of o.firewallIds) if (!this.firewalls.has(f)) throw new Error(`firewall ${f} not found`);
    const primary = (pid: number | undefined) => {
      if (pid === undefined) return undefined;
      const p = this.primaryIps.get(pid);
      if (!p) throw new Error(`primary IP ${pid} not found`);
      if (p.assignee !== undefined && this.servers.has(p.assignee)) throw new Error(`primary IP ${pid} is already assigned to server ${p.assignee}`);
      p.assignee = id;
      return p.ip;
    };
    const ipv4 = primary(o.primaryIpv4) ?? this.allocateIpv4();
    const v6net = primary(o.primaryIpv6) ?? serverIpv6Net(id);
    const ipv6 = v6net.replace(/\/64$/, "").replace(/::$/, "::1");
    const ns = await this.sb.namespace(`srv${id}`);
    const link = `pub${id}`;
    let machine: Machine;
    try {
      await this.publicLink(ns, link, ipv4, ipv6);
      machine = await Machine.create(this.sb, ns, { id, name: o.name, authorizedKeys: keys, userData: o.userData, toolsScript: this.toolsScript });
    } catch (e) {
      // A server that failed to come up leaves nothing: no namespace, link, route or address claim.
      await destroyNetns(ns.name, ns.inode);
      await this.router.exec(["ip", "link", "del", link], { allowFailure: true });
      await this.router.exec(["ip", "route", "del", `${ipv4}/32`], { allowFailure: true });
      for (const p of this.primaryIps.values()) if (p.assignee === id) delete p.assignee;
      throw e;
    }
    this.servers.set(id, { id, machine, link, ipv4, ipv6, firewallIds: [...o.firewallIds], attachments: new Map() });
    await this.syncFirewalls();
    // The operator would now create the DNS records: in this cloud they exist as soon as the server does.
    await this.ca?.serverCreated(o.name, ipv4);
    return this.serverInfo(id);
  }

  // Deleting what is already gone succeeds, as the hcloud provider treats a 404 on delete.
  async deleteServer(id: number): Promise<void> {
    const s = this.servers.get(id);
    if (!s) return;
    await s.machine.destroy();
    // Its disk goes with it: the overlays hold its secrets and host key.
    rmSync(s.machine.dir, { recursive: true, force: true });
    await this.router.exec(["ip", "link", "del", s.link], { allowFailure: true });
    for (const p of this.primaryIps.values()) if (p.assignee === id) delete p.assignee;
    for (const att of s.attachments.keys()) this.attachmentServer.delete(att);
    this.servers.delete(id);
    await this.syncFirewalls();
  }

  async setServerFirewalls(id: number, firewallIds: readonly number[]): Promise<void> {
    const s = this.servers.get(id);
    if (!s) throw new Error(`server ${id} not found`);
    s.firewallIds = [...firewallIds];
    await this.syncFirewalls();
  }

  serverInfo(id: number): ServerInfo {
    const s = this.servers.get(id);
    if (!s) throw new Error(`server ${id} not found`);
    const privateIps: Record<string, string> = {};
    for (const a of s.attachments.values()) privateIps[this.networks.get(a.networkId)?.ipRange ?? String(a.networkId)] = a.ip;
    return { id, name: s.machine.spec.name, ipv4: s.ipv4, ipv6: s.ipv6, netns: s.machine.ns.name, initPid: s.machine.init.pid, privateIps };
  }

  // --- attachments --------------------------------------------------------------------------

  /** Hot-adds a private interface to a running server, as hcloud_server_network does. */
  async attach(serverId: number, networkId: number, ip: string): Promise<number> {
    const s = this.servers.get(serverId);
    if (!s) throw new Error(`server ${serverId} not found`);
    const n = this.networks.get(networkId);
    if (!n) throw new Error(`network ${networkId} not found`);
    for (const a of s.attachments.values()) if (a.networkId === networkId) throw new Error(`server ${serverId} is already attached to network ${networkId}`);
    if (this.usedIps(networkId).has(ip)) throw new Error(`ip ${ip} is already used in network ${networkId}`);
    const used = new Set([...s.attachments.values()].map((a) => a.ifname));
    let i = 10;
    while (used.has(`ens${i}`)) i++;
    const ifname = `ens${i}`;
    await n.net.attach(s.machine.ns, { ip, ifname });
    // Hetzner's network answers for every address itself: a replaced server that takes over an
    // address is reachable at once, with no neighbour entry of the old one left to time out.
    await n.net.router.exec(["ip", "neigh", "flush", "to", ip], { allowFailure: true });
    const id = this.id();
    s.attachments.set(id, { ifname, networkId, ip });
    this.attachmentServer.set(id, serverId);
    return id;
  }

  /** Private addresses taken in a network: its servers' and the sandbox's intruder's. */
  private usedIps(networkId: number): Set<string> {
    const used = new Set<string>();
    for (const srv of this.servers.values()) for (const a of srv.attachments.values()) if (a.networkId === networkId) used.add(a.ip);
    const intruder = this.networks.get(networkId)?.intruder;
    if (intruder) used.add(intruder.ip);
    return used;
  }

  async detach(attachmentId: number): Promise<void> {
    const serverId = this.attachmentServer.get(attachmentId);
    const s = serverId === undefined ? undefined : this.servers.get(serverId);
    const a = s?.attachments.get(attachmentId);
    // Gone with its server: hcloud removes a server's attachments when it deletes the server.
    if (!s || !a) return;
    await s.machine.ns.exec(["ip", "link", "del", a.ifname]);
    s.attachments.delete(attachmentId);
    this.attachmentServer.delete(attachmentId);
  }

  // --- firewalls at the router --------------------------------------------------------------

  private async syncFirewalls(): Promise<void> {
    const guarded = [...this.servers.values()]
      .filter((s) => s.firewallIds.length > 0)
      .map((s) => ({ serverId: s.id, link: s.link, rules: s.firewallIds.flatMap((f) => this.firewalls.get(f) ?? []) }));
    await this.router.nft(firewallRuleset(guarded));
  }

  // --- probes for the sandbox's checks ---------------------------------------------------------

  /** The flood and client2 clients, and an intruder in every private network; idempotent. */
  async probes(): Promise<ProbeInfo> {
    if (!this.probeClients) {
      const flood = await this.probeNamespace("flood", (ns) => this.publicLink(ns, `fl${this.probeAttempts}`, FLOOD.ipv4));
      const client2 = await this.probeNamespace("client2", (ns) => this.publicLink(ns, `ct${this.probeAttempts}`, CLIENT2.ipv4));
      this.probeClients = { flood, client2 };
    }
    const intruders: ProbeInfo["intruders"][number][] = [];
    for (const [id, n] of this.networks) {
      if (!n.intruder) {
        // The highest address no server has: the end of the range, where stacks rarely look.
        const range = parseIpv4Cidr(n.ipRange);
        const used = this.usedIps(id);
        let host = range.network + 2 ** (32 - range.prefix) - 2;
        while (used.has(formatIpv4(host)) && host > range.network + 2) host--;
        const ip = formatIpv4(host);
        const ns = await this.probeNamespace(`intruder${id}`, (x) => n.net.attach(x, { ip, ifname: "ens10" }));
        n.intruder = { ns, ip };
      }
      intruders.push({ ipRange: n.ipRange, netns: n.intruder.ns.name, ip: n.intruder.ip });
    }
    return { flood: this.probeClients.flood.name, client2: this.probeClients.client2.name, intruders };
  }

  // --- the ACME CA of the sandbox ----------------------------------------------------------------

  /**
   * `start`: Pebble and its DNS on the public side (made on first call, with `options`); every
   * name resolves to the server named in the options once it exists; a CA that is down comes
   * back up. `stop`: the CA goes down (refuses connections; its DNS stays). `resolve`: every
   * name to `ipv4` instead. Each returns the CA's info.
   */
  async acmeCa(action: "start" | "stop" | "info" | "resolve", arg?: AcmeCaOptions | string): Promise<AcmeCaInfo> {
    if (action === "start") {
      if (!this.ca) {
        const options = arg as AcmeCaOptions | undefined;
        if (!options?.resolveToServer) throw new Error("acmeCa start: name the server every name resolves to (resolveToServer)");
        const ns = await this.probeNamespace("acmeca", (x) => this.publicLink(x, `ca${this.probeAttempts}`, ACME_CA_IPV4));
        this.ca = await AcmeCa.create(this.sb, ns, options);
        const existing = [...this.servers.values()].find((s) => s.machine.spec.name === options.resolveToServer);
        if (existing) await this.ca.serverCreated(existing.machine.spec.name, existing.ipv4);
      } else {
        await this.ca.start();
        await this.ca.up();
      }
      return this.ca.info();
    }
    if (!this.ca) throw new Error("the local cloud runs no ACME CA (acmeCa start makes one)");
    if (action === "stop") await this.ca.down();
    if (action === "resolve") {
      if (typeof arg !== "string") throw new Error("acmeCa resolve: give the IPv4 address every name should resolve to");
      await this.ca.resolveTo(arg);
    }
    return this.ca.info();
  }

  /** A namespace wired by `wire`; one that fails half-way is removed, and the next try gets a fresh name. */
  private async probeNamespace(role: string, wire: (ns: Netns) => Promise<unknown>): Promise<Netns> {
    const ns = await this.sb.namespace(`${role}-${++this.probeAttempts}`);
    try {
      await wire(ns);
      return ns;
    } catch (e) {
      await destroyNetns(ns.name, ns.inode);
      throw e;
    }
  }

  info(): CloudInfo {
    return {
      cloudId: this.cloudId,
      operatorNetns: this.operator.name,
      clientNetns: this.client.name,
      routerNetns: this.router.name,
      servers: [...this.servers.keys()].map((id) => this.serverInfo(id)),
    };
  }

  async teardown(): Promise<void> {
    await this.sb.teardown();
  }
}
