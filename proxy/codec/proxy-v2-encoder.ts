/**
 * Encodes a PROXY protocol v2 header (HAProxy doc/proxy-protocol.txt §2.2).
 * Exact bytes, no I/O: the session prepends the result to the first write.
 */
import { parseIP, unmapIPv4 } from "./ip-address";

export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
export const PP2_TYPE_AUTHORITY = 0x02;
const VERSION_2 = 0x20;
const CMD_LOCAL = 0x00;
const CMD_PROXY = 0x01;
const AF_UNSPEC = 0x00;
const TCP4 = 0x11;
const TCP6 = 0x21;

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface ProxyV2Tlv {
  readonly type: number;
  readonly value: Uint8Array;
}

export type ProxyV2Header =
  | { readonly command: "local" }
  | {
      readonly command: "proxy";
      readonly source: Endpoint;
      readonly destination: Endpoint;
      /** PP2_TYPE_AUTHORITY: the host name the client asked for (the SNI). */
      readonly authority?: string;
      readonly tlvs?: readonly ProxyV2Tlv[];
    };

export class ProxyV2EncodeError extends Error {
  constructor(readonly code: "bad-address" | "bad-port" | "tlv-too-large" | "header-too-large", message: string) {
    super(message);
  }
}

function addressBytes(address: string): Uint8Array {
  const bytes = parseIP(address);
  if (bytes === null) throw new ProxyV2EncodeError("bad-address", `not an IP address: ${address}`);
  return unmapIPv4(bytes);
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ProxyV2EncodeError("bad-port", `bad port ${port}`);
  return port;
}

function toIPv6(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

export function encodeProxyV2(header: ProxyV2Header): Buffer {
  if (header.command === "local") {
    const out = Buffer.alloc(16);
    out.set(PROXY_V2_SIGNATURE, 0);
    out[12] = VERSION_2 | CMD_LOCAL;
    out[13] = AF_UNSPEC;
    return out;
  }
  let src = addressBytes(header.source.address);
  let dst = addressBytes(header.destination.address);
  // Both IPv4 (after folding ::ffff:) -> TCP4; otherwise both as IPv6.
  const v4 = src.length === 4 && dst.length === 4;
  if (!v4) [src, dst] = [toIPv6(src), toIPv6(dst)];
  const tlvs: ProxyV2Tlv[] = [];
  if (header.authority !== undefined) tlvs.push({ type: PP2_TYPE_AUTHORITY, value: Buffer.from(header.authority, "ascii") });
  tlvs.push(...(header.tlvs ?? []));
  const addressLength = v4 ? 12 : 36;
  let tlvLength = 0;
  for (const tlv of tlvs) {
    if (tlv.value.length > 0xffff) throw new ProxyV2EncodeError("tlv-too-large", `TLV 0x${tlv.type.toString(16)} too large`);
    tlvLength += 3 + tlv.value.length;
  }
  const length = addressLength + tlvLength;
  if (length > 0xffff) throw new ProxyV2EncodeError("header-too-large", "PROXY v2 header exceeds 65535 bytes");
  const out = Buffer.alloc(16 + length);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = VERSION_2 | CMD_PROXY;
  out[13] = v4 ? TCP4 : TCP6;
  out.writeUInt16BE(length, 14);
  let pos = 16;
  out.set(src, pos);
  pos += src.length;
  out.set(dst, pos);
  pos += dst.length;
  out.writeUInt16BE(checkPort(header.source.port), pos);
  out.writeUInt16BE(checkPort(header.destination.port), pos + 2);
  pos += 4;
  for (const tlv of tlvs) {
    out[pos] = tlv.type;
    out.writeUInt16BE(tlv.value.length, pos + 1);
    out.set(tlv.value, pos + 3);
    pos += 3 + tlv.value.length;
  }
  return out;
}
