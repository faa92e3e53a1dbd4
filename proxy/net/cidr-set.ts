/** A set of CIDR blocks; IPv4-mapped IPv6 peers are matched as IPv4. */
import { parseIP, unmapIPv4 } from "../codec/ip-address";

interface Block {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

export class CidrSet {
  private readonly blocks: Block[] = [];

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, prefixText] = cidr.split("/");
      const bytes = parseIP(address ?? "");
      const prefix = Number(prefixText);
      if (bytes === null || !Number.isInteger(prefix) || prefix < 0 || prefix > bytes.length * 8) {
        throw new Error(`invalid CIDR: ${cidr}`);
      }
      // An ::ffff:0:0/96-style block is an IPv4 block in disguise.
      if (bytes.length === 16 && prefix >= 96 && unmapIPv4(bytes).length === 4) {
        this.blocks.push({ bytes: bytes.slice(12), prefix: prefix - 96 });
      } else {
        this.blocks.push({ bytes, prefix });
      }
    }
  }

  has(address: string): boolean {
    const parsed = parseIP(address);
    if (parsed === null) return false;
    const bytes = unmapIPv4(parsed);
    return this.blocks.some((block) => block.bytes.length === bytes.length && prefixMatches(block, bytes));
  }
}

function prefixMatches(block: Block, bytes: Uint8Array): boolean {
  const full = block.prefix >> 3;
  for (let i = 0; i < full; i++) if (block.bytes[i] !== bytes[i]) return false;
  const rest = block.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (block.bytes[full]! & mask) === (bytes[full]! & mask);
}
