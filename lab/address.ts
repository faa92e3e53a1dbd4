// Just enough IPv4 arithmetic to derive a network's gateway and check that
// an address belongs to it. IPv6 addresses are always given explicitly.

export interface Ipv4Cidr {
  readonly network: number;
  readonly prefix: number;
}

export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) throw new Error(`not an IPv4 address: "${text}"`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new Error(`not an IPv4 address: "${text}"`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const [addr, len, extra] = text.split("/");
  const prefix = Number(len);
  if (addr === undefined || extra !== undefined || !/^\d{1,2}$/.test(len ?? "") || prefix > 32) {
    throw new Error(`not an IPv4 CIDR: "${text}"`);
  }
  const size = 2 ** (32 - prefix);
  const a = parseIpv4(addr);
  if (a % size !== 0) throw new Error(`"${text}" has host bits set`);
  return { network: a, prefix };
}

export function ipv4InCidr(address: string, cidr: Ipv4Cidr): boolean {
  const size = 2 ** (32 - cidr.prefix);
  const a = parseIpv4(address);
  return a >= cidr.network && a < cidr.network + size;
}

/** Hetzner puts a network's router at the first host address (.1). */
export function firstHost(cidr: Ipv4Cidr): string {
  return formatIpv4(cidr.network + 1);
}
