// IPv4/IPv6 address and CIDR arithmetic for validation. Pure: no I/O.
import { isIPv4, isIPv6 } from "node:net";

export interface Ipv4Cidr {
  readonly family: 4;
  readonly base: number; // network address as an unsigned 32-bit integer
  readonly prefix: number;
  readonly text: string;
}

export interface Ipv6Cidr {
  readonly family: 6;
  readonly base: bigint;
  readonly prefix: number;
  readonly text: string;
}

export type Cidr = Ipv4Cidr | Ipv6Cidr;

export function ipv4ToInt(ip: string): number | undefined {
  if (!isIPv4(ip)) return undefined;
  return ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

function ipv6ToBigInt(ip: string): bigint | undefined {
  if (!isIPv6(ip)) return undefined;
  let text = ip;
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4ToInt(dotted[1]!)!;
    text = text.slice(0, -dotted[1]!.length) + `${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = tail === undefined ? headParts : [...headParts, ...Array<string>(missing).fill("0"), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) + BigInt(parseInt(part, 16)), 0n);
}

/** Parses "a.b.c.d/n" or "x::/n". A CIDR whose host bits are set is rejected, because it is almost always a typo. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  if (slash < 0) return `"${text}" is not a CIDR: write it as address/prefix, e.g. 172.24.0.0/16`;
  const addr = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return `"${text}" has an invalid prefix length`;
  const prefix = Number(prefixText);
  const v4 = ipv4ToInt(addr);
  if (v4 !== undefined) {
    if (prefix > 32) return `"${text}" has a prefix longer than 32`;
    const size = 2 ** (32 - prefix);
    if (v4 % size !== 0) return `"${text}" has host bits set; the network is ${intToIpv4(v4 - (v4 % size))}/${prefix}`;
    return { family: 4, base: v4, prefix, text };
  }
  const v6 = ipv6ToBigInt(addr);
  if (v6 !== undefined) {
    if (prefix > 128) return `"${text}" has a prefix longer than 128`;
    const size = 1n << BigInt(128 - prefix);
    if (v6 % size !== 0n) return `"${text}" has host bits set`;
    return { family: 6, base: v6, prefix, text };
  }
  return `"${text}" is not a CIDR: "${addr}" is not an IPv4 or IPv6 address`;
}

export function cidrSize(c: Ipv4Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrContainsIpv4(c: Ipv4Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + cidrSize(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  if (a.family === 4 && b.family === 4) {
    return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
  }
  const av = a as Ipv6Cidr;
  const bv = b as Ipv6Cidr;
  const asz = 1n << BigInt(128 - av.prefix);
  const bsz = 1n << BigInt(128 - bv.prefix);
  return av.base < bv.base + bsz && bv.base < av.base + asz;
}

/** True for 0.0.0.0/0 and ::/0, which open a port to the whole internet. */
export function isWholeInternet(c: Cidr): boolean {
  return c.prefix === 0;
}

/** How many addresses of one family a set of CIDRs covers together (overlaps counted once). */
export function addressesCovered(cidrs: readonly Cidr[], family: 4 | 6): bigint {
  const bits = family === 4 ? 32 : 128;
  const ranges = cidrs
    .filter((c) => c.family === family)
    .map((c) => {
      const start = BigInt(c.base);
      return { start, end: start + (1n << BigInt(bits - c.prefix)) };
    })
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let total = 0n;
  let reach = -1n;
  for (const r of ranges) {
    if (r.end <= reach) continue;
    total += r.end - (r.start > reach ? r.start : reach);
    reach = r.end;
  }
  return total;
}

/**
 * Allow-lists wider than these are a large part of the internet, not an operator's networks:
 * more than a /8 of IPv4 or a /32 of IPv6 (an ISP's whole allocation).
 */
export const WIDE_ALLOW_LIST = { 4: 1n << 24n, 6: 1n << 96n } as const;

/** "2^31 IPv4 addresses (half the IPv4 internet)"-style text for a count of one family. */
export function describeCoverage(count: bigint, family: 4 | 6): string {
  const bits = family === 4 ? 32 : 128;
  const log2 = count.toString(2).length - 1;
  const exact = 1n << BigInt(log2) === count;
  const share = count === 1n << BigInt(bits) ? `the whole IPv${family} internet` : `as much as a /${bits - log2}`;
  return `${exact ? `2^${log2}` : `about 2^${log2}`} IPv${family} addresses (${share})`;
}

/**
 * What a list of sources covers when that is more than an allow-list may (WIDE_ALLOW_LIST), as
 * text for the message; undefined when it is narrow enough.
 */
export function wideCoverage(cidrs: readonly Cidr[]): string | undefined {
  for (const family of [4, 6] as const) {
    const n = addressesCovered(cidrs, family);
    if (n > WIDE_ALLOW_LIST[family]) return describeCoverage(n, family);
  }
  return undefined;
}
