import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ClientHelloParser, ClientHelloResult, parseClientHello } from "../../proxy/codec/client-hello";
import { clientHello, extension, handshakeMessage, helloBody, records, serverNameExtensionData, sslv2Hello } from "../../proxy/fuzz/vectors";
import { captureNodeHello, captureOpensslHello } from "./helpers/capture-hello";

const text = (r: ClientHelloResult) => (r.kind === "done" && r.hostName !== null ? Buffer.from(r.hostName).toString("latin1") : null);

function feedInPieces(bytes: Uint8Array, cuts: readonly number[]): ClientHelloResult {
  const parser = new ClientHelloParser();
  let last: ClientHelloResult = { kind: "need-more", consumed: 0 };
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    last = parser.push(bytes.subarray(from, cut));
    from = cut;
    if (last.kind !== "need-more") break;
  }
  return last;
}

function oneByteAtATime(bytes: Uint8Array): ClientHelloResult {
  return feedInPieces(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1));
}

function rejectReason(r: ClientHelloResult): string {
  assert.equal(r.kind, "reject", `expected reject, got ${JSON.stringify(r)}`);
  return r.kind === "reject" ? r.reason : "";
}

describe("ClientHello parser: well-formed hellos", () => {
  it("reads the host_name of a single-record hello and consumes exactly the hello", () => {
    const hello = clientHello({ serverNames: [{ type: 0, name: "demo.fiscalismia.com" }] });
    const r = parseClientHello(hello);
    assert.equal(r.kind, "done");
    assert.equal(text(r), "demo.fiscalismia.com");
    assert.equal(r.consumed, hello.length);
    assert.equal(r.kind === "done" && r.records, 1);
  });

  it("parses the same one byte at a time", () => {
    const hello = clientHello({ serverNames: [{ type: 0, name: "a.example" }] });
    const r = oneByteAtATime(hello);
    assert.equal(text(r), "a.example");
    assert.equal(r.consumed, hello.length);
  });

  it("reassembles a hello split across 2 and 3 TLS records", () => {
    const message = handshakeMessage(helloBody({ serverNames: [{ type: 0, name: "split.example" }] }));
    for (const sizes of [[10], [3, 40], [1, 1], [message.length - 1]]) {
      const bytes = records(message, sizes);
      const r = parseClientHello(bytes);
      assert.equal(text(r), "split.example", `sizes ${sizes}`);
      assert.equal(r.kind === "done" && r.records, sizes.length + 1);
      assert.equal(r.consumed, bytes.length);
      assert.equal(text(oneByteAtATime(bytes)), "split.example");
    }
  });

  it("reads a 5 KiB padded hello (post-quantum key share sized)", () => {
    const hello = clientHello({ padBodyTo: 5 * 1024, serverNames: [{ type: 0, name: "big.example" }] });
    assert.ok(hello.length > 5 * 1024);
    assert.equal(text(parseClientHello(hello)), "big.example");
    // The same hello in 1400-byte records, as a browser on a small MTU might send it.
    const message = handshakeMessage(helloBody({ padBodyTo: 5 * 1024, serverNames: [{ type: 0, name: "big.example" }] }));
    assert.equal(text(parseClientHello(records(message, [1400, 1400, 1400, 1400]))), "big.example");
  });

  it("skips GREASE cipher suites, extensions and versions", () => {
    assert.equal(text(parseClientHello(clientHello({ grease: true, serverNames: [{ type: 0, name: "g.example" }] }))), "g.example");
  });

  it("reports no SNI as done with a null name", () => {
    const r = parseClientHello(clientHello({ serverNames: null }));
    assert.equal(r.kind, "done");
    assert.equal(r.kind === "done" && r.hostName, null);
  });

  it("accepts a hello with no extensions block at all", () => {
    const r = parseClientHello(clientHello({ noExtensions: true }));
    assert.equal(r.kind, "done");
    assert.equal(r.kind === "done" && r.hostName, null);
  });

  it("takes host_name (type 0) and skips other name types in the list", () => {
    const r = parseClientHello(clientHello({ serverNames: [{ type: 7, name: "other" }, { type: 0, name: "host.example" }] }));
    assert.equal(text(r), "host.example");
  });

  it("rejects two host_name entries (RFC 6066: one name per type)", () => {
    const r = parseClientHello(clientHello({ serverNames: [{ type: 0, name: "a.example" }, { type: 0, name: "b.example" }] }));
    assert.equal(rejectReason(r), "duplicate-host-name");
  });

  it("rejects two server_name extensions", () => {
    const data = serverNameExtensionData([{ type: 0, name: "x.example" }]);
    const r = parseClientHello(clientHello({ after: [{ type: 0, data }] }));
    assert.equal(rejectReason(r), "duplicate-server-name-extension");
  });

  it("returns raw bytes and leaves normalisation (case, non-ASCII) to the caller", () => {
    const r = parseClientHello(clientHello({ serverNames: [{ type: 0, name: Uint8Array.from([0x41, 0xc3, 0xa9]) }] }));
    assert.deepEqual(r.kind === "done" && Array.from(r.hostName ?? []), [0x41, 0xc3, 0xa9]);
  });

  it("stops at the end of the hello even if more bytes follow (early data is the caller's)", () => {
    const hello = clientHello();
    const r = parseClientHello(Uint8Array.from([...hello, 23, 3, 3, 0, 1, 0]));
    assert.equal(r.consumed, hello.length);
  });
});

describe("ClientHello parser: rejects", () => {
  it("never returns done for any proper prefix of a hello (truncated)", () => {
    const hello = clientHello({ serverNames: [{ type: 0, name: "t.example" }] }, [20, 30]);
    for (let n = 0; n < hello.length; n++) assert.equal(parseClientHello(hello.subarray(0, n)).kind, "need-more", `prefix ${n}`);
  });

  it("rejects an SSLv2 hello, plain HTTP, and other record types", () => {
    assert.equal(rejectReason(parseClientHello(sslv2Hello())), "sslv2-hello");
    assert.equal(rejectReason(parseClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n"))), "not-tls-handshake");
    assert.equal(rejectReason(parseClientHello(records(handshakeMessage(helloBody()), [], 0x0303, 21))), "not-tls-handshake");
    const twoRecords = records(handshakeMessage(helloBody()), [10]);
    twoRecords[5 + 10] = 23; // second record claims application_data
    assert.equal(rejectReason(parseClientHello(twoRecords)), "unexpected-record-type");
  });

  it("rejects a handshake that is not a ClientHello", () => {
    assert.equal(rejectReason(parseClientHello(records(handshakeMessage(helloBody(), 2)))), "not-client-hello");
  });

  it("rejects bad record versions and lengths", () => {
    const hello = clientHello();
    assert.equal(rejectReason(parseClientHello(Uint8Array.from([22, 2, 0, ...hello.subarray(3)]))), "bad-record-version");
    assert.equal(rejectReason(parseClientHello(Uint8Array.from([22, 3, 1, 0, 0]))), "record-length-zero");
    assert.equal(rejectReason(parseClientHello(Uint8Array.from([22, 3, 1, 0x40, 0x01]))), "record-length-oversized");
  });

  it("rejects oversized length fields at every level", () => {
    const body = helloBody({ serverNames: [{ type: 0, name: "o.example" }] });
    const withBody = (mutate: (b: Uint8Array) => void) => {
      const copy = Uint8Array.from(body);
      mutate(copy);
      return parseClientHello(records(handshakeMessage(copy)));
    };
    // handshake length larger than the 16 KiB budget
    assert.equal(rejectReason(parseClientHello(Uint8Array.from([22, 3, 1, 0, 4, 1, 0x01, 0, 0]))), "hello-too-large");
    // session id length 33
    assert.equal(rejectReason(withBody((b) => (b[34] = 33))), "session-id-too-long");
    // cipher suites length runs past the hello
    assert.equal(rejectReason(withBody((b) => ((b[67] = 0xff), (b[68] = 0xf0)))), "field-overflows-hello");
    // odd cipher suites length
    assert.equal(rejectReason(withBody((b) => (b[68] = b[68]! + 1))), "cipher-suites-length-invalid");
    // extensions length disagrees with what is left of the hello
    const extAt = 2 + 32 + 1 + 32 + 2 + 8 + 2;
    assert.equal(rejectReason(withBody((b) => (b[extAt + 1] = b[extAt + 1]! - 1))), "extensions-length-mismatch");
    // server_name extension length beyond the extensions block
    assert.equal(rejectReason(withBody((b) => (b[extAt + 4] = 0x7f))), "extension-overflows-extensions");
    // server name list length disagrees with the extension length
    assert.equal(rejectReason(withBody((b) => (b[extAt + 7] = b[extAt + 7]! + 1))), "server-name-list-length-mismatch");
    // host name length beyond the list
    assert.equal(rejectReason(withBody((b) => (b[extAt + 10] = b[extAt + 10]! + 1))), "server-name-entry-overflows-list");
  });

  it("rejects an empty or over-long host_name", () => {
    assert.equal(rejectReason(parseClientHello(clientHello({ serverNames: [{ type: 0, name: "" }] }))), "server-name-empty");
    assert.equal(rejectReason(parseClientHello(clientHello({ serverNames: [{ type: 0, name: "a".repeat(256) }] }))), "server-name-too-long");
    const tooShort = clientHello({ before: [{ type: 0, data: Uint8Array.of(0) }], serverNames: null });
    assert.equal(rejectReason(parseClientHello(tooShort)), "server-name-extension-too-short");
  });

  it("rejects a hello that does not fit the byte budget, without reading past it", () => {
    const hello = clientHello({ padBodyTo: 20_000 }, [16384]);
    const r = parseClientHello(hello);
    assert.equal(rejectReason(r), "hello-too-large");
    assert.ok(r.consumed <= 16384);
    const small = new ClientHelloParser(600);
    assert.equal(rejectReason(small.push(clientHello({ padBodyTo: 1000 }))), "hello-too-large");
  });

  it("keeps returning its final result", () => {
    const parser = new ClientHelloParser();
    const first = parser.push(clientHello());
    assert.deepEqual(parser.push(Uint8Array.of(1, 2, 3)), first);
  });
});

describe("ClientHello parser: properties", () => {
  const helloArb = fc
    .record({
      name: fc.domain(),
      grease: fc.boolean(),
      pad: fc.integer({ min: 0, max: 3000 }),
      sizes: fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 4 }),
    })
    .map(({ name, grease, pad, sizes }) => ({
      name,
      bytes: records(handshakeMessage(helloBody({ grease, padBodyTo: pad, serverNames: [{ type: 0, name }] })), sizes),
    }));

  it("every split point of a hello parses identically", () => {
    fc.assert(
      fc.property(helloArb, fc.integer({ min: 0, max: 1 << 30 }), ({ name, bytes }, seed) => {
        const whole = parseClientHello(bytes);
        assert.equal(text(whole), name);
        // all single cut points for smaller hellos, a sample for the large ones
        const step = bytes.length > 800 ? 97 + (seed % 13) : 1;
        for (let cut = 0; cut <= bytes.length; cut += step) assert.deepEqual(feedInPieces(bytes, [cut]), whole);
      }),
      { numRuns: 150 },
    );
  });

  it("any partition into chunks parses identically", () => {
    fc.assert(
      fc.property(helloArb, fc.uniqueArray(fc.integer({ min: 1, max: 4000 }), { maxLength: 12 }), ({ bytes }, cuts) => {
        const sorted = cuts.filter((c) => c < bytes.length).sort((a, b) => a - b);
        assert.deepEqual(feedInPieces(bytes, sorted), parseClientHello(bytes));
      }),
      { numRuns: 300 },
    );
  });
});

describe("ClientHello parser: real clients", () => {
  it("parses Node's tls.connect hello", async () => {
    const bytes = await captureNodeHello("node.example.test");
    assert.equal(text(parseClientHello(bytes)), "node.example.test");
    assert.equal(text(oneByteAtATime(bytes)), "node.example.test");
  });

  it("parses openssl s_client's hello, also re-framed into 3 records", async () => {
    const bytes = await captureOpensslHello("openssl.example.test");
    const r = parseClientHello(bytes);
    assert.equal(text(r), "openssl.example.test");
    const message = bytes.subarray(5);
    assert.equal(text(parseClientHello(records(message, [50, 100]))), "openssl.example.test");
  });

  it("an extension builder sanity check", () => {
    assert.deepEqual(Array.from(extension(0x15, [0, 0])), [0, 0x15, 0, 2, 0, 0]);
  });
});
