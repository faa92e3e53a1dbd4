/**
 * What the namespace tests need on top of sandbox/: point-to-point veths that
 * carry traffic at once, and the lines a daemon wrote to its sandbox log.
 */
import { readFileSync } from "node:fs";
import { pollUntil } from "../../../lab/command";
import type { Netns } from "../../../lab/netns";
import type { ManagedProcess } from "../../../lab/process";
import type { Sandbox } from "../../../lab/sandbox";

/** Namespaces named after their roles, IPv6 DAD off for every link created in them later. */
export async function namespaces<Role extends string>(sb: Sandbox, roles: readonly Role[]): Promise<Record<Role, Netns>> {
  const out = {} as Record<Role, Netns>;
  for (const role of roles) {
    const ns = await sb.namespace(role);
    // Without this the link-local address sits in DAD for ~1 s and the first IPv6 SYN is retransmitted.
    await ns.sysctl("net.ipv6.conf.default.accept_dad", 0);
    out[role] = ns;
  }
  return out;
}

export interface LinkEnd {
  readonly ns: Netns;
  readonly ifname: string;
  /** With their prefix length; IPv6 ones are added without DAD. */
  readonly addresses: readonly string[];
}

/** A veth pair between two namespaces, addressed, and returned once both ends have carrier. */
export async function link(sb: Sandbox, a: LinkEnd, b: LinkEnd): Promise<void> {
  await sb.veth({ ns: a.ns, ifname: a.ifname }, { ns: b.ns, ifname: b.ifname });
  for (const end of [a, b]) for (const address of end.addresses) await end.ns.addAddress(end.ifname, address);
  // The first SYN sent before a veth has carrier is lost and retried only after 1 s.
  for (const end of [a, b]) {
    await pollUntil(
      `${end.ns.host}/${end.ifname} carrier`,
      async () => (/state UP/.test((await end.ns.ip(["link", "show", "dev", end.ifname])).stdout) ? true : undefined),
      { timeoutMs: 3000, intervalMs: 10 },
    );
  }
}

/** The process's log (stdout and stderr together), line by line. */
export function logLines(p: ManagedProcess): string[] {
  return readFileSync(p.logPath, "utf8").split("\n").filter((l) => l !== "");
}

/** The JSON lines of a process that logs JSON on stdout; anything it wrote on stderr is skipped. */
export function jsonLines(p: ManagedProcess): Record<string, unknown>[] {
  return logLines(p).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A client and an LB namespace on one link, the client able to send from every address of
 * `sources` (an AnyIP route on its loopback; IPv6 also needs non-local binds) and the LB
 * routing those back: many sources from one process, all inside the sandbox.
 */
export async function manySourcesLab(sb: Sandbox, o: { readonly client: string; readonly lb: string; readonly prefixLength: number; readonly sources: readonly string[] }): Promise<Record<"client" | "lb", Netns>> {
  const ns = await namespaces(sb, ["client", "lb"]);
  await link(sb, { ns: ns.client, ifname: "up", addresses: [`${o.client}/${o.prefixLength}`] }, { ns: ns.lb, ifname: "down", addresses: [`${o.lb}/${o.prefixLength}`] });
  const v6 = o.client.includes(":");
  if (v6) await ns.client.sysctl("net.ipv6.ip_nonlocal_bind", 1);
  const family = v6 ? ["-6"] : [];
  for (const cidr of o.sources) {
    await ns.client.exec(["ip", ...family, "route", "add", "local", cidr, "dev", "lo"]);
    await ns.lb.exec(["ip", ...family, "route", "add", cidr, "via", o.client]);
  }
  return ns;
}
