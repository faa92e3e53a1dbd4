import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { run, runSync, sleep, sleepSync, type RunOptions, type RunResult } from "./command";
import { ManagedProcess } from "./process";
import { killQuietly, netnsInode, pidsInNetns } from "./procfs";

/** What a namespace needs from the run that owns it. */
export interface NetnsOwner {
  readonly logDir: string;
  track(process: ManagedProcess): void;
  claimName(base: string): string;
}

export interface RouteOptions {
  readonly via?: string;
  readonly dev?: string;
  /** `scope link`: the destination is on the wire of `dev`, no gateway. */
  readonly scopeLink?: boolean;
  readonly src?: string;
}

export interface ListeningSocket {
  readonly address: string;
  readonly port: number;
}

export interface SpawnInNetnsOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function assertIfname(ifname: string): void {
  // The kernel's IFNAMSIZ is 16 including the NUL.
  if (!IFNAME.test(ifname)) throw new Error(`invalid interface name "${ifname}" (1-15 of [A-Za-z0-9_.-])`);
}

/**
 * One network namespace, standing for one machine (or one switch, router or
 * container). Every operation goes through `ip -n` or `ip netns exec`, so the
 * root namespace never gets a link, address or route from us.
 */
export class Netns {
  private constructor(
    readonly name: string,
    /** The short role name the caller chose, e.g. "lb". */
    readonly host: string,
    /** Identifies the namespace in /proc even after its name is deleted. */
    readonly inode: number,
    private readonly owner: NetnsOwner,
  ) {}

  /** Creates the namespace with lo up and forwarding explicitly off. */
  static async create(name: string, host: string, owner: NetnsOwner): Promise<Netns> {
    await run(["ip", "netns", "add", name]);
    const ns = new Netns(name, host, netnsInode(name), owner);
    await ns.ip(["link", "set", "lo", "up"]);
    // A new namespace starts with forwarding off today; saying it keeps the
    // regression scenario independent of kernel defaults.
    await ns.setForwarding(false);
    return ns;
  }

  /**
   * A namespace that another process made and owns (the local cloud's machines): this one
   * runs commands and processes in it but never deletes it.
   */
  static attach(name: string, host: string, owner: NetnsOwner): Netns {
    return new Netns(name, host, netnsInode(name), owner);
  }

  exec(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...argv], options);
  }

  ip(args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run(["ip", "-n", this.name, ...args], options);
  }

  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec(["sysctl", "-qw", `${key}=${value}`]);
  }

  async readSysctl(key: string): Promise<string> {
    return (await this.exec(["sysctl", "-n", key])).stdout.trim();
  }

  async setForwarding(on: boolean): Promise<void> {
    const v = on ? 1 : 0;
    await this.sysctl("net.ipv4.ip_forward", v);
    await this.sysctl("net.ipv6.conf.all.forwarding", v);
  }

  async linkUp(ifname: string): Promise<void> {
    await this.ip(["link", "set", "dev", ifname, "up"]);
  }

  async setMtu(ifname: string, mtu: number): Promise<void> {
    await this.ip(["link", "set", "dev", ifname, "mtu", String(mtu)]);
  }

  async linkMtu(ifname: string): Promise<number> {
    const r = await this.ip(["-j", "link", "show", "dev", ifname]);
    const links = JSON.parse(r.stdout) as Array<{ mtu?: number }>;
    const mtu = links[0]?.mtu;
    if (mtu === undefined) throw new Error(`${this.name}: no mtu for ${ifname}`);
    return mtu;
  }

  /** IPv6 addresses skip duplicate address detection, which would hold them tentative for ~2 s. */
  async addAddress(ifname: string, cidr: string): Promise<void> {
    const dad = cidr.includes(":") ? ["nodad"] : [];
    await this.ip(["addr", "add", cidr, "dev", ifname, ...dad]);
  }

  async addRoute(destination: string, options: RouteOptions): Promise<void> {
    const args = [destination.includes(":") ? "-6" : "-4", "route", "add", destination];
    if (options.via !== undefined) args.push("via", options.via);
    if (options.dev !== undefined) args.push("dev", options.dev);
    if (options.scopeLink === true) args.push("scope", "link");
    if (options.src !== undefined) args.push("src", options.src);
    await this.ip(args);
  }

  /**
   * A bridge with a fixed MAC address. Left to itself, a bridge takes the lowest MAC of its
   * ports, so plugging in a new machine could change the gateway's MAC under every machine
   * already on it; their neighbour entries would then point nowhere until they expire, and
   * every connection through the gateway time out meanwhile (a real switch never does that).
   */
  async addBridge(name: string, mtu: number): Promise<void> {
    assertIfname(name);
    // Locally administered, unicast.
    const mac = ["02", ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
    await this.ip(["link", "add", "name", name, "mtu", String(mtu), "address", mac, "type", "bridge"]);
    await this.linkUp(name);
  }

  async addToBridge(port: string, bridge: string): Promise<void> {
    await this.ip(["link", "set", "dev", port, "master", bridge]);
  }

  /** Loads an nftables ruleset (nft -f syntax) into this namespace. */
  async nft(ruleset: string): Promise<void> {
    await this.exec(["nft", "-f", "-"], { input: ruleset });
  }

  async listeningTcp(): Promise<ListeningSocket[]> {
    const r = await this.exec(["ss", "-Hltn"]);
    const sockets: ListeningSocket[] = [];
    for (const line of r.stdout.split("\n")) {
      // State Recv-Q Send-Q Local:Port Peer:Port
      const local = line.trim().split(/\s+/)[3];
      if (local === undefined) continue;
      const cut = local.lastIndexOf(":");
      const address = local.slice(0, cut).replace(/^\[|\]$/g, "").replace(/%.*$/, "");
      sockets.push({ address, port: Number(local.slice(cut + 1)) });
    }
    return sockets;
  }

  /**
   * Starts a long-lived process inside the namespace. `ip netns exec` execs
   * the command in place, so the pid is the daemon's own.
   */
  async spawn(name: string, argv: readonly string[], options: SpawnInNetnsOptions = {}): Promise<ManagedProcess> {
    const p = await ManagedProcess.start({
      name: `${this.host}/${name}`,
      argv: ["ip", "netns", "exec", this.name, ...argv],
      logPath: join(this.owner.logDir, `${this.owner.claimName(`log:${this.host}-${name}`).slice(4)}.log`),
      env: options.env,
      cwd: options.cwd,
    });
    this.owner.track(p);
    return p;
  }
}

export interface VethEnd {
  readonly ns: Netns;
  readonly ifname: string;
}

/** Creates both ends directly inside their namespaces and brings them up. */
export async function createVeth(a: VethEnd, b: VethEnd, mtu: number): Promise<void> {
  assertIfname(a.ifname);
  assertIfname(b.ifname);
  const m = String(mtu);
  await a.ns.ip(["link", "add", "name", a.ifname, "mtu", m, "type", "veth", "peer", "name", b.ifname, "mtu", m, "netns", b.ns.name]);
  await a.ns.linkUp(a.ifname);
  await b.ns.linkUp(b.ifname);
}

/**
 * Kills every process still inside the namespace, then deletes it. Killing
 * first matters: a deleted name does not end a namespace that still holds a
 * process, and its veths and sockets would live on unseen.
 */
export async function destroyNetns(name: string, inode: number): Promise<void> {
  const inodes = new Set([inode]);
  for (let round = 0; round < 100; round++) {
    const pids = pidsInNetns(inodes);
    if (pids.length === 0) break;
    for (const pid of pids) killQuietly(pid, "SIGKILL");
    await sleep(20);
  }
  await run(["ip", "netns", "del", name], { allowFailure: true });
}

export function destroyNetnsSync(name: string, inode: number | undefined): void {
  if (inode !== undefined) {
    const inodes = new Set([inode]);
    for (let round = 0; round < 100; round++) {
      const pids = pidsInNetns(inodes);
      if (pids.length === 0) break;
      for (const pid of pids) killQuietly(pid, "SIGKILL");
      sleepSync(20);
    }
  }
  runSync(["ip", "netns", "del", name]);
}
