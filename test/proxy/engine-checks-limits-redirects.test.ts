import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import { promisify } from "node:util";
import net from "node:net";
import { describe, it } from "node:test";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { clientHello } from "../../proxy/fuzz/vectors";
import { redirectFor } from "../../proxy/http/redirect";
import { connectClient, freePort, sleep, startBackend, startEngine, waitFor } from "./helpers/harness";

const hello = () => clientHello({ serverNames: [{ type: 0, name: "a.example" }] });

function tlsConfig(port: number, servers: number[], listener: Record<string, unknown> = {}): ProxyConfigInput {
  return {
    global: { workers: 1 },
    listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port }], inspectTimeoutMs: 300, ...listener }],
    routes: [{ host: "a.example", backend: "a" }],
    backends: [{ name: "a", connectTimeoutMs: 300, retries: 1, servers: servers.map((p, i) => ({ name: `s${i}`, address: "127.0.0.1", port: p })) }],
  };
}

describe("health verdicts in the engine", () => {
  it("skips DOWN servers in the round-robin; with none UP the client is closed without a byte (<NOSRV>, SC)", async () => {
    const b0 = await startBackend();
    const b1 = await startBackend();
    const port = await freePort();
    const proxy = await startEngine(tlsConfig(port, [b0.port, b1.port]));
    proxy.engine.setDownServers(["a/s0"]);
    for (let i = 0; i < 4; i++) {
      const c = await connectClient(port);
      c.socket.write(hello());
      await waitFor(() => b1.connections.length === i + 1, 2000, "connection on s1");
      c.socket.destroy();
    }
    assert.equal(b0.connections.length, 0);
    proxy.engine.setDownServers(["a/s0", "a/s1"]);
    const c = await connectClient(port);
    c.socket.write(hello());
    await waitFor(() => c.closed, 2000, "client closed");
    assert.equal(Buffer.concat(c.received).length, 0);
    await waitFor(() => proxy.logger.records.some((r) => r.terminationState === "SC" && r.server === "<NOSRV>"), 2000, "SC record");
    assert.equal(proxy.logger.records.at(-1)?.reason, "connect:no server available");
    await proxy.stop();
    await b0.close();
    await b1.close();
  });
});

describe("rate limit in the engine", () => {
  it("drop: past the threshold a source is held silently (no byte, no RST) until the inspect deadline", async () => {
    const backend = await startBackend();
    const port = await freePort();
    const proxy = await startEngine(tlsConfig(port, [backend.port], { rateLimit: { maxConnectionsPerWindow: 3, windowMs: 1000 } }));
    const clients: Awaited<ReturnType<typeof connectClient>>[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connectClient(port);
      c.socket.write(hello());
      clients.push(c);
    }
    await waitFor(() => backend.connections.length === 2, 2000, "two served");
    await sleep(100);
    // The third reaches the threshold (HAProxy's `ge`), so two are served and three held.
    assert.equal(backend.connections.length, 2);
    assert.equal(proxy.engine.stats().held, 3);
    assert.deepEqual(proxy.engine.stats().rateLimited, { https: 3 });
    await waitFor(() => clients.slice(2).every((c) => c.closed), 2000, "held ones closed at the deadline");
    for (const c of clients.slice(2)) {
      assert.equal(c.error, null, "closed with FIN, not reset");
      assert.equal(Buffer.concat(c.received).length, 0);
    }
    assert.equal(proxy.engine.stats().held, 0);
    await proxy.stop();
    await backend.close();
  });

  it("reject: resets at once; maxHeld bounds the held connections (the rest close at once)", async () => {
    const backend = await startBackend();
    const port = await freePort();
    const proxy = await startEngine(tlsConfig(port, [backend.port], { rateLimit: { maxConnectionsPerWindow: 1, action: "reject" } }));
    // The first connection already reaches a threshold of 1; the RST may even beat the connect callback.
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => s.write(hello()));
      s.on("error", resolve);
      s.on("close", () => resolve(null));
    });
    assert.equal(error?.code, "ECONNRESET");
    await proxy.reload(tlsConfig(port, [backend.port], { rateLimit: { maxConnectionsPerWindow: 1 }, onNoMatch: { action: "drop", holdUntilInspectDeadline: true, maxHeld: 1 } }));
    // The table survives the reload (same size and window), so this source is still over.
    const held = await connectClient(port);
    const closed = await connectClient(port);
    await waitFor(() => closed.closed, 1000, "second closed at once");
    assert.equal(held.closed, false);
    held.socket.destroy();
    await proxy.stop();
    await backend.close();
  });
});

describe("http-redirect listener", () => {
  it("redirectFor: same host (port dropped) and path on https; a bad or missing Host is 400", () => {
    assert.deepEqual(redirectFor("a.example", "/x?y=1", 301, 443), { status: 301, location: "https://a.example/x?y=1" });
    assert.deepEqual(redirectFor("a.example:80", "/", 301, 8443), { status: 301, location: "https://a.example:8443/" });
    assert.deepEqual(redirectFor("[2001:db8::1]:80", "/", 308, 443), { status: 308, location: "https://[2001:db8::1]/" });
    assert.deepEqual(redirectFor("a.example", "http://other/p?q", 301, 443), { status: 301, location: "https://a.example/p?q" });
    for (const host of [undefined, "", "a b", "a.example\r\nX: y", "a/b", "-a.example"]) assert.equal(redirectFor(host, "/", 301, 443).status, 400, String(host));
    assert.equal(redirectFor("a.example", "*", 301, 443).status, 400);
  });

  it("answers curl with 301 Location, 400 without Host, 431 for a huge head, and closes a slow request", async () => {
    const port = await freePort();
    const tls = await freePort();
    const proxy = await startEngine({
      listeners: [
        { name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: tls }] },
        { name: "http", mode: "http-redirect", binds: [{ address: "127.0.0.1", port }], requestTimeoutMs: 300, maxHeaderBytes: 2048, sessionsPerSecond: 100 },
      ],
      routes: [],
      backends: [],
    });
    // Async: the engine runs in this process, a blocking exec would starve it.
    const curl = async (...args: string[]) => (await promisify(execFile)("curl", ["-sS", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", ...args])).stdout;
    try {
      assert.equal(await curl(`http://127.0.0.1:${port}/some/path?x=1`, "-H", "Host: site.example"), "301 https://site.example/some/path?x=1");
      assert.equal(await curl("--http1.0", "-H", "Host:", `http://127.0.0.1:${port}/`), "400 ");
      assert.equal((await curl("-H", `X-Big: ${"a".repeat(4000)}`, `http://127.0.0.1:${port}/`)).split(" ")[0], "431");
      const slow = net.connect(port, "127.0.0.1");
      let got = "";
      slow.on("data", (d) => (got += d));
      slow.write("GET / HTTP/1.1\r\nHost: x\r\n");
      await new Promise((r) => slow.once("close", r));
      assert.match(got, /^HTTP\/1\.1 408/);
      assert.equal(proxy.engine.stats().redirects[0]?.redirects, 1);
    } finally {
      await proxy.stop();
    }
  });

  it("sends an ACME challenge for a routed name to its server's responder, 404 for any other name, and still redirects the rest", async () => {
    // The responder: answers its token, records what it was asked.
    const asked: { url: string; host: string }[] = [];
    const responder = http.createServer((req, res) => {
      asked.push({ url: req.url ?? "", host: req.headers.host ?? "" });
      if (req.url === "/.well-known/acme-challenge/tok-1") res.writeHead(200, { "Content-Type": "text/plain" }).end("tok-1.thumbprint");
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => responder.listen(0, "127.0.0.1", r));
    const acmePort = (responder.address() as net.AddressInfo).port;
    const port = await freePort();
    const tls = await freePort();
    const proxy = await startEngine({
      listeners: [
        { name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: tls }] },
        { name: "http", mode: "http-redirect", binds: [{ address: "127.0.0.1", port }], requestTimeoutMs: 1000 },
      ],
      routes: [
        { host: "a.example", backend: "a" },
        { host: "*.b.example", backend: "b" },
        { host: "c.example", backend: "c" },
      ],
      backends: [
        { name: "a", servers: [{ name: "a1", address: "127.0.0.1", port: 1, acmePort }] },
        { name: "b", servers: [{ name: "b1", address: "127.0.0.1", port: 1, acmePort }] },
        // A backend whose servers name no responder (an attached stack of an older release).
        { name: "c", servers: [{ name: "c1", address: "127.0.0.1", port: 1 }] },
      ],
    });
    const get = async (host: string, path: string) =>
      (await promisify(execFile)("curl", ["-sS", "--max-time", "3", "-w", " %{http_code} %{redirect_url}", "-H", `Host: ${host}`, `http://127.0.0.1:${port}${path}`])).stdout;
    try {
      assert.equal(await get("A.Example:80", "/.well-known/acme-challenge/tok-1"), "tok-1.thumbprint 200 ");
      assert.deepEqual(asked.at(-1), { url: "/.well-known/acme-challenge/tok-1", host: "a.example" });
      assert.equal(await get("x.b.example", "/.well-known/acme-challenge/other"), " 404 ", "the responder's own 404 comes back");
      assert.equal(asked.length, 2);
      for (const host of ["unrouted.example", "127.0.0.1", "a.example."]) assert.equal(await get(host, "/.well-known/acme-challenge/tok-1"), " 404 ", host);
      // Routed to servers without a responder: redirected to https, as before there were responders.
      assert.equal(await get("c.example", "/.well-known/acme-challenge/tok-1"), " 301 https://c.example/.well-known/acme-challenge/tok-1");
      assert.equal(asked.length, 2, "names without a responder never reach one");
      // A proxy-style absolute target is a challenge too, as HAProxy's path_beg sees it.
      const absolute = (await promisify(execFile)("curl", ["-sS", "--max-time", "3", "-w", " %{http_code}", "--request-target", "http://a.example/.well-known/acme-challenge/tok-1", "-H", "Host: a.example", `http://127.0.0.1:${port}/`])).stdout;
      assert.equal(absolute, "tok-1.thumbprint 200");
      assert.equal(await get("a.example", "/.well-known/other"), " 301 https://a.example/.well-known/other");
      const r = proxy.engine.stats().redirects[0];
      assert.equal(r?.challenges, 3);
      assert.equal(r?.redirects, 2);
      // A responder that is gone: 503, as HAProxy answers for a server it cannot reach.
      await new Promise((resolve) => responder.close(resolve));
      assert.equal(await get("a.example", "/.well-known/acme-challenge/tok-1"), " 503 ");
    } finally {
      await proxy.stop();
      responder.close();
    }
  });
});
