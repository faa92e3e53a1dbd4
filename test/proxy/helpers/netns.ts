/**
 * Network namespaces for tests, joined by veth pairs created directly inside
 * them, so the root namespace has neither the links nor a route to these
 * addresses. Everything is named pxt-<pid>-<tag>-* and removed by
 * `destroy()`, also on process exit.
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";

export interface Namespaces<Role extends string> {
  readonly ns: Readonly<Record<Role, string>>;
  spawnIn(ns: string, command: string, args: string[]): ChildProcess;
  execIn(ns: string, command: string, args: string[], input?: string, timeoutMs?: number): string;
  destroy(): Promise<void>;
}

/** A veth pair between two namespaces; addresses with their prefix length, IPv6 ones added without DAD. */
export interface LinkSpec<Role extends string> {
  readonly a: Role;
  readonly b: Role;
  readonly addressesA: readonly string[];
  readonly addressesB: readonly string[];
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

export function createNamespaces<Role extends string>(tag: string, roles: readonly Role[], links: readonly LinkSpec<Role>[]): Namespaces<Role> {
  const prefix = `pxt-${process.pid}-${tag}`;
  const ns = Object.fromEntries(roles.map((role) => [role, `${prefix}-${role}`])) as Record<Role, string>;
  // veth names are limited to 15 characters
  const short = `${process.pid % 100000}${tag.slice(0, 2)}`;
  const children = new Set<ChildProcess>();
  let destroyed = false;
  const cleanup = () => {
    if (destroyed) return;
    destroyed = true;
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    for (const name of Object.values<string>(ns)) {
      try {
        ip("netns", "del", name);
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", cleanup);
  try {
    for (const name of Object.values<string>(ns)) {
      ip("netns", "add", name);
      ip("-n", name, "link", "set", "lo", "up");
      // Without this the link-local address sits in DAD for ~1 s and the first IPv6 SYN is retransmitted.
      execFileSync("ip", ["netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    }
    const ends: [string, string][] = [];
    links.forEach((link, i) => {
      const [devA, devB] = [`v${i}a${short}`, `v${i}b${short}`];
      ip("link", "add", devA, "netns", ns[link.a], "type", "veth", "peer", "name", devB, "netns", ns[link.b]);
      for (const [n, dev, addresses] of [[ns[link.a], devA, link.addressesA], [ns[link.b], devB, link.addressesB]] as const) {
        for (const address of addresses) {
          if (address.includes(":")) ip("-n", n, "-6", "addr", "add", address, "dev", dev, "nodad");
          else ip("-n", n, "addr", "add", address, "dev", dev);
        }
        ip("-n", n, "link", "set", dev, "up");
        ends.push([n, dev]);
      }
    });
    // The first SYN sent before a veth has carrier is lost and retried only after 1 s.
    const until = Date.now() + 3000;
    for (const [n, dev] of ends) {
      while (!/state UP/.test(ip("-n", n, "link", "show", "dev", dev)) && Date.now() < until) execFileSync("sleep", ["0.01"]);
    }
  } catch (error) {
    cleanup();
    throw error;
  }
  return {
    ns,
    spawnIn(name, command, args) {
      const child = spawn("ip", ["netns", "exec", name, command, ...args], { stdio: ["pipe", "pipe", "pipe"] });
      children.add(child);
      child.on("exit", () => children.delete(child));
      return child;
    },
    execIn(name, command, args, input, timeoutMs = 10_000) {
      return execFileSync("ip", ["netns", "exec", name, command, ...args], { input: input ?? "", timeout: timeoutMs, stdio: ["pipe", "pipe", "pipe"] }).toString();
    },
    async destroy() {
      const waits = [...children].map((child) => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", () => resolve()))));
      for (const child of children) child.kill("SIGTERM");
      await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 2000))]);
      cleanup();
      process.removeListener("exit", cleanup);
    },
  };
}

/** client <-> proxy <-> backend, each link with an IPv4 and an IPv6 subnet. */
export interface Topology extends Namespaces<"client" | "proxy" | "backend"> {
  readonly addr: {
    readonly client4: string; readonly proxyFront4: string; readonly proxyBack4: string; readonly backend4: string;
    readonly client6: string; readonly proxyFront6: string; readonly proxyBack6: string; readonly backend6: string;
  };
}

export function createTopology(tag: string): Topology {
  const namespaces = createNamespaces(tag, ["client", "proxy", "backend"], [
    { a: "client", b: "proxy", addressesA: ["10.77.1.2/24", "fd77:1::2/64"], addressesB: ["10.77.1.1/24", "fd77:1::1/64"] },
    { a: "proxy", b: "backend", addressesA: ["10.77.2.1/24", "fd77:2::1/64"], addressesB: ["10.77.2.2/24", "fd77:2::2/64"] },
  ]);
  return {
    ...namespaces,
    addr: {
      client4: "10.77.1.2", proxyFront4: "10.77.1.1", proxyBack4: "10.77.2.1", backend4: "10.77.2.2",
      client6: "fd77:1::2", proxyFront6: "fd77:1::1", proxyBack6: "fd77:2::1", backend6: "fd77:2::2",
    },
  };
}

/** Polls until something listens on `port` inside `ns`. */
export async function waitListening(topo: Pick<Namespaces<string>, "execIn">, ns: string, port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const out = topo.execIn(ns, "ss", ["-Hltn", `sport = :${port}`]);
    if (out.trim().length > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listening on :${port} in ${ns}`);
}
