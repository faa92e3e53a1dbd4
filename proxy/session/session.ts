/**
 * One client connection on a tls-passthrough listener, from accept to the
 * log line: optional inbound PROXY header, ClientHello inspection under a
 * total deadline, routing, backend connect, then the tunnel.
 *
 * Until the hello is accepted nothing is ever sent to the client and nothing
 * reaches a backend: a failure in any phase ends in the listener's action.
 *
 * A session lives as long as its connection, idle ones for hours: once the
 * tunnel is up it drops what only the handshake needed (parsers, the early
 * listeners and their closures), keeping just what the log line reads.
 */
import net from "node:net";
import { connectToBackend, ConnectAttempt, ConnectOutcome } from "../backend/connector";
import { ClientHelloParser } from "../codec/client-hello";
import { canonicalIP } from "../codec/ip-address";
import { ProxyHeaderParser } from "../codec/proxy-header-parser";
import { encodeProxyV2, Endpoint } from "../codec/proxy-v2-encoder";
import { ServerConfig } from "../../contract/proxy-config";
import { backendKey, Counters, frontendKey, serverKey } from "../engine/counters";
import { ListenerRuntime, RuntimeSnapshot } from "../engine/runtime-snapshot";
import { Logger } from "../log/logger";
import { normaliseServerName } from "../routing/server-name";
import { SessionPhase, TerminationCause, terminationState } from "./termination";
import { Tunnel, TunnelEnd } from "./tunnel";

export interface SessionContext {
  snapshot(): RuntimeSnapshot;
  readonly counters: Counters;
  readonly logger: Logger;
  closed(session: Session): void;
  /** The listener's rate limit for a source known only from a trusted PROXY header; null: admitted. */
  rateCheck(listener: string, source: string): "drop" | "reject" | null;
  /** Claims one of the worker's held-connection places; false when they are all taken. */
  hold(maxHeld: number): boolean;
  unhold(): void;
}

type Phase = "proxy-header" | "hello" | "hold" | "connect" | "tunnel" | "done";

const TUNNEL_END: Record<TunnelEnd, TerminationCause> = {
  normal: "-",
  "client-timeout": "c",
  "server-timeout": "s",
  "client-error": "C",
  "server-error": "S",
  killed: "K",
  crashed: "I",
};

/** The listeners of the handshake phases: one object, dropped whole when the tunnel takes over. */
interface EarlyListeners {
  readonly data: (chunk: Buffer) => void;
  readonly end: () => void;
  readonly error: () => void;
  readonly close: () => void;
}

export class Session {
  private phase: Phase;
  /** A number, not a Date: the Date object is made for the log line only. */
  private readonly acceptedEpochMs = Date.now();
  private readonly acceptedAt = performance.now();
  private client: Endpoint;
  private frontend: Endpoint;
  private chunks: Buffer[] = [];
  private proxyParser: ProxyHeaderParser | null = null;
  private helloParser: ClientHelloParser | null;
  private early: EarlyListeners | null;
  private deadline: NodeJS.Timeout | null = null;
  private sni: string | null = null;
  private reason: string | null = null;
  private backend: string | null = null;
  private server: ServerConfig | null = null;
  private connected = false;
  private connectStart = 0;
  private Tc = -1;
  private retries = 0;
  private attempt: ConnectAttempt | null = null;
  private tunnel: Tunnel | null = null;
  private proxyFed = 0;
  private clientEnded = false;
  private helloBytes = 0;

  constructor(
    private readonly ctx: SessionContext,
    private readonly socket: net.Socket,
    private readonly listener: ListenerRuntime,
  ) {
    this.client = { address: canonicalIP(socket.remoteAddress ?? "0.0.0.0"), port: socket.remotePort ?? 0 };
    this.frontend = { address: canonicalIP(socket.localAddress ?? "0.0.0.0"), port: socket.localPort ?? 0 };
    this.helloParser = new ClientHelloParser(listener.config.maxHelloBytes);
    const trusted = listener.trusted !== null && listener.trusted.has(this.client.address);
    if (trusted) this.proxyParser = new ProxyHeaderParser();
    this.phase = trusted ? "proxy-header" : "hello";
    ctx.counters.actconn++;
    ctx.counters.add(frontendKey(listener.config.name), 1);
    socket.setNoDelay(true);
    const early: EarlyListeners = {
      data: (chunk) => this.onData(chunk),
      end: () => this.onEarlyEnd(),
      error: () => this.onEarlyError(),
      close: () => this.onEarlyClose(),
    };
    this.early = early;
    socket.on("data", early.data);
    socket.on("end", early.end);
    socket.on("error", early.error);
    socket.on("close", early.close);
    this.deadline = setTimeout(() => this.onInspectDeadline(), listener.config.inspectTimeoutMs);
    if (socket.destroyed) this.finish("C", "R");
  }

  get isDone(): boolean {
    return this.phase === "done";
  }

  /** Drain expired (K), or the worker is going down with an error (I): end it now, its line written at once. */
  kill(cause: "K" | "I" = "K"): void {
    if (this.phase === "tunnel") this.tunnel?.kill(cause === "I" ? "crashed" : "killed");
    else {
      this.attempt?.abort();
      this.socket.destroy();
      this.finish(cause, this.phase === "connect" ? "C" : "R");
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "hold") return; // discard: we are only waiting out the deadline
    if (this.phase === "proxy-header" && this.proxyParser !== null) {
      this.proxyFed += chunk.length;
      const result = this.proxyParser.push(chunk);
      if (result.kind === "need-more") return;
      if (result.kind === "reject") return this.refuse(`proxy-header:${result.reason}`);
      if (result.header.command === "proxy") {
        this.client = result.header.source;
        this.frontend = result.header.destination;
        const verdict = this.ctx.rateCheck(this.listener.config.name, this.client.address);
        if (verdict !== null) {
          this.reason = "rate-limit";
          if (verdict === "reject") this.socket.resetAndDestroy();
          else this.socket.destroy();
          return this.finish("P", "R");
        }
      }
      this.phase = "hello";
      this.proxyParser = null;
      // The parser consumed exactly the header; what is left of this chunk is TLS.
      const rest = chunk.subarray(chunk.length - (this.proxyFed - result.consumed));
      if (rest.length > 0) this.feedHello(rest);
      return;
    }
    if (this.phase === "hello") this.feedHello(chunk);
  }

  private feedHello(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.helloBytes += chunk.length;
    if (this.helloParser === null) return;
    const result = this.helloParser.push(chunk);
    if (result.kind === "need-more") return;
    if (result.kind === "reject") return this.refuse(`hello:${result.reason}`);
    if (result.hostName === null) return this.refuse("no-sni");
    this.helloParser = null;
    const name = normaliseServerName(result.hostName);
    if (!name.ok) return this.refuse(`sni:${name.reason}`);
    this.sni = name.name;
    const snapshot = this.ctx.snapshot();
    const backendName = (snapshot.listeners.get(this.listener.config.name) ?? this.listener).routes.lookup(name.name);
    const pool = backendName === null ? undefined : snapshot.backends.get(backendName);
    if (pool === undefined) return this.refuse("unknown-sni");
    this.startConnect(snapshot, pool.name);
  }

  private startConnect(snapshot: RuntimeSnapshot, backendName: string): void {
    this.clearDeadline();
    // Stop reading: the kernel's receive window is the buffer until the server is there.
    this.socket.pause();
    if (this.early !== null) this.socket.removeListener("data", this.early.data);
    this.phase = "connect";
    this.backend = backendName;
    this.ctx.counters.add(backendKey(backendName), 1);
    this.connectStart = performance.now();
    const pool = snapshot.backends.get(backendName)!;
    this.attempt = connectToBackend(
      pool,
      (server) => (this.server = server),
      (outcome) => this.onConnected(snapshot, outcome),
    );
  }

  private onConnected(snapshot: RuntimeSnapshot, outcome: ConnectOutcome): void {
    this.attempt = null;
    this.retries = outcome.retries;
    this.server = outcome.server;
    if (this.phase !== "connect") {
      if (outcome.ok) outcome.socket.destroy();
      return;
    }
    if (!outcome.ok) {
      this.reason = `connect:${outcome.error}`;
      this.socket.destroy();
      return this.finish(outcome.timedOut ? "s" : "S", "C");
    }
    this.connected = true;
    this.Tc = Math.round(performance.now() - this.connectStart);
    this.ctx.counters.add(serverKey(this.backend!, outcome.server.name), 1);
    const backend = snapshot.backends.get(this.backend!)!.config;
    const header = backend.sendProxyV2
      ? encodeProxyV2({
          command: "proxy",
          source: this.client,
          destination: this.frontend,
          ...(backend.authorityTlv && this.sni !== null ? { authority: this.sni } : {}),
        })
      : Buffer.alloc(0);
    if (this.early !== null) {
      this.socket.removeListener("end", this.early.end);
      this.socket.removeListener("error", this.early.error);
      this.socket.removeListener("close", this.early.close);
      this.early = null;
    }
    this.phase = "tunnel";
    this.tunnel = new Tunnel(this.socket, outcome.socket, snapshot.config.timeouts, (end) =>
      this.finish(TUNNEL_END[end], end === "normal" ? "-" : "D"),
    );
    this.tunnel.start(Buffer.concat([header, ...this.chunks]), this.helloBytes, this.clientEnded);
    this.chunks = [];
  }

  /** No route or bad input: the listener's action, never a default backend. */
  private refuse(reason: string): void {
    this.reason = reason;
    const action = this.listener.config.onNoMatch;
    if (action.action === "reject") {
      this.socket.resetAndDestroy();
      return this.finish("P", "R");
    }
    if (action.holdUntilInspectDeadline && this.deadline !== null && this.ctx.hold(action.maxHeld)) {
      this.phase = "hold";
      this.chunks = [];
      return;
    }
    this.socket.destroy();
    this.finish("P", "R");
  }

  private onInspectDeadline(): void {
    this.deadline = null;
    if (this.phase === "hold") {
      this.socket.destroy();
      return this.finish("P", "R");
    }
    this.reason = "inspect-timeout";
    if (this.listener.config.onNoMatch.action === "reject") this.socket.resetAndDestroy();
    else this.socket.destroy();
    this.finish("c", "R");
  }

  private onEarlyEnd(): void {
    // A FIN right behind a complete hello (`printf ... | nc`) is passed on once the tunnel is up.
    if (this.phase === "connect") {
      this.clientEnded = true;
      return;
    }
    // A FIN before the hello is complete: there is nothing to route.
    this.reason ??= "client-closed";
    this.socket.destroy();
    this.finish(this.phase === "hold" ? "P" : "C", "R");
  }

  private onEarlyError(): void {
    this.attempt?.abort();
    this.socket.destroy();
  }

  private onEarlyClose(): void {
    this.attempt?.abort();
    this.reason ??= "client-closed";
    this.finish(this.phase === "hold" ? "P" : "C", this.phase === "connect" ? "C" : "R");
  }

  private clearDeadline(): void {
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = null;
  }

  private finish(cause: TerminationCause, phase: SessionPhase): void {
    if (this.phase === "done") return;
    if (cause === "I") this.reason = "worker-crash";
    if (this.phase === "hold") this.ctx.unhold();
    this.phase = "done";
    this.clearDeadline();
    const { counters, logger } = this.ctx;
    const feconn = counters.get(frontendKey(this.listener.config.name));
    const beconn = this.backend === null ? 0 : counters.get(backendKey(this.backend));
    const srvKey = this.backend !== null && this.server !== null ? serverKey(this.backend, this.server.name) : null;
    const srvConn = srvKey === null ? 0 : counters.get(srvKey);
    logger.connection({
      clientIp: this.client.address,
      clientPort: this.client.port,
      acceptDate: new Date(this.acceptedEpochMs),
      frontend: this.listener.config.name,
      backend: this.backend ?? this.listener.config.name,
      server: this.server?.name ?? "<NOSRV>",
      Tw: this.backend === null ? -1 : 0,
      Tc: this.Tc,
      Tt: Math.round(performance.now() - this.acceptedAt),
      bytesRead: this.tunnel?.bytesDown ?? 0,
      bytesUploaded: this.tunnel?.bytesUp ?? 0,
      terminationState: terminationState(cause, phase),
      actconn: counters.actconn,
      feconn,
      beconn,
      srvConn,
      retries: this.retries,
      srvQueue: 0,
      backendQueue: 0,
      sni: this.sni,
      reason: this.reason,
    });
    const up = this.tunnel?.bytesUp ?? 0;
    const down = this.tunnel?.bytesDown ?? 0;
    counters.count(frontendKey(this.listener.config.name), up, down);
    if (this.backend !== null) counters.count(backendKey(this.backend), up, down);
    if (this.connected && srvKey !== null) counters.count(srvKey, up, down);
    counters.actconn--;
    counters.add(frontendKey(this.listener.config.name), -1);
    if (this.backend !== null) counters.add(backendKey(this.backend), -1);
    if (this.connected && srvKey !== null) counters.add(srvKey, -1);
    this.ctx.closed(this);
  }
}
