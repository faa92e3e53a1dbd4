/**
 * What the namespace tests need on top of sandbox/: point-to-point veths that
 * carry traffic at once, and the lines a daemon wrote to its sandbox log.
 */
import { readFileSync } from "node:fs";
import { pollUntil } from "../../../sandbox/command";
import type { Netns } from "../../../sandbox/netns";
import type { ManagedProcess } from "../../../sandbox/process";
import type { Sandbox } from "../../../sandbox/sandbox";

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
