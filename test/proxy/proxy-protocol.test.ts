import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { crc32c } from "../../proxy/codec/crc32c";
import { formatIP, parseIP } from "../../proxy/codec/ip-address";
import { parseProxyHeader, ProxyHeaderParser, ProxyHeaderResult } from "../../proxy/codec/proxy-header-parser";
import { encodeProxyV2 } from "../../proxy/codec/proxy-v2-encoder";
import { proxyV2, proxyV2Tcp4 } from "../../proxy/fuzz/vectors";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const SIG = "0d0a0d0a000d0a515549540a";

function reason(r: ProxyHeaderResult): string {
  assert.equal(r.kind, "reject", JSON.stringify(r));
  return r.kind === "reject" ? r.reason : "";
}

function byteAtATime(bytes: Uint8Array): ProxyHeaderResult {
  const parser = new ProxyHeaderParser();
  let r: ProxyHeaderResult = { kind: "need-more", consumed: 0 };
  for (let i = 0; i < bytes.length && r.kind === "need-more"; i++) r = parser.push(bytes.subarray(i, i + 1));
  return r;
}

describe("PROXY v2 encoder: exact bytes", () => {
  it("TCP4 PROXY", () => {
    const out = encodeProxyV2({ command: "proxy", source: { address: "203.0.113.42", port: 54321 }, destination: { address: "172.24.1.3", port: 443 } });
    assert.equal(hex(out), SIG + "21" + "11" + "000c" + "cb00712a" + "ac180103" + "d431" + "01bb");
  });

  it("IPv4-mapped client on a dual-stack socket goes out as TCP4", () => {
    const out = encodeProxyV2({ command: "proxy", source: { address: "::ffff:198.51.100.7", port: 1 }, destination: { address: "::ffff:10.0.0.1", port: 443 } });
    assert.equal(hex(out), SIG + "2111000c" + "c6336407" + "0a000001" + "0001" + "01bb");
  });

  it("TCP6 PROXY", () => {
    const out = encodeProxyV2({ command: "proxy", source: { address: "2001:db8::1", port: 443 }, destination: { address: "fd00::2", port: 8443 } });
    assert.equal(
      hex(out),
      SIG + "21" + "21" + "0024" + "20010db8000000000000000000000001" + "fd000000000000000000000000000002" + "01bb" + "20fb",
    );
  });

  it("mixed families are both sent as IPv6", () => {
    const out = encodeProxyV2({ command: "proxy", source: { address: "192.0.2.1", port: 1 }, destination: { address: "fd00::2", port: 2 } });
    assert.equal(out[13], 0x21);
    assert.equal(hex(out.subarray(16, 32)), "00000000000000000000ffffc0000201");
  });

  it("AUTHORITY TLV carries the SNI", () => {
    const out = encodeProxyV2({ command: "proxy", source: { address: "192.0.2.1", port: 1 }, destination: { address: "192.0.2.2", port: 2 }, authority: "a.example" });
    assert.equal(hex(out.subarray(14, 16)), (12 + 3 + 9).toString(16).padStart(4, "0"));
    assert.equal(hex(out.subarray(28)), "02" + "0009" + Buffer.from("a.example").toString("hex"));
  });

  it("LOCAL", () => {
    assert.equal(hex(encodeProxyV2({ command: "local" })), SIG + "20" + "00" + "0000");
  });

  it("refuses a non-IP address", () => {
    assert.throws(() => encodeProxyV2({ command: "proxy", source: { address: "example.com", port: 1 }, destination: { address: "::1", port: 1 } }), /not an IP/);
  });
});

describe("PROXY header parser: v2", () => {
  it("parses what the encoder writes, whole and one byte at a time", () => {
    const cases = [
      { source: { address: "203.0.113.42", port: 54321 }, destination: { address: "172.24.1.3", port: 443 } },
      { source: { address: "2001:db8::1", port: 443 }, destination: { address: "fd00::2", port: 8443 } },
    ];
    for (const c of cases) {
      const bytes = encodeProxyV2({ command: "proxy", ...c, authority: "x.example" });
      for (const r of [parseProxyHeader(bytes), byteAtATime(bytes)]) {
        assert.equal(r.kind, "done");
        if (r.kind !== "done" || r.header.command !== "proxy") return;
        assert.deepEqual(r.header.source, c.source);
        assert.deepEqual(r.header.destination, c.destination);
        assert.equal(r.consumed, bytes.length);
        assert.deepEqual(r.header.tlvs.map((t) => [t.type, Buffer.from(t.value).toString()]), [[2, "x.example"]]);
      }
    }
  });

  it("consumes exactly the header, leaving the TLS bytes after it", () => {
    const header = proxyV2Tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1000, 443);
    const r = parseProxyHeader(Uint8Array.from([...header, 22, 3, 1]));
    assert.equal(r.consumed, header.length);
  });

  it("LOCAL with and without addresses", () => {
    const local = parseProxyHeader(proxyV2({ verCmd: 0x20, fam: 0x00 }));
    assert.equal(local.kind === "done" && local.header.command, "local");
    const localWithAddr = parseProxyHeader(proxyV2({ verCmd: 0x20, fam: 0x11, body: new Array(12).fill(0) }));
    assert.equal(localWithAddr.kind === "done" && localWithAddr.header.command, "local");
  });

  it("rejects bad signature, version, command and family", () => {
    assert.equal(reason(parseProxyHeader(Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0b]))), "bad-signature");
    assert.equal(reason(parseProxyHeader(proxyV2({ verCmd: 0x11 }))), "v2-bad-version");
    assert.equal(reason(parseProxyHeader(proxyV2({ verCmd: 0x22 }))), "v2-bad-command");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x13, body: new Array(12).fill(0) }))), "v2-bad-family");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x41 }))), "v2-bad-family");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x12, body: new Array(12).fill(0) }))), "v2-unsupported-family");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x00 }))), "v2-unsupported-family");
  });

  it("rejects lengths too small for the family, and too large for the limit", () => {
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x11, body: new Array(11).fill(0) }))), "v2-length-too-small");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x21, body: new Array(12).fill(0) }))), "v2-length-too-small");
    assert.equal(reason(parseProxyHeader(proxyV2({ fam: 0x11, length: 0xffff }))), "v2-header-too-large");
  });

  it("checks every TLV length against the header", () => {
    const base = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
    assert.equal(reason(parseProxyHeader(proxyV2({ body: [...base, 0x04, 0x00] }))), "v2-tlv-truncated");
    assert.equal(reason(parseProxyHeader(proxyV2({ body: [...base, 0x04, 0x00, 0x05, 1, 2] }))), "v2-tlv-length-overflow");
    assert.equal(reason(parseProxyHeader(proxyV2({ body: [...base, 0x03, 0x00, 0x02, 1, 2] }))), "v2-tlv-invalid");
    assert.equal(reason(parseProxyHeader(proxyV2({ body: [...base, 0x20, 0x00, 0x06, 0, 0, 0, 0, 0, 0x21] }))), "v2-tlv-invalid");
    const ok = parseProxyHeader(proxyV2({ body: [...base, 0x04, 0x00, 0x01, 0, 0x20, 0x00, 0x08, 1, 0, 0, 0, 0, 0x21, 0, 0] }));
    assert.equal(ok.kind, "done");
  });

  it("verifies a CRC32C TLV", () => {
    const body = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x03, 0x00, 0x04, 0, 0, 0, 0];
    const bytes = proxyV2({ body });
    const crc = crc32c(bytes);
    Buffer.from(bytes.buffer).writeUInt32BE(crc, bytes.length - 4);
    assert.equal(parseProxyHeader(bytes).kind, "done");
    bytes[bytes.length - 1] = bytes.at(-1)! ^ 1;
    assert.equal(reason(parseProxyHeader(bytes)), "v2-crc-mismatch");
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283); // the CRC-32C check value
  });
});

describe("PROXY header parser: v1", () => {
  const parse = (s: string) => parseProxyHeader(Buffer.from(s, "latin1"));

  it("parses TCP4, TCP6 and UNKNOWN", () => {
    const r4 = parse("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET");
    assert.equal(r4.kind, "done");
    assert.equal(r4.consumed, 47);
    assert.deepEqual(r4.kind === "done" && r4.header.command === "proxy" && r4.header.source, { address: "192.168.0.1", port: 56324 });
    const r6 = byteAtATime(Buffer.from("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"));
    assert.deepEqual(r6.kind === "done" && r6.header.command === "proxy" && r6.header.destination, { address: "::1", port: 65535 });
    assert.equal(parse("PROXY UNKNOWN\r\n").kind === "done" && (parse("PROXY UNKNOWN\r\n") as { header: { command: string } }).header.command, "local");
    assert.equal(parse("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n").kind, "done");
  });

  it("is strict about every field", () => {
    assert.equal(reason(parse("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n")), "v1-malformed");
    assert.equal(reason(parse("PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n")), "v1-malformed");
    assert.equal(reason(parse("PROXY TCP5 1.1.1.1 1.1.1.1 1 1\r\n")), "v1-malformed");
    assert.equal(reason(parse("PROXY TCP4 ::1 1.1.1.1 1 1\r\n")), "v1-bad-address");
    assert.equal(reason(parse("PROXY TCP6 1.1.1.1 ::1 1 1\r\n")), "v1-bad-address");
    assert.equal(reason(parse("PROXY TCP4 01.1.1.1 1.1.1.1 1 1\r\n")), "v1-bad-address");
    assert.equal(reason(parse("PROXY TCP4 1.1.1.1 1.1.1.1 65536 1\r\n")), "v1-bad-port");
    assert.equal(reason(parse("PROXY TCP4 1.1.1.1 1.1.1.1 01 1\r\n")), "v1-bad-port");
    assert.equal(reason(parse("PROXY TCP4 1.1.1.1 1.1.1.1 1 1 extra\r\n")), "v1-malformed");
    assert.equal(reason(parse("PROXY " + "x".repeat(101))), "v1-too-long");
    assert.equal(reason(parse("PROXX")), "bad-signature");
    assert.equal(parse("PROXY TCP4 1.1.1.1 1.1.1.1").kind, "need-more");
  });
});

describe("IP addresses", () => {
  it("round-trips canonical text", () => {
    for (const a of ["0.0.0.0", "255.255.255.255", "::", "::1", "1::", "2001:db8::1:0:0:1", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8"]) {
      assert.equal(formatIP(parseIP(a)!), a);
    }
    assert.equal(formatIP(parseIP("::ffff:1.2.3.4")!), "::ffff:102:304");
    for (const bad of ["1.2.3", "256.1.1.1", "1.2.3.4.5", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "a.b.c.d"]) assert.equal(parseIP(bad), null, bad);
  });

  it("v2 encode -> parse is the identity for any TCP4/TCP6 endpoints", () => {
    const endpoint = fc.record({ address: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 0, max: 65535 }) });
    fc.assert(
      fc.property(endpoint, endpoint, fc.option(fc.domain(), { nil: undefined }), (source, destination, authority) => {
        const bytes = encodeProxyV2({ command: "proxy", source, destination, ...(authority ? { authority } : {}) });
        const r = parseProxyHeader(bytes);
        assert.equal(r.kind, "done");
        if (r.kind !== "done" || r.header.command !== "proxy") return;
        assert.equal(r.consumed, bytes.length);
        const canon = (a: string) => formatIP(parseIP(a)!.length === 16 && parseIP(a)!.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff)) ? parseIP(a)!.subarray(12) : parseIP(a)!);
        assert.equal(r.header.source.address, canon(source.address));
        assert.equal(r.header.destination.port, destination.port);
      }),
      { numRuns: 500 },
    );
  });
});
