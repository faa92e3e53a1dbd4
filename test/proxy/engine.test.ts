import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseProxyHeader } from "../../proxy/codec/proxy-header-parser";
import { encodeProxyV2 } from "../../proxy/codec/proxy-v2-encoder";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { clientHello } from "../../proxy/fuzz/vectors";
import { connectClient, freePort, sleep, startBackend, startEngine, waitFor } from "./helpers/harness";

type Backend = Awaited<ReturnType<typeof startBackend>>;

function config(port: number, backends: Record<string, number[]>, extra: Partial<ProxyConfigInput> = {}, listener: Record<string, unknown> = {}): ProxyConfigInput {
  return {
    global: { workers: 1 },
    timeouts: { clientMs: 2000, serverMs: 2000, finMs: 1000 },
    listeners: [{ name: "https_ingress", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port }, { address: "::1", port }], inspectTimeoutMs: 400, ...listener }],
    routes: [
      { host: "a.example", backend: "a" },
      { host: "*.wild.example", backend: "b" },
    ].filter((r) => r.backend in backends),
    backends: Object.entries(backends).map(([name, ports]) => ({
      name,
      connectTimeoutMs: 500,
      retries: 2,
      servers: ports.map((p, i) => ({ name: `${name}0${i + 1}`, address: "127.0.0.1", port: p })),
    })),
    ...extra,
  };
}

/** Replies "pong:<n>" once the client has half-closed, then closes. */
const replyAfterEnd = (c: { socket: import("node:net").Socket; bytes(): Buffer }) => {
  c.socket.on("end", () => c.socket.end(`pong:${c.bytes().length}`));
};

describe("engine over loopback", () => {
  let backendA: Backend;
  let backendB: Backend;
  let port: number;
  let proxy: Awaited<ReturnType<typeof startEngine>>;

  before(async () => {
    backendA = await startBackend(replyAfterEnd);
    backendB = await startBackend(replyAfterEnd);
    port = await freePort();
    proxy = await startEngine(config(port, { a: [backendA.port], b: [backendB.port] }));
  });
  after(async () => {
    await proxy.stop();
    await backendA.close();
    await backendB.close();
  });

  it("routes by SNI, prepends PROXY v2 with the real client, forwards the hello bytes unchanged (split across segments)", async () => {
    const hello = clientHello({ serverNames: [{ type: 0, name: "A.Example." }] }, [40, 60]);
    const client = await connectClient(port);
    for (const [from, to] of [[0, 3], [3, 70], [70, hello.length]] as const) {
      client.socket.write(hello.subarray(from, to));
      await sleep(15);
    }
    client.socket.end(Buffer.from("after-hello"));
    await waitFor(() => client.closed, 3000, "client close");
    const seen = backendA.connections.at(-1)!.bytes();
    const header = parseProxyHeader(seen);
    assert.equal(header.kind, "done");
    if (header.kind !== "done" || header.header.command !== "proxy") return;
    assert.deepEqual(header.header.source, { address: "127.0.0.1", port: client.localPort });
    assert.deepEqual(header.header.destination, { address: "127.0.0.1", port });
    assert.equal(header.header.tlvs.length, 0, "no AUTHORITY TLV by default");
    assert.deepEqual(seen.subarray(header.consumed), Buffer.concat([hello, Buffer.from("after-hello")]));
    // half-close: the reply sent after our FIN arrives in full
    assert.equal(Buffer.concat(client.received).toString(), `pong:${seen.length}`);
    const record = proxy.logger.records.at(-1)!;
    assert.equal(record.terminationState, "--");
    assert.equal(record.backend, "a");
    assert.equal(record.server, "a01");
    assert.equal(record.sni, "a.example");
    assert.equal(record.bytesRead, `pong:${seen.length}`.length);
    assert.equal(record.bytesUploaded, hello.length + "after-hello".length);
    assert.ok(record.Tc >= 0 && record.Tt >= record.Tc && record.Tw === 0);
  });

  it("sends TCP6 for an IPv6 client and matches wildcards", async () => {
    const client = await connectClient(port, "::1");
    client.socket.end(clientHello({ serverNames: [{ type: 0, name: "x.y.wild.example" }] }));
    await waitFor(() => client.closed, 3000, "client close");
    const header = parseProxyHeader(backendB.connections.at(-1)!.bytes());
    assert.ok(header.kind === "done" && header.header.command === "proxy");
    if (header.kind !== "done" || header.header.command !== "proxy") return;
    assert.equal(header.header.family, "tcp6");
    assert.equal(header.header.source.address, "::1");
  });

  for (const [label, bytes, reason] of [
    ["unknown SNI", clientHello({ serverNames: [{ type: 0, name: "nope.example" }] }), "unknown-sni"],
    ["no SNI", clientHello({ serverNames: null }), "no-sni"],
    ["an IP literal SNI", clientHello({ serverNames: [{ type: 0, name: "127.0.0.1" }] }), "sni:ip-literal"],
    ["plain HTTP", Buffer.from("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"), "hello:not-tls-handshake"],
  ] as const) {
    it(`silently drops ${label}: no byte back, no backend connection`, async () => {
      const before = backendA.connections.length + backendB.connections.length;
      const client = await connectClient(port);
      client.socket.write(bytes);
      await waitFor(() => client.closed, 2000, "drop");
      assert.equal(Buffer.concat(client.received).length, 0);
      assert.equal(client.error, null, "closed, not reset");
      assert.equal(backendA.connections.length + backendB.connections.length, before);
      const record = proxy.logger.records.at(-1)!;
      assert.equal(record.terminationState, "PR");
      assert.equal(record.reason, reason);
      assert.equal(record.server, "<NOSRV>");
    });
  }

  it("closes an incomplete hello at the inspect deadline (total, not idle)", async () => {
    const client = await connectClient(port);
    const hello = clientHello();
    const started = Date.now();
    // trickle a byte every 50 ms: an idle timer would never fire
    for (let i = 0; i < 20 && !client.closed; i++) {
      client.socket.write(hello.subarray(i, i + 1));
      await sleep(50);
    }
    await waitFor(() => client.closed, 2000, "deadline");
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 350 && elapsed < 900, `closed after ${elapsed} ms`);
    assert.equal(proxy.logger.records.at(-1)!.terminationState, "cR");
  });
});

describe("engine: actions, retries, limits, timeouts", () => {
  it("reject action resets; hold action waits for the deadline", async () => {
    const port = await freePort();
    const backend = await startBackend();
    const proxy = await startEngine(config(port, { a: [backend.port] }, {}, { onNoMatch: { action: "reject" } }));
    try {
      const client = await connectClient(port);
      client.socket.write(clientHello({ serverNames: [{ type: 0, name: "nope.example" }] }));
      await waitFor(() => client.closed, 2000);
      assert.equal(client.error?.code, "ECONNRESET");
      await proxy.reload(config(port, { a: [backend.port] }, {}, { onNoMatch: { action: "drop", holdUntilInspectDeadline: true } }));
      const held = await connectClient(port);
      const started = Date.now();
      held.socket.write(clientHello({ serverNames: [{ type: 0, name: "nope.example" }] }));
      await waitFor(() => held.closed, 2000);
      assert.ok(Date.now() - started >= 300, "held until the deadline");
      assert.equal(held.error, null);
      assert.equal(Buffer.concat(held.received).length, 0);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("retries onto the next server round-robin and logs the retry count; all failing is SC", async () => {
    const port = await freePort();
    const dead = await freePort();
    const backend = await startBackend((c) => c.socket.end());
    const proxy = await startEngine(config(port, { a: [dead, backend.port] }));
    try {
      for (let i = 0; i < 2; i++) {
        const client = await connectClient(port);
        client.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
        await waitFor(() => client.closed, 3000);
      }
      const [first, second] = proxy.logger.records.slice(-2);
      assert.deepEqual([first!.server, first!.retries, first!.terminationState], ["a02", 1, "--"]);
      // the cursor moved on, so the next connection starts at a01 again and retries onto a02
      assert.deepEqual([second!.server, second!.retries], ["a02", 1]);
      await proxy.reload(config(port, { a: [dead] }));
      const client = await connectClient(port);
      client.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => client.closed, 3000);
      const failed = proxy.logger.records.at(-1)!;
      assert.deepEqual([failed.terminationState, failed.retries, failed.Tc], ["SC", 2, -1]);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("propagates backpressure: a client that does not read stops the backend", async () => {
    const port = await freePort();
    let written = 0;
    let blocked = false;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const backend = await startBackend((c) => {
      const pump = () => {
        while (written < 200 * 1024 * 1024) {
          written += chunk.length;
          if (!c.socket.write(chunk)) {
            blocked = true;
            c.socket.once("drain", pump);
            return;
          }
        }
        c.socket.end();
      };
      pump();
    });
    const proxy = await startEngine(config(port, { a: [backend.port] }));
    try {
      const client = await connectClient(port);
      client.socket.pause();
      client.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await sleep(500);
      assert.ok(blocked, "backend saw backpressure");
      const stalledAt = written;
      assert.ok(stalledAt < 32 * 1024 * 1024, `backend wrote ${stalledAt} bytes to a client that reads nothing`);
      await sleep(200);
      assert.equal(written, stalledAt, "backend stays blocked");
      client.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("a half-close in an established tunnel starts the FIN timeout at once, not after the client timeout", async () => {
    const port = await freePort();
    const backend = await startBackend();
    const proxy = await startEngine(config(port, { a: [backend.port] }, { timeouts: { clientMs: 5000, serverMs: 5000, finMs: 200 } }));
    try {
      const client = await connectClient(port);
      client.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => backend.connections.length === 1 && backend.connections[0]!.chunks.length > 0, 2000, "the tunnel up");
      const started = Date.now();
      client.socket.end();
      // the server never answers the FIN
      await waitFor(() => client.closed, 3000, "fin timeout");
      assert.ok(Date.now() - started < 2000, `closed after ${Date.now() - started} ms: the FIN timeout (200 ms), not the client timeout (5 s)`);
      assert.equal(backend.connections[0]!.ended, true, "the FIN was passed on");
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("a FIN after the tunnel sat idle longer than finMs is passed on, and finMs counts from the FIN", async () => {
    const port = await freePort();
    const backend = await startBackend();
    const proxy = await startEngine(config(port, { a: [backend.port] }, { timeouts: { clientMs: 5000, serverMs: 5000, finMs: 300 } }));
    try {
      const client = await connectClient(port);
      client.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => backend.connections.length === 1 && backend.connections[0]!.chunks.length > 0, 2000, "the tunnel up");
      await sleep(600); // idle for twice finMs
      client.socket.end();
      await waitFor(() => backend.connections[0]!.ended, 2000, "the FIN at the server");
      // the server answers after the FIN, within finMs: it reaches the client
      backend.connections[0]!.socket.end("bye");
      await waitFor(() => client.closed, 2000, "closed");
      assert.equal(Buffer.concat(client.received).toString(), "bye");
      await waitFor(() => proxy.logger.records.length === 1, 2000, "the log line");
      assert.equal(proxy.logger.records[0]!.terminationState, "--", "a normal end, not a timeout");
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("applies client inactivity, tunnel and FIN timeouts", async () => {
    const port = await freePort();
    const backend = await startBackend();
    const proxy = await startEngine(config(port, { a: [backend.port] }, { timeouts: { clientMs: 300, serverMs: 5000, finMs: 200 } }));
    try {
      const idle = await connectClient(port);
      idle.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => idle.closed, 2000, "client timeout");
      assert.equal(proxy.logger.records.at(-1)!.terminationState, "cD");

      // half-closed by the client, the server never answers: the FIN timeout ends it
      const halfClosed = await connectClient(port);
      const started = Date.now();
      halfClosed.socket.end(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => halfClosed.closed, 2000, "fin timeout");
      assert.ok(Date.now() - started < 300, "fin timeout, not the client timeout");
      assert.equal(proxy.logger.records.at(-1)!.terminationState, "cD");

      await proxy.reload(config(port, { a: [backend.port] }, { timeouts: { clientMs: 100, serverMs: 100, tunnelMs: 600, finMs: 200 } }));
      const tunnel = await connectClient(port);
      const t0 = Date.now();
      tunnel.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => tunnel.closed, 2000, "tunnel timeout");
      assert.ok(Date.now() - t0 >= 550, "tunnel timeout supersedes client/server");
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  // maxconn (a full listener pauses; the fallback that accepts and holds): maxconn-backlog.test.ts.
});

describe("engine: inbound PROXY, reload, drain", () => {
  it("reads a PROXY header only from trusted sources", async () => {
    const port = await freePort();
    const backend = await startBackend((c) => c.socket.end());
    const hello = clientHello({ serverNames: [{ type: 0, name: "a.example" }] });
    const inbound = encodeProxyV2({ command: "proxy", source: { address: "198.51.100.9", port: 40000 }, destination: { address: "203.0.113.5", port: 443 } });
    const proxy = await startEngine(config(port, { a: [backend.port] }, {}, { acceptProxy: { trustedSources: ["127.0.0.0/8"] } }));
    try {
      // v2 header and hello in one segment, then a v1 header split from its hello
      const c1 = await connectClient(port);
      c1.socket.write(Buffer.concat([inbound, hello]));
      await waitFor(() => c1.closed);
      const h1 = parseProxyHeader(backend.connections.at(-1)!.bytes());
      assert.ok(h1.kind === "done" && h1.header.command === "proxy");
      if (h1.kind !== "done" || h1.header.command !== "proxy") return;
      assert.deepEqual(h1.header.source, { address: "198.51.100.9", port: 40000 });
      assert.deepEqual(h1.header.destination, { address: "203.0.113.5", port: 443 });
      assert.deepEqual(backend.connections.at(-1)!.bytes().subarray(h1.consumed), Buffer.from(hello));
      assert.equal(proxy.logger.records.at(-1)!.clientIp, "198.51.100.9");

      const c2 = await connectClient(port);
      c2.socket.write("PROXY TCP4 192.0.2.7 203.0.113.5 1234 443\r\n");
      await sleep(20);
      c2.socket.write(hello);
      await waitFor(() => c2.closed);
      assert.equal(proxy.logger.records.at(-1)!.clientIp, "192.0.2.7");

      const count = backend.connections.length;
      const c3 = await connectClient(port);
      c3.socket.write(hello); // trusted peer without a header: refused
      await waitFor(() => c3.closed);
      assert.equal(proxy.logger.records.at(-1)!.reason, "proxy-header:bad-signature");

      await proxy.reload(config(port, { a: [backend.port] }, {}, { acceptProxy: { trustedSources: ["10.0.0.0/8"] } }));
      const c4 = await connectClient(port);
      c4.socket.write(Buffer.concat([inbound, hello])); // untrusted peer: its header is not TLS
      await waitFor(() => c4.closed);
      assert.equal(proxy.logger.records.at(-1)!.reason, "hello:not-tls-handshake");
      assert.equal(backend.connections.length, count);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("reload switches routes for new connections and keeps existing tunnels; drain kills after the grace", async () => {
    const port = await freePort();
    const port2 = await freePort();
    const echo = (c: { socket: import("node:net").Socket }) => c.socket.on("data", (d: Buffer) => c.socket.write(d));
    const b1 = await startBackend(echo);
    const b2 = await startBackend(echo);
    const proxy = await startEngine(config(port, { a: [b1.port] }));
    try {
      const old = await connectClient(port);
      old.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => b1.connections.length === 1);
      const next = config(port, { a: [b2.port] });
      next.listeners[0]!.binds.push({ address: "127.0.0.1", port: port2 });
      await proxy.reload(next);
      const fresh = await connectClient(port2);
      fresh.socket.write(clientHello({ serverNames: [{ type: 0, name: "a.example" }] }));
      await waitFor(() => b2.connections.length === 1, 2000, "new route used");
      old.received.length = 0;
      old.socket.write("still-here");
      await waitFor(() => Buffer.concat(old.received).toString().endsWith("still-here"), 2000, "old tunnel alive");

      const drained = proxy.engine.drain(300);
      await sleep(50);
      await assert.rejects(connectClient(port), /ECONNREFUSED/);
      assert.ok(!old.closed, "existing connection survives the start of a drain");
      await drained;
      // Written before the drain ends, not when the sockets' close events come: a worker
      // exits right after its drain, and those lines would be lost.
      assert.deepEqual(proxy.logger.records.slice(-2).map((r) => r.terminationState), ["KD", "KD"]);
      assert.deepEqual(proxy.logger.events.find((e) => e.msg === "drained")?.fields, { killed: 2 });
      await waitFor(() => old.closed && fresh.closed, 1000);
      assert.equal(proxy.logger.records.length, 2, "one line per connection, none twice");
    } finally {
      await b1.close();
      await b2.close();
    }
  });
});
