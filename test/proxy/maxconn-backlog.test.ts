/**
 * maxconn as HAProxy does it: a full listener stops accepting, and what comes next waits in
 * the kernel's accept backlog (read with ss: a LISTEN socket's Recv-Q is its backlog), neither
 * accepted nor reset, until a place frees. And the fallback where listeners cannot pause:
 * accepted, held unread, reset at the deadline. Real sockets on loopback; the v6-only check
 * binds wildcard addresses, so it runs in a namespace of its own.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { validateProxyConfig } from "../../proxy/config/validate";
import { Engine, EngineOptions } from "../../proxy/engine/engine";
import { clientHello } from "../../proxy/fuzz/vectors";
import { memoryLogger } from "../../proxy/log/logger";
import { BindSpec, listen, Listening } from "../../proxy/net/pausable-listener";
import { Sandbox } from "../../lab/sandbox";
import { ClientRun, connectClient, freePort, isListening, sleep, startBackend, waitFor } from "./helpers/harness";

const PAUSED = "maxconn reached, listener paused: new connections wait in the kernel backlog";
const WAITING = "maxconn reached, new connections wait for a place";
const RESET = "maxconn reached, connections reset";
const MODE_PAUSE = "at maxconn a listener stops accepting: new connections wait in the kernel backlog";
const MODE_ACCEPT = "at maxconn new connections are accepted and wait unread for a place: listeners cannot pause here";

const hello = () => clientHello({ serverNames: [{ type: 0, name: "a.example" }] });

/** Connections waiting in the kernel's accept queue of the sockets listening on `port` (ss's Recv-Q of a LISTEN socket). */
function backlog(port: number): number {
  const out = execFileSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((line) => line.trim() !== "")
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[1]), 0);
}

interface ListenerSpec {
  readonly name: string;
  readonly port: number;
  readonly maxconn?: number;
  readonly mode?: "tls-passthrough" | "http-redirect";
}

function config(listeners: readonly ListenerSpec[], backendPort: number, o: { globalMaxconn?: number; inspectTimeoutMs?: number } = {}): ProxyConfigInput {
  return {
    global: { workers: 1, ...(o.globalMaxconn !== undefined ? { maxconn: o.globalMaxconn } : {}) },
    timeouts: { clientMs: 30_000, serverMs: 30_000, finMs: 1000 },
    listeners: listeners.map((l) => ({
      name: l.name,
      binds: [{ address: "127.0.0.1", port: l.port }],
      ...(l.maxconn !== undefined ? { maxconn: l.maxconn } : {}),
      ...(l.mode === "http-redirect" ? { mode: "http-redirect" as const, requestTimeoutMs: 30_000 } : { mode: "tls-passthrough" as const, inspectTimeoutMs: o.inspectTimeoutMs ?? 5000 }),
    })),
    routes: [{ host: "a.example", backend: "a" }],
    backends: [{ name: "a", connectTimeoutMs: 1000, retries: 1, servers: [{ name: "a01", address: "127.0.0.1", port: backendPort }] }],
  };
}

async function startEngine(input: ProxyConfigInput, options: Partial<EngineOptions> = {}) {
  const result = validateProxyConfig(input);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  const logger = memoryLogger();
  const engine = new Engine(result.config, logger, { workerCount: 1, reusePort: false, ...options });
  await engine.start();
  /** The counts of the warning lines `msg` wrote for `listener` so far, in order. */
  const warnings = (msg: string, listener: string) =>
    logger.events.filter((e) => e.msg === msg && e.fields?.["listener"] === listener).map((e) => Number(e.fields?.["pauses"] ?? e.fields?.["refused"]));
  const current = (listener: string) => engine.stats().counters.find((c) => c.key === `fe:${listener}`)?.current ?? 0;
  return { engine, logger, warnings, current, stop: () => engine.drain(0) };
}

/** The backend answers a FIN with its own, so a client that leaves frees its place at once. */
const endOnEnd = (c: { socket: net.Socket }) => void c.socket.on("end", () => c.socket.end());

const sum = (counts: readonly number[]) => counts.reduce((a, b) => a + b, 0);
const alive = (c: ClientRun) => !c.closed && c.error === null;

/** A client that connects (the kernel completes the handshake whether or not the proxy accepts) and sends a hello and `tail`. */
async function helloClient(port: number, tail = ""): Promise<ClientRun> {
  const c = await connectClient(port);
  c.socket.write(Buffer.concat([hello(), Buffer.from(tail)]));
  return c;
}

describe("maxconn: a full listener stops accepting", () => {
  it("the excess waits in the kernel backlog, neither accepted nor reset, past the inspect deadline; each freed place goes to the oldest", async () => {
    const backend = await startBackend(endOnEnd);
    const port = await freePort();
    const inspectTimeoutMs = 200;
    const proxy = await startEngine(config([{ name: "tls", port, maxconn: 3 }], backend.port, { inspectTimeoutMs }), { warnEveryMs: 300 });
    try {
      assert.ok(proxy.logger.events.some((e) => e.msg === MODE_PAUSE), "the engine did not say listeners pause");
      const occupants: ClientRun[] = [];
      for (let i = 0; i < 3; i++) occupants.push(await helloClient(port));
      await waitFor(() => backend.connections.length === 3, 3000, "the first three routed");
      assert.deepEqual(proxy.warnings(PAUSED, "tls"), [1], "the listener paused once, at its third connection");

      const marker = (i: number) => `<waiting-${i}>`;
      const waiting: ClientRun[] = [];
      for (let i = 0; i < 4; i++) waiting.push(await helloClient(port, marker(i)));
      await waitFor(() => backlog(port) === 4, 3000, "four connections in the kernel backlog", () => `Recv-Q ${backlog(port)}`);
      // The deadline of a connection the engine held would have passed three times over.
      await sleep(3 * inspectTimeoutMs);
      assert.equal(backlog(port), 4, "a waiting connection left the backlog");
      assert.equal(proxy.current("tls"), 3, "the engine accepted past maxconn");
      assert.equal(backend.connections.length, 3);
      assert.ok(waiting.every(alive), "a waiting connection was reset");
      assert.equal(proxy.engine.stats().maxconnRefused["tls"], undefined);
      assert.deepEqual(proxy.warnings(WAITING, "tls"), [], "a connection was accepted past maxconn");

      // One place at a time: each goes to the longest-waiting connection, and only to it.
      for (let i = 0; i < 4; i++) {
        occupants.shift()!.socket.destroy();
        await waitFor(() => backend.connections.length === 4 + i, 3000, `waiting connection ${i} routed`);
        const routed = backend.connections[3 + i]!;
        await waitFor(() => routed.bytes().includes("<waiting-"), 3000, "its bytes at the backend");
        assert.ok(routed.bytes().includes(marker(i)), `expected ${marker(i)} first, got ${routed.bytes().toString("latin1").slice(-12)}`);
        await waitFor(() => backlog(port) === 3 - i, 3000, "the backlog shrinks by one", () => `Recv-Q ${backlog(port)}`);
        assert.equal(proxy.current("tls"), 3);
        assert.equal(backend.connections.length, 4 + i, "more than one admitted for one place");
        occupants.push(waiting[i]!);
      }
      assert.ok(occupants.every(alive));
      for (const c of occupants) c.socket.destroy();
      await waitFor(() => proxy.current("tls") === 0, 3000, "all closed");
    } finally {
      await proxy.stop();
      await backend.close();
    }
    // Paused at the third connection, then again each time a freed place was taken.
    assert.equal(sum(proxy.warnings(PAUSED, "tls")), 5, JSON.stringify(proxy.warnings(PAUSED, "tls")));
    assert.deepEqual(proxy.warnings(RESET, "tls"), []);
  });

  it("a listener at its own maxconn pauses only itself; the other keeps accepting", async () => {
    const backend = await startBackend(endOnEnd);
    const [small, big] = [await freePort(), await freePort()];
    const proxy = await startEngine(config([{ name: "small", port: small, maxconn: 1 }, { name: "big", port: big }], backend.port, { globalMaxconn: 100 }));
    try {
      const first = await helloClient(small);
      await waitFor(() => backend.connections.length === 1, 3000, "the first routed");
      const queued = await helloClient(small);
      await waitFor(() => backlog(small) === 1, 3000, "one in the small listener's backlog", () => `Recv-Q ${backlog(small)}`);
      const others: ClientRun[] = [];
      for (let i = 0; i < 5; i++) others.push(await helloClient(big));
      await waitFor(() => backend.connections.length === 6, 3000, "the big listener's five routed");
      assert.equal(proxy.current("big"), 5);
      assert.equal(backlog(big), 0);
      assert.equal(proxy.current("small"), 1);
      assert.equal(backlog(small), 1, "the small listener accepted while full");
      assert.ok(alive(queued));
      assert.deepEqual(proxy.warnings(PAUSED, "small"), [1]);
      assert.deepEqual(proxy.warnings(PAUSED, "big"), []);
      first.socket.destroy();
      await waitFor(() => backend.connections.length === 7, 3000, "the waiting one routed");
      await waitFor(() => backlog(small) === 0, 3000, "the small listener's backlog empty");
      assert.equal(proxy.current("small"), 1);
      assert.ok(alive(queued));
      for (const c of [queued, ...others]) c.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("at the worker's share of global.maxconn every listener pauses; a freed place goes to one waiting connection", async () => {
    const backend = await startBackend(endOnEnd);
    const [a, b] = [await freePort(), await freePort()];
    const proxy = await startEngine(config([{ name: "a", port: a }, { name: "b", port: b }], backend.port, { globalMaxconn: 2 }));
    try {
      const onA = await helloClient(a);
      await waitFor(() => backend.connections.length === 1, 3000, "a's routed");
      const onB = await helloClient(b);
      await waitFor(() => backend.connections.length === 2, 3000, "b's routed");
      assert.deepEqual(proxy.warnings(PAUSED, "a"), [1]);
      assert.deepEqual(proxy.warnings(PAUSED, "b"), [1]);
      const waitA = await helloClient(a);
      const waitB = await helloClient(b);
      await waitFor(() => backlog(a) === 1 && backlog(b) === 1, 3000, "one in each backlog", () => `Recv-Q a ${backlog(a)} b ${backlog(b)}`);
      assert.equal(backend.connections.length, 2);
      onB.socket.destroy();
      await waitFor(() => backend.connections.length === 3, 3000, "one waiting connection routed");
      await waitFor(() => backlog(a) + backlog(b) === 1, 3000, "the other still in its backlog", () => `Recv-Q a ${backlog(a)} b ${backlog(b)}`);
      assert.equal(proxy.current("a") + proxy.current("b"), 2);
      assert.ok([waitA, waitB].every(alive));
      for (const c of [onA, waitA, waitB]) c.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("the http-redirect listener pauses the same way", async () => {
    const backend = await startBackend(endOnEnd);
    const port = await freePort();
    const proxy = await startEngine(config([{ name: "http", port, maxconn: 1, mode: "http-redirect" }], backend.port));
    try {
      const idle = await connectClient(port);
      await waitFor(() => proxy.current("http") === 1, 3000, "the idle request counted");
      const next = await connectClient(port);
      next.socket.write("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n");
      await waitFor(() => backlog(port) === 1, 3000, "the second in the backlog", () => `Recv-Q ${backlog(port)}`);
      assert.deepEqual(proxy.warnings(PAUSED, "http"), [1]);
      assert.equal(next.received.length, 0);
      idle.socket.destroy();
      await waitFor(() => next.closed, 3000, "the second answered");
      assert.match(Buffer.concat(next.received).toString(), /^HTTP\/1\.1 301 .*\r\nLocation: https:\/\/a\.example\/x\r\n/s);
      assert.equal(backlog(port), 0);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("a reload that lowers maxconn pauses at the new limit; one that raises it lets the backlog in", async () => {
    const backend = await startBackend(endOnEnd);
    const port = await freePort();
    const input = (maxconn: number) => config([{ name: "tls", port, maxconn }], backend.port);
    const proxy = await startEngine(input(2));
    const reload = async (maxconn: number) => {
      const r = validateProxyConfig(input(maxconn));
      if (!r.ok) throw new Error(r.errors.join("\n"));
      await proxy.engine.reload(r.config);
    };
    try {
      const first = await helloClient(port);
      await waitFor(() => backend.connections.length === 1, 3000, "the first routed");
      await reload(1);
      const waiting = [await helloClient(port), await helloClient(port)];
      await waitFor(() => backlog(port) === 2, 3000, "both in the backlog", () => `Recv-Q ${backlog(port)}`);
      assert.equal(proxy.current("tls"), 1);
      await reload(3);
      await waitFor(() => backend.connections.length === 3, 3000, "both routed after the limit rose");
      assert.equal(backlog(port), 0);
      assert.ok(waiting.every(alive));
      for (const c of [first, ...waiting]) c.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });
  it("a reload that moves a full listener's bind closes the old socket (its backlog with it) and the new one starts paused; accepted connections stay", async () => {
    const backend = await startBackend(endOnEnd);
    const [oldPort, newPort] = [await freePort(), await freePort()];
    const proxy = await startEngine(config([{ name: "tls", port: oldPort, maxconn: 1 }], backend.port));
    try {
      const occupant = await helloClient(oldPort);
      await waitFor(() => backend.connections.length === 1, 3000, "the occupant routed");
      const stranded = await helloClient(oldPort);
      await waitFor(() => backlog(oldPort) === 1, 3000, "one in the old backlog");
      const r = validateProxyConfig(config([{ name: "tls", port: newPort, maxconn: 1 }], backend.port));
      if (!r.ok) throw new Error(r.errors.join("\n"));
      await proxy.engine.reload(r.config);
      await waitFor(() => !isListening(oldPort), 3000, "the old socket closed");
      await waitFor(() => stranded.closed, 3000, "the kernel resets what its backlog held");
      const waiting = await helloClient(newPort);
      await waitFor(() => backlog(newPort) === 1, 3000, "the new bind full from the start", () => `Recv-Q ${backlog(newPort)}`);
      assert.equal(proxy.current("tls"), 1);
      // The occupant's tunnel is untouched: bytes still flow to the backend.
      occupant.socket.write("still-here");
      await waitFor(() => backend.connections[0]!.bytes().includes("still-here"), 3000, "the occupant's bytes");
      occupant.socket.destroy();
      await waitFor(() => backend.connections.length === 2, 3000, "the waiting one routed on the new bind");
      assert.ok(alive(waiting));
      waiting.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });
});

describe("maxconn where listeners cannot pause (forced): accepted, held unread, reset at the deadline", () => {
  /** An engine with maxconn 1 whose one place is taken by a routed connection; `run` gets the rest. */
  const withOnePlaceTaken = async (inspectTimeoutMs: number, run: (port: number, proxy: Awaited<ReturnType<typeof startEngine>>, backend: Awaited<ReturnType<typeof startBackend>>, first: ClientRun) => Promise<void>) => {
    const port = await freePort();
    const backend = await startBackend(endOnEnd);
    const proxy = await startEngine(config([{ name: "tls", port, maxconn: 1 }], backend.port, { inspectTimeoutMs }), { pauseListeners: false });
    try {
      const first = await helloClient(port);
      await waitFor(() => backend.connections.length === 1);
      await run(port, proxy, backend, first);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  };

  it("says so once, and a connection past maxconn is accepted, waits unread for a place, and gets it when one frees up", () =>
    withOnePlaceTaken(5000, async (port, proxy, backend, first) => {
      assert.deepEqual(
        proxy.logger.events.filter((e) => e.msg === MODE_PAUSE || e.msg === MODE_ACCEPT).map((e) => [e.msg, e.fields?.["reason"]]),
        [[MODE_ACCEPT, "disabled"]],
      );
      const second = await helloClient(port);
      // Accepted (out of the kernel's backlog) and queued by the engine, its hello unread.
      await waitFor(() => proxy.warnings(WAITING, "tls").length === 1, 3000, "the wait warning");
      assert.equal(backlog(port), 0, "left in the kernel backlog: the listener paused");
      assert.ok(alive(second), "the waiting connection was reset");
      assert.equal(backend.connections.length, 1, "the waiting connection was routed past maxconn");
      assert.deepEqual(proxy.warnings(PAUSED, "tls"), []);
      first.socket.destroy();
      await waitFor(() => backend.connections.length === 2, 3000, "the waiting connection routed");
      assert.ok(alive(second));
      second.socket.destroy();
    }));

  it("warnings count every connection exactly and at once: the first line immediately, the rest when the window ends; stats count the resets", async () => {
    const port = await freePort();
    const backend = await startBackend(endOnEnd);
    const windowMs = 1000;
    const proxy = await startEngine(config([{ name: "tls", port, maxconn: 1 }], backend.port, { inspectTimeoutMs: 200 }), { warnEveryMs: windowMs, pauseListeners: false });
    try {
      const first = await helloClient(port);
      await waitFor(() => backend.connections.length === 1);
      // A burst past maxconn: each waits, unread, then is reset at its deadline.
      const burst = await Promise.all(Array.from({ length: 7 }, () => connectClient(port).catch(() => ({ closed: true }))));
      await waitFor(() => proxy.warnings(WAITING, "tls").length >= 1, 1000, "the first warning");
      assert.deepEqual(proxy.warnings(WAITING, "tls"), [1], "the first one at once");
      await waitFor(() => burst.every((c) => c.closed), 3000, "the burst reset at the deadline");
      // The window's line comes when it ends, with the exact rest: no later refusal needed.
      await waitFor(() => proxy.warnings(WAITING, "tls").length === 2, 2000, "the window's line");
      assert.deepEqual(proxy.warnings(WAITING, "tls"), [1, 6]);
      await waitFor(() => sum(proxy.warnings(RESET, "tls")) === 7, 2000, "every reset counted");
      assert.equal(proxy.engine.stats().maxconnRefused["tls"], 7);
      first.socket.destroy();
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });

  it("a connection waiting past maxconn is reset at the listener's inspect deadline", () =>
    withOnePlaceTaken(300, async (port, _proxy, _backend, first) => {
      const t0 = Date.now();
      const second = await connectClient(port).catch((error: NodeJS.ErrnoException) => ({ closed: true, error }));
      await waitFor(() => second.closed, 3000, "reset at the deadline");
      assert.equal(second.error?.code, "ECONNRESET");
      assert.ok(Date.now() - t0 >= 250, `reset after ${Date.now() - t0} ms, before the deadline`);
      assert.ok(!first.closed);
      first.socket.destroy();
    }));
});

describe("pausable listener (net/pausable-listener.ts)", () => {
  const spec = (port: number, more: Partial<BindSpec> = {}): BindSpec => ({ host: "127.0.0.1", port, ipv6Only: false, reusePort: false, backlog: 511, ...more });
  const serve = () => {
    const server = net.createServer();
    const accepted: net.Socket[] = [];
    server.on("connection", (s) => accepted.push(s));
    return { server, accepted };
  };
  const close = (server: net.Server, sockets: net.Socket[]) => {
    for (const s of sockets) s.destroy();
    server.close();
  };

  it("pause leaves connections in the kernel backlog, resume accepts them; closing the server closes the socket, and pause after that touches nothing", async () => {
    const port = await freePort();
    const { server, accepted } = serve();
    const l = await listen(server, spec(port), true);
    assert.deepEqual(l.mode, { pausable: true });
    assert.equal(l.pause(), true);
    assert.equal(l.pause(), false, "already paused");
    assert.equal(l.paused, true);
    const clients = await Promise.all([1, 2, 3].map(() => connectClient(port)));
    await waitFor(() => backlog(port) === 3, 3000, "three in the backlog", () => `Recv-Q ${backlog(port)}`);
    assert.equal(accepted.length, 0);
    assert.equal(l.resume(), true);
    await waitFor(() => accepted.length === 3, 3000, "all three accepted");
    assert.equal(backlog(port), 0);
    close(server, accepted);
    await waitFor(() => !isListening(port), 3000, "the port closed with the server");
    assert.equal(l.pause(), false, "a closed listener cannot pause");
    assert.equal(l.resume(), false);
    for (const c of clients) c.socket.destroy();
  });

  it("reusePort: two pausable sockets share a port (and one without the flag cannot join); pausing one leaves the other accepting", async () => {
    const port = await freePort();
    const [one, two, three] = [serve(), serve(), serve()];
    const l1 = await listen(one.server, spec(port, { reusePort: true }), true);
    const l2 = await listen(two.server, spec(port, { reusePort: true }), true);
    try {
      assert.ok(l1.mode.pausable && l2.mode.pausable);
      await assert.rejects(listen(three.server, spec(port), true), (e: NodeJS.ErrnoException) => e.code === "EADDRINUSE");
      l1.pause();
      const clients: ClientRun[] = [];
      for (let i = 0; i < 20; i++) clients.push(await connectClient(port));
      // The kernel spreads them over both sockets; the paused one keeps its share in its backlog.
      await waitFor(() => two.accepted.length + backlog(port) === 20 && two.accepted.length > 0 && backlog(port) > 0, 3000, "a share accepted, a share queued", () => `accepted ${two.accepted.length}, Recv-Q ${backlog(port)}`);
      assert.equal(one.accepted.length, 0);
      l1.resume();
      await waitFor(() => one.accepted.length + two.accepted.length === 20, 3000, "all accepted");
      for (const c of clients) c.socket.destroy();
    } finally {
      close(one.server, one.accepted);
      close(two.server, two.accepted);
    }
  });

  it("a bind that fails rejects with the errno and leaves nothing listening", async () => {
    const { server } = serve();
    await assert.rejects(listen(server, spec(await freePort(), { host: "192.0.2.1" }), true), (e: NodeJS.ErrnoException) => e.code === "EADDRNOTAVAIL" && e.message.includes("192.0.2.1"));
    assert.equal(server.listening, false);
  });

  it("not pausable when asked not to be: a plain listen, pause does nothing", async () => {
    const port = await freePort();
    const { server, accepted } = serve();
    const l: Listening = await listen(server, spec(port), false);
    assert.deepEqual(l.mode, { pausable: false, reason: "disabled" });
    assert.equal(l.pause(), false);
    const c = await connectClient(port);
    await waitFor(() => accepted.length === 1, 3000, "accepted");
    c.socket.destroy();
    close(server, accepted);
  });

  it("IPv6 binds are v6-only: [::]:P beside 0.0.0.0:P (in a namespace: wildcard addresses)", { timeout: 60_000 }, async () => {
    const sb = await Sandbox.create({ prefix: "pxb" });
    const dir = mkdtempSync(path.join(os.tmpdir(), "pxb-"));
    try {
      const ns = await sb.namespace("lb");
      const script = path.join(dir, "v6only.ts");
      const modulePath = path.join(__dirname, "..", "..", "proxy", "net", "pausable-listener.ts");
      writeFileSync(
        script,
        `import net from "node:net";
import { listen } from ${JSON.stringify(modulePath)};
const attempt = (host: string, port: number, ipv6Only: boolean) =>
  listen(net.createServer(), { host, port, ipv6Only, reusePort: false, backlog: 511 }, true).then((l) => (l.mode.pausable ? "pausable" : "plain"), (e: NodeJS.ErrnoException) => String(e.code));
(async () => {
  const out = [await attempt("0.0.0.0", 7001, false), await attempt("::", 7001, true), await attempt("0.0.0.0", 7002, false), await attempt("::", 7002, false)];
  console.log(JSON.stringify(out));
  process.exit(0);
})();
`,
      );
      const r = await ns.exec([process.execPath, "--import", "tsx", script], { cwd: path.join(__dirname, "..", ".."), timeoutMs: 30_000 });
      // Without the v6-only flag, [::] would take IPv4 too and collide with 0.0.0.0.
      assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), ["pausable", "pausable", "pausable", "EADDRINUSE"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sb.teardown();
    }
  });
});
