/**
 * Reads a TLS ClientHello from the first bytes of a connection: the record
 * layer (RFC 8446 §5.1) frames the stream, the handshake parser reads the
 * message out of the record fragments. A hello split across TCP segments or
 * TLS records parses exactly as one delivered in a single read.
 *
 * The parser never copies the stream; the caller keeps the bytes it read and
 * forwards them untouched once the hello is accepted.
 */
import { ClientHelloFields, HandshakeParser, HandshakeRejectReason } from "./handshake-parser";
import { ParseResult } from "./parse-result";

export type ClientHelloRejectReason =
  | HandshakeRejectReason
  | "sslv2-hello"
  | "not-tls-handshake"
  | "unexpected-record-type"
  | "bad-record-version"
  | "record-length-zero"
  | "record-length-oversized";

export type ClientHelloResult = ParseResult<ClientHelloFields & { readonly records: number }, ClientHelloRejectReason>;

const RECORD_HEADER_BYTES = 5;
const HANDSHAKE_RECORD = 22;
/** RFC 8446 §5.1: TLSPlaintext.length MUST NOT exceed 2^14. */
const MAX_RECORD_FRAGMENT = 16384;
/** Default bound on the bytes read while looking for the hello. */
export const DEFAULT_MAX_HELLO_BYTES = 16384;

type RecordState = "RecordHeader" | "RecordFragment";

export class ClientHelloParser {
  private state: RecordState = "RecordHeader";
  private readonly header = new Uint8Array(RECORD_HEADER_BYTES);
  private headerHave = 0;
  private fragmentLeft = 0;
  private offset = 0;
  private records = 0;
  private final: ClientHelloResult | null = null;
  private readonly handshake: HandshakeParser;

  /** @param maxBytes bound on the stream bytes (record headers included) the hello may occupy. */
  constructor(private readonly maxBytes: number = DEFAULT_MAX_HELLO_BYTES) {
    // The body can never be larger than the byte budget minus its two headers.
    this.handshake = new HandshakeParser(Math.max(0, maxBytes - RECORD_HEADER_BYTES - 4));
  }

  /** Feeds the next bytes of the stream. After done/reject, returns that result again. */
  push(chunk: Uint8Array): ClientHelloResult {
    if (this.final !== null) return this.final;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === "RecordHeader") {
        if (this.offset === 0 && chunk[pos]! & 0x80) return this.stop("sslv2-hello");
        const take = Math.min(RECORD_HEADER_BYTES - this.headerHave, chunk.length - pos);
        if (this.offset + take > this.maxBytes) return this.stop("hello-too-large");
        for (let i = 0; i < take; i++) this.header[this.headerHave + i] = chunk[pos + i]!;
        this.headerHave += take;
        this.offset += take;
        pos += take;
        if (this.headerHave < RECORD_HEADER_BYTES) break;
        const failure = this.checkHeader();
        if (failure !== null) return this.stop(failure);
        this.headerHave = 0;
        this.state = "RecordFragment";
        this.records++;
        continue;
      }
      // Never hand the handshake parser more than the byte budget allows.
      const end = pos + Math.min(this.fragmentLeft, chunk.length - pos, this.maxBytes - this.offset);
      const step = this.handshake.feed(chunk, pos, end);
      this.offset += step.used;
      this.fragmentLeft -= step.used;
      pos += step.used;
      if (step.kind === "reject") return this.stop(step.reason);
      if (step.kind === "done") {
        this.final = { kind: "done", consumed: this.offset, records: this.records, ...this.handshake.fields() };
        return this.final;
      }
      if (this.offset >= this.maxBytes) return this.stop("hello-too-large");
      if (this.fragmentLeft === 0) this.state = "RecordHeader";
    }
    return { kind: "need-more", consumed: this.offset };
  }

  private checkHeader(): ClientHelloRejectReason | null {
    const type = this.header[0]!;
    const major = this.header[1]!;
    const minor = this.header[2]!;
    const length = (this.header[3]! << 8) | this.header[4]!;
    if (type !== HANDSHAKE_RECORD) return this.records === 0 ? "not-tls-handshake" : "unexpected-record-type";
    if (major !== 3 || minor > 4) return "bad-record-version";
    // RFC 8446 §5.1: zero-length handshake fragments MUST NOT be sent.
    if (length === 0) return "record-length-zero";
    if (length > MAX_RECORD_FRAGMENT) return "record-length-oversized";
    this.fragmentLeft = length;
    return null;
  }

  private stop(reason: ClientHelloRejectReason): ClientHelloResult {
    this.final = { kind: "reject", reason, consumed: this.offset };
    return this.final;
  }
}

/** Parses a complete buffer in one go (tests, fuzzing). */
export function parseClientHello(bytes: Uint8Array, maxBytes?: number): ClientHelloResult {
  return new ClientHelloParser(maxBytes).push(bytes);
}
