/**
 * Builders for ClientHello and PROXY header byte vectors, shared by the
 * tests and the fuzzer's seed corpus. Written from RFC 8446 §4.1.2,
 * RFC 6066 §3 and doc/proxy-protocol.txt; nothing is captured here.
 */

export interface ServerNameEntry {
  readonly type: number;
  readonly name: string | Uint8Array;
}

export interface HelloSpec {
  /** null: no server_name extension at all. */
  readonly serverNames?: readonly ServerNameEntry[] | null;
  /** Extensions placed before server_name. */
  readonly before?: readonly { type: number; data: Uint8Array }[];
  /** Extensions placed after server_name. */
  readonly after?: readonly { type: number; data: Uint8Array }[];
  /** Add a padding extension (21) so the handshake body is at least this long. */
  readonly padBodyTo?: number;
  /** Sprinkle GREASE values (RFC 8701) into cipher suites and extensions. */
  readonly grease?: boolean;
  readonly sessionIdLength?: number;
  /** Leave out the extensions block (a pre-TLS-1.2 style hello). */
  readonly noExtensions?: boolean;
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u24 = (n: number) => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const bytesOf = (v: string | Uint8Array) => (typeof v === "string" ? Buffer.from(v, "latin1") : v);

export function extension(type: number, data: Uint8Array | number[]): Uint8Array {
  const d = Uint8Array.from(data);
  return Uint8Array.from([...u16(type), ...u16(d.length), ...d]);
}

export function serverNameExtensionData(entries: readonly ServerNameEntry[]): Uint8Array {
  const list: number[] = [];
  for (const e of entries) {
    const name = bytesOf(e.name);
    list.push(e.type, ...u16(name.length), ...name);
  }
  return Uint8Array.from([...u16(list.length), ...list]);
}

/** The handshake body of a ClientHello (without the 4-byte handshake header). */
export function helloBody(spec: HelloSpec = {}): Uint8Array {
  const grease = spec.grease ?? false;
  const sid = spec.sessionIdLength ?? 32;
  const suites = [...(grease ? [0x0a0a] : []), 0x1301, 0x1302, 0x1303, 0xc02f];
  const body: number[] = [0x03, 0x03, ...new Array<number>(32).fill(0x11), sid, ...new Array<number>(sid).fill(0x22)];
  body.push(...u16(suites.length * 2), ...suites.flatMap(u16), 1, 0);
  if (spec.noExtensions) return Uint8Array.from(body);
  const exts: number[] = [];
  if (grease) exts.push(...extension(0x1a1a, []));
  for (const e of spec.before ?? []) exts.push(...extension(e.type, e.data));
  const names = spec.serverNames === undefined ? [{ type: 0, name: "example.com" }] : spec.serverNames;
  if (names !== null) exts.push(...extension(0x0000, serverNameExtensionData(names)));
  // supported_versions with a GREASE entry first, as browsers send it
  exts.push(...extension(0x002b, [grease ? 6 : 4, ...(grease ? [0x7a, 0x7a] : []), 0x03, 0x04, 0x03, 0x03]));
  for (const e of spec.after ?? []) exts.push(...extension(e.type, e.data));
  if (grease) exts.push(...extension(0xfafa, [0]));
  if (spec.padBodyTo !== undefined) {
    const current = body.length + 2 + exts.length + 4;
    const pad = Math.max(0, spec.padBodyTo - current);
    exts.push(...extension(0x0015, new Array<number>(pad).fill(0)));
  }
  return Uint8Array.from([...body, ...u16(exts.length), ...exts]);
}

export function handshakeMessage(body: Uint8Array, type = 1): Uint8Array {
  return Uint8Array.from([type, ...u24(body.length), ...body]);
}

/**
 * Frames a handshake message into TLS records. `sizes` gives each record's
 * fragment length; the last record takes what is left.
 */
export function records(message: Uint8Array, sizes: readonly number[] = [], version = 0x0301, contentType = 22): Uint8Array {
  const out: number[] = [];
  let pos = 0;
  for (let i = 0; pos < message.length; i++) {
    const size = Math.min(sizes[i] ?? 16384, message.length - pos, 16384);
    out.push(contentType, ...u16(version), ...u16(size), ...message.subarray(pos, pos + size));
    pos += size;
  }
  return Uint8Array.from(out);
}

export function clientHello(spec: HelloSpec = {}, recordSizes: readonly number[] = []): Uint8Array {
  return records(handshakeMessage(helloBody(spec)), recordSizes);
}

/** An SSLv2-compatible CLIENT-HELLO (RFC 6101 appendix E.1). */
export function sslv2Hello(): Uint8Array {
  const suites = [0x00, 0x00, 0x04, 0x01, 0x00, 0x80];
  const challenge = new Array<number>(16).fill(0x33);
  const msg = [0x01, 0x03, 0x01, ...u16(suites.length), ...u16(0), ...u16(challenge.length), ...suites, ...challenge];
  return Uint8Array.from([0x80 | (msg.length >> 8), msg.length & 0xff, ...msg]);
}

/** PROXY v2 header built independently of the encoder under test. */
export function proxyV2(opts: { verCmd?: number; fam?: number; body?: number[]; length?: number }): Uint8Array {
  const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const body = opts.body ?? [];
  return Uint8Array.from([...sig, opts.verCmd ?? 0x21, opts.fam ?? 0x11, ...u16(opts.length ?? body.length), ...body]);
}

export function proxyV2Tcp4(src: number[], dst: number[], sport: number, dport: number, tlvs: number[] = []): Uint8Array {
  return proxyV2({ body: [...src, ...dst, ...u16(sport), ...u16(dport), ...tlvs] });
}
