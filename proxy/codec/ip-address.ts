/**
 * Textual IP addresses to and from their wire bytes. Pure, no `node:net`, so
 * the codecs stay usable (and fuzzable) without sockets.
 */

export function parseIPv4(text: string): Uint8Array | null {
  // Four dot-separated parts, each 0-255 in decimal without leading zeros (some stacks read
  // those as octal), read in one pass without splitting.
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // the end closes the last part like a dot
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return null;
      out[part++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    if (c < 0x30 || c > 0x39) return null;
    if (digits > 0 && value === 0) return null;
    value = value * 10 + (c - 0x30);
    if (++digits > 3 || value > 255) return null;
  }
  return part === 4 ? out : null;
}

export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.indexOf(".", lastColon) > lastColon) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const groups = part.split(":");
    const out: number[] = [];
    for (const group of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  if (left === null || right === null) return null;
  const groups = left.length + right.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) return null;
  const all = [...left, ...new Array<number>(8 - groups).fill(0), ...right];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tailV4 !== null) out.set(tailV4, 12);
  return out;
}

/** 4 bytes for IPv4, 16 for IPv6, null when `text` is neither. */
export function parseIP(text: string): Uint8Array | null {
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

export function isIPv4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; fold it back. */
export function unmapIPv4(bytes: Uint8Array): Uint8Array {
  return isIPv4Mapped(bytes) ? bytes.slice(12) : bytes;
}

export function formatIP(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Canonical text for an address as a socket reports it, IPv4-mapped folded. */
export function canonicalIP(text: string): string {
  // Without a colon it is IPv4 or nothing: a valid IPv4 text (no leading zeros, each part
  // 0-255) formats back to itself, and an invalid one is returned as is; either way, `text`.
  if (!text.includes(":")) return text;
  const bytes = parseIP(text);
  return bytes === null ? text : formatIP(unmapIPv4(bytes));
}
