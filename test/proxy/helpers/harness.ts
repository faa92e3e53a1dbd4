/** Loopback-only helpers for engine tests: free ports, a recording backend, waits. */
import { readFileSync } from "node:fs";
import net from "node:net";
import { ProxyConfigInput } from "../../../contract/proxy-config";
import { validateProxyConfig } from "../../../proxy/config/validate";
import { Engine } from "../../../proxy/engine/engine";
import { memoryLogger } from "../../../proxy/log/logger";
import type { Readable } from "node:stream";

export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` every 10 ms; on timeout the error names `what` and, if given, what `lastSeen` says was there. */
export async function waitFor(check: () => boolean, timeoutMs = 3000, what = "condition", lastSeen?: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${lastSeen ? `; last seen: ${lastSeen()}` : ""}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Whether a TCP socket in this network namespace listens on `port` (any address), read from
 * /proc/net/tcp{,6}: it tells "the listener is closed" without opening a connection.
 */
export function isListening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const table = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return ""; // no IPv6 in this kernel
    }
  };
  return ["/proc/net/tcp", "/proc/net/tcp6"].some((file) =>
    table(file)
      .split("\n")
      .slice(1)
      .some((line) => {
        const [, local, , state] = line.trim().split(/\s+/);
        return state === "0A" && local?.endsWith(`:${hexPort}`) === true;
      }),
  );
}

export { sleep } from "../../../lab/command";

export async function startEngine(input: ProxyConfigInput, options: { readonly warnEveryMs?: number } = {}) {
  const result = validateProxyConfig(input);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  const logger = memoryLogger();
  const engine = new Engine(result.config, logger, { workerCount: 1, reusePort: false, ...options });
  await engine.start();
  return {
    engine,
    logger,
    reload: (next: ProxyConfigInput) => {
      const r = validateProxyConfig(next);
      if (!r.ok) throw new Error(r.errors.join("\n"));
      return engine.reload(r.config);
    },
    stop: () => engine.drain(0),
  };
}

export interface BackendConnection {
  readonly socket: net.Socket;
  readonly chunks: Buffer[];
  ended: boolean;
  bytes(): Buffer;
}

/** A TCP backend that records what each connection sends; `onConnection` may reply. */
export async function startBackend(onConnection: (c: BackendConnection) => void = () => undefined, host = "127.0.0.1") {
  const connections: BackendConnection[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const c: BackendConnection = { socket, chunks: [], ended: false, bytes: () => Buffer.concat(c.chunks) };
    socket.on("data", (d: Buffer) => c.chunks.push(d));
    socket.on("end", () => (c.ended = true));
    socket.on("error", () => undefined);
    connections.push(c);
    onConnection(c);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface ClientRun {
  readonly socket: net.Socket;
  readonly received: Buffer[];
  ended: boolean;
  closed: boolean;
  error: NodeJS.ErrnoException | null;
  readonly localPort: number;
}

export async function connectClient(port: number, host = "127.0.0.1"): Promise<ClientRun> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  const run: Omit<ClientRun, "localPort"> = { socket, received: [], ended: false, closed: false, error: null };
  socket.on("data", (d: Buffer) => run.received.push(d));
  socket.on("end", () => {
    // Answer the peer's FIN with ours so "closed" means the proxy ended the connection.
    run.ended = true;
    socket.end();
  });
  socket.on("close", () => (run.closed = true));
  socket.on("error", (e) => (run.error = e));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return Object.assign(run, { localPort: socket.localPort ?? 0 });
}

/** The proxy's JSON log lines as they arrive on `stream` (its stdout), parsed, in order. */
export function jsonLinesOf(stream: Readable): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let pending = "";
  stream.on("data", (chunk: Buffer) => {
    const parts = (pending + chunk.toString()).split("\n");
    pending = parts.pop()!;
    for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return lines;
}
