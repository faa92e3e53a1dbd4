// Who may scrape the LB's metrics: `ingress.metrics.scrapers` entries are servers of the stack by
// name or addresses/CIDRs, and the host firewall and both engines' allow-lists take CIDRs. Pure.
import type { MetricsPlan } from "./plan-types";
import type { ServerConfig } from "./schema";

/** An address or CIDR rather than a server's name (names start with a letter and hold no colon). */
export function isScraperAddress(entry: string): boolean {
  return /^[0-9]/.test(entry) || entry.includes(":");
}

/** A scraper address as a CIDR: a bare address is that one host. */
export function scraperCidrText(entry: string): string {
  return entry.includes("/") ? entry : `${entry}/${entry.includes(":") ? 128 : 32}`;
}

/**
 * The scrapers as CIDRs: a named server by its address in each network it shares with the LB
 * (`lbNetworks`, network names), where its scrapes come from. Validation has made sure every
 * name is such a server and every address lies in one of those networks.
 */
export function scraperCidrs(entries: readonly string[], servers: readonly ServerConfig[], lbNetworks: readonly string[]): string[] {
  const byName = new Map(servers.map((s) => [s.name, s]));
  const cidrs = entries.flatMap((entry) => {
    if (isScraperAddress(entry)) return [scraperCidrText(entry)];
    const server = byName.get(entry);
    if (!server) throw new Error(`metrics scraper "${entry}" is no server of the stack (validation should have caught this)`);
    return lbNetworks.flatMap((net) => (server.networks[net] !== undefined ? [`${server.networks[net]}/32`] : []));
  });
  return [...new Set(cidrs)];
}

/**
 * What both engines admit besides the host firewall: the scrapers, and the LB's own addresses
 * (a curl on the LB itself, which nftables lets in over loopback).
 */
export function metricsAllowedSources(metrics: MetricsPlan): string[] {
  return [...new Set([...metrics.scrapers, ...metrics.addresses.map((a) => `${a}/32`)])];
}
