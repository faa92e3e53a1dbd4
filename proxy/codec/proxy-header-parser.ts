/**
 * Strict parser for an inbound PROXY protocol header, v1 (text) or v2
 * (binary), per HAProxy's doc/proxy-protocol.txt. It consumes exactly the
 * header and not one byte more, so what follows (the ClientHello) is left
 * for the next parser. Resumable: feed it the stream in any pieces.
 */
import { crc32c } from "./crc32c";
import { formatIP, parseIPv4, parseIPv6, unmapIPv4 } from "./ip-address";
import { ParseResult } from "./parse-result";
import { Endpoint, PROXY_V2_SIGNATURE, ProxyV2Tlv } from "./proxy-v2-encoder";

export type ProxyHeaderRejectReason =
  | "bad-signature"
  | "v1-too-long"
  | "v1-malformed"
  | "v1-bad-address"
  | "v1-bad-port"
  | "v2-bad-version"
  | "v2-bad-command"
  | "v2-bad-family"
  | "v2-unsupported-family"
  | "v2-length-too-small"
  | "v2-header-too-large"
  | "v2-tlv-truncated"
  | "v2-tlv-length-overflow"
  | "v2-tlv-invalid"
  | "v2-crc-mismatch";

export type InboundProxyHeader =
  | { readonly version: 1 | 2; readonly command: "local"; readonly tlvs: readonly ProxyV2Tlv[] }
  | {
      readonly version: 1 | 2;
      readonly command: "proxy";
      readonly family: "tcp4" | "tcp6";
      readonly source: Endpoint;
      readonly destination: Endpoint;
      readonly tlvs: readonly ProxyV2Tlv[];
    };

export type ProxyHeaderResult = ParseResult<{ readonly header: InboundProxyHeader }, ProxyHeaderRejectReason>;

/** v1: "a 108-byte buffer is always enough" incl. CRLF (spec §2.1). */
const V1_MAX_BYTES = 107;
const V1_PREFIX = Buffer.from("PROXY ", "ascii");
const V2_FIXED_BYTES = 16;
export const DEFAULT_MAX_PROXY_HEADER_BYTES = 4096;

const ADDRESS_BYTES: Readonly<Record<number, number>> = { 0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216 };
/** UNSPEC, then TCP/UDP over IPv4, IPv6 and UNIX (spec §2.2, byte 14). */
const VALID_FAMILIES = new Set([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]);
const PP2_TYPE_CRC32C = 0x03;
const PP2_TYPE_UNIQUE_ID = 0x05;
const PP2_TYPE_SSL = 0x20;

type State = "Signature" | "V1Line" | "V2Fixed" | "V2Body";

export class ProxyHeaderParser {
  private state: State = "Signature";
  private readonly buf: Uint8Array;
  private have = 0;
  private need = 0;
  private final: ProxyHeaderResult | null = null;

  constructor(private readonly maxBytes: number = DEFAULT_MAX_PROXY_HEADER_BYTES) {
    this.buf = new Uint8Array(Math.max(maxBytes, V1_MAX_BYTES));
  }

  push(chunk: Uint8Array): ProxyHeaderResult {
    if (this.final !== null) return this.final;
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.state) {
        case "Signature": {
          // Byte by byte: a v1 header may be shorter than the v2 signature.
          const byte = chunk[pos++]!;
          this.buf[this.have++] = byte;
          const i = this.have - 1;
          const v1 = this.buf.subarray(0, this.have).every((b, k) => b === V1_PREFIX[k]);
          const v2 = this.buf.subarray(0, this.have).every((b, k) => b === PROXY_V2_SIGNATURE[k]);
          if (!v1 && !v2) return this.reject("bad-signature");
          if (v1 && i === V1_PREFIX.length - 1) this.state = "V1Line";
          if (v2 && i === PROXY_V2_SIGNATURE.length - 1) {
            this.state = "V2Fixed";
            this.need = V2_FIXED_BYTES;
          }
          break;
        }
        case "V1Line": {
          const limit = Math.min(chunk.length, pos + V1_MAX_BYTES - this.have);
          let lf = -1;
          for (let k = pos; k < limit; k++) {
            if (chunk[k] === 0x0a) {
              lf = k;
              break;
            }
          }
          const end = lf >= 0 ? lf + 1 : limit;
          this.buf.set(chunk.subarray(pos, end), this.have);
          this.have += end - pos;
          pos = end;
          if (lf >= 0) return this.finishV1();
          if (this.have >= V1_MAX_BYTES) return this.reject("v1-too-long");
          break;
        }
        case "V2Fixed":
        case "V2Body": {
          const take = Math.min(this.need - this.have, chunk.length - pos);
          this.buf.set(chunk.subarray(pos, pos + take), this.have);
          this.have += take;
          pos += take;
          if (this.have < this.need) break;
          if (this.state === "V2Body") return this.finishV2();
          const failure = this.checkV2Fixed();
          if (failure !== null) return this.reject(failure);
          if (this.have === this.need) return this.finishV2();
          break;
        }
      }
    }
    return { kind: "need-more", consumed: this.have };
  }

  private reject(reason: ProxyHeaderRejectReason): ProxyHeaderResult {
    this.final = { kind: "reject", reason, consumed: this.have };
    return this.final;
  }

  private done(header: InboundProxyHeader): ProxyHeaderResult {
    this.final = { kind: "done", header, consumed: this.have };
    return this.final;
  }

  private finishV1(): ProxyHeaderResult {
    const line = Buffer.from(this.buf.subarray(0, this.have)).toString("latin1");
    if (!line.endsWith("\r\n")) return this.reject("v1-malformed");
    const fields = line.slice(0, -2).split(" ");
    if (fields[1] === "UNKNOWN") return this.done({ version: 1, command: "local", tlvs: [] });
    if (fields.length !== 6 || (fields[1] !== "TCP4" && fields[1] !== "TCP6")) return this.reject("v1-malformed");
    const parse = fields[1] === "TCP4" ? parseIPv4 : parseIPv6;
    const src = parse(fields[2]!);
    const dst = parse(fields[3]!);
    if (src === null || dst === null) return this.reject("v1-bad-address");
    const srcPort = parsePort(fields[4]!);
    const dstPort = parsePort(fields[5]!);
    if (srcPort === null || dstPort === null) return this.reject("v1-bad-port");
    return this.done({
      version: 1,
      command: "proxy",
      family: fields[1] === "TCP4" ? "tcp4" : "tcp6",
      source: { address: formatIP(unmapIPv4(src)), port: srcPort },
      destination: { address: formatIP(unmapIPv4(dst)), port: dstPort },
      tlvs: [],
    });
  }

  private checkV2Fixed(): ProxyHeaderRejectReason | null {
    const verCmd = this.buf[12]!;
    const fam = this.buf[13]!;
    const length = (this.buf[14]! << 8) | this.buf[15]!;
    if (verCmd >> 4 !== 2) return "v2-bad-version";
    if ((verCmd & 0x0f) > 1) return "v2-bad-command";
    if (!VALID_FAMILIES.has(fam)) return "v2-bad-family";
    const addressBytes = ADDRESS_BYTES[fam >> 4]!;
    if ((verCmd & 0x0f) === 1 && fam !== 0x11 && fam !== 0x21) return "v2-unsupported-family";
    if (length < addressBytes) return "v2-length-too-small";
    if (V2_FIXED_BYTES + length > this.maxBytes) return "v2-header-too-large";
    this.need = V2_FIXED_BYTES + length;
    this.state = "V2Body";
    return null;
  }

  private finishV2(): ProxyHeaderResult {
    const b = this.buf;
    const fam = b[13]!;
    const addressBytes = ADDRESS_BYTES[fam >> 4]!;
    const tlvs: ProxyV2Tlv[] = [];
    let pos = V2_FIXED_BYTES + addressBytes;
    let crcAt = -1;
    while (pos < this.have) {
      if (this.have - pos < 3) return this.reject("v2-tlv-truncated");
      const type = b[pos]!;
      const length = (b[pos + 1]! << 8) | b[pos + 2]!;
      if (pos + 3 + length > this.have) return this.reject("v2-tlv-length-overflow");
      const value = b.slice(pos + 3, pos + 3 + length);
      if (!tlvValid(type, value)) return this.reject("v2-tlv-invalid");
      if (type === PP2_TYPE_CRC32C) crcAt = pos + 3;
      tlvs.push({ type, value });
      pos += 3 + length;
    }
    if (crcAt >= 0) {
      const copy = b.slice(0, this.have);
      const expected = (copy[crcAt]! << 24) | (copy[crcAt + 1]! << 16) | (copy[crcAt + 2]! << 8) | copy[crcAt + 3]!;
      copy.fill(0, crcAt, crcAt + 4);
      if (crc32c(copy) !== expected >>> 0) return this.reject("v2-crc-mismatch");
    }
    if ((b[12]! & 0x0f) === 0) return this.done({ version: 2, command: "local", tlvs });
    const v4 = fam === 0x11;
    const size = v4 ? 4 : 16;
    const at = V2_FIXED_BYTES;
    const port = (k: number) => (b[k]! << 8) | b[k + 1]!;
    return this.done({
      version: 2,
      command: "proxy",
      family: v4 ? "tcp4" : "tcp6",
      source: { address: formatIP(unmapIPv4(b.slice(at, at + size))), port: port(at + 2 * size) },
      destination: { address: formatIP(unmapIPv4(b.slice(at + size, at + 2 * size))), port: port(at + 2 * size + 2) },
      tlvs,
    });
  }
}

function parsePort(text: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

function tlvValid(type: number, value: Uint8Array): boolean {
  switch (type) {
    case PP2_TYPE_CRC32C:
      return value.length === 4;
    case PP2_TYPE_UNIQUE_ID:
      return value.length <= 128;
    case PP2_TYPE_SSL: {
      // client(1) verify(4), then sub-TLVs that must tile the rest exactly.
      if (value.length < 5) return false;
      let pos = 5;
      while (pos < value.length) {
        if (value.length - pos < 3) return false;
        pos += 3 + ((value[pos + 1]! << 8) | value[pos + 2]!);
      }
      return pos === value.length;
    }
    default:
      return true;
  }
}

/** Parses a complete buffer in one go (tests, fuzzing). */
export function parseProxyHeader(bytes: Uint8Array, maxBytes?: number): ProxyHeaderResult {
  return new ProxyHeaderParser(maxBytes).push(bytes);
}
