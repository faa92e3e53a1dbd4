/**
 * One worker's proxy: its listening sockets, live sessions and the current
 * config snapshot. Reload swaps the snapshot and opens/closes only the binds
 * that changed; live sessions are never touched. Drain stops accepting,
 * waits up to a grace period, then ends what is left.
 */
import net from "node:net";
import { canonicalIP } from "../codec/ip-address";
import { ProxyConfig } from "../../contract/proxy-config";
import { RedirectServer } from "../http/redirect";
import { Logger } from "../log/logger";
import { listen as listenOn, Listening, ListenMode } from "../net/pausable-listener";
import { RateBuffers, rateBuffersFor } from "../ratelimit/rate-buffers";
import { Session, SessionContext } from "../session/session";
import { AcceptQueue } from "./accept-queue";
import { Admission } from "./admission";
import { Counters, frontendKey } from "./counters";
import { buildSnapshot, RateLimiter, RuntimeSnapshot } from "./runtime-snapshot";
import { SessionRate } from "./session-rate";
import { WorkerStats } from "./worker-stats";

export interface EngineOptions {
  /** Workers sharing the configured maxconn limits; each enforces its share. */
  readonly workerCount: number;
  /** Ask the kernel to spread connections over workers' own sockets (Node >= 22.12). */
  readonly reusePort: boolean;
  /** Rate tables shared with the other workers (threads); absent: this engine allocates private ones. */
  readonly rateBuffers?: RateBuffers;
  /** At most one refusal warning per kind and listener this often (tests shorten it). */
  readonly warnEveryMs?: number;
  /**
   * Default true: at maxconn a listener stops accepting and new connections wait in the
   * kernel's backlog. False (or a Node without the internals that takes): they are accepted
   * and wait unread, up to a bound, then are reset.
   */
  readonly pauseListeners?: boolean;
}

interface Binding {
  readonly key: string;
  readonly server: net.Server;
  readonly listening: Listening;
  listener: string;
}

const bindKey = (address: string, port: number) => `${address}|${port}`;

/** Bound on held refused connections where the config names none (the http-redirect listener). */
const DEFAULT_MAX_HELD = 1024;

export class Engine {
  private snapshot: RuntimeSnapshot;
  private readonly cursors = new Map<string, { value: number }>();
  /** Servers the primary's health checks hold DOWN; the pools read it on every pick. */
  private readonly down = new Set<string>();
  private rateBuffers: RateBuffers;
  private readonly redirectServers = new Map<string, { http: RedirectServer; rate: SessionRate | null }>();
  private readonly admission: Admission;
  private readonly bindings = new Map<string, Binding>();
  private readonly sessions = new Set<Session>();
  readonly counters = new Counters();
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  /** Connections accepted past maxconn, waiting for a place until their listener's deadline. */
  private readonly waiting: AcceptQueue<Binding>;
  /** The last mode logged: said once, and again only if a bind comes out otherwise. */
  private loggedMode: string | null = null;

  constructor(
    config: ProxyConfig,
    private readonly logger: Logger,
    private readonly options: EngineOptions,
  ) {
    this.admission = new Admission(logger, this.counters, options.workerCount, options.warnEveryMs);
    // At most as many waiting as this worker may hold: the fds stay bounded.
    this.waiting = new AcceptQueue(Math.ceil(config.global.maxconn / options.workerCount), (binding) => this.admission.refusedAtMaxconn(binding.listener));
    this.sessionContext = this.makeContext();
    this.rateBuffers = options.rateBuffers ?? rateBuffersFor(config, new Map(), false);
    this.snapshot = this.build(config);
  }

  private build(config: ProxyConfig): RuntimeSnapshot {
    return buildSnapshot(config, { cursors: this.cursors, down: this.down, rateBuffers: this.rateBuffers, workerCount: this.options.workerCount });
  }

  /** The primary's health view: these servers are skipped until they come back. */
  setDownServers(ids: readonly string[]): void {
    this.down.clear();
    for (const id of ids) this.down.add(id);
  }

  stats(): WorkerStats {
    const counters = [...this.counters.keys()].map((key) => ({ key, current: this.counters.get(key), ...(this.counters.totals.get(key) ?? { sessions: 0, bytesIn: 0, bytesOut: 0 }) }));
    const redirects = [...this.redirectServers].map(([name, r]) => ({ name, ...r.http.counters }));
    return { counters, rateLimited: Object.fromEntries(this.admission.rateLimited), maxconnRefused: Object.fromEntries(this.admission.maxconnRefused), redirects, held: this.admission.held };
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Every connection this worker holds: sessions, port-80 requests, held refusals. */
  get liveConnections(): number {
    return this.counters.actconn + this.admission.held;
  }

  /** Addresses actually bound (port 0 resolved), for tests and logs. */
  boundAddresses(): { listener: string; address: string; port: number }[] {
    return [...this.bindings.values()].map((b) => {
      const address = b.server.address() as net.AddressInfo;
      return { listener: b.listener, address: address.address, port: address.port };
    });
  }

  async start(): Promise<void> {
    await this.applyBinds(this.snapshot.config, true);
    this.syncListening();
  }

  async reload(config: ProxyConfig, rateBuffers?: RateBuffers): Promise<void> {
    this.rateBuffers = rateBuffers ?? rateBuffersFor(config, this.rateBuffers, false);
    this.snapshot = this.build(config);
    await this.applyBinds(config, false);
    // Limits may have moved either way.
    this.admitWaiting();
    this.logger.event("info", "config reloaded", {
      listeners: config.listeners.length,
      routes: config.routes.length,
      backends: config.backends.length,
      activeSessions: this.sessions.size,
    });
  }

  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.admission.draining = true;
    await Promise.all([...this.bindings.values()].map((b) => closeServer(b.server)));
    this.bindings.clear();
    for (const r of this.redirectServers.values()) {
      r.rate?.close();
      r.http.close();
    }
    this.logger.event("info", "draining", { activeSessions: this.sessions.size, graceMs });
    if (this.sessions.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const left = [...this.sessions];
    for (const session of left) session.kill();
    this.admission.closeHeld();
    this.waiting.closeAll();
    this.admission.flushWarnings();
    this.logger.event("info", "drained", { killed: left.length });
  }

  /**
   * The worker is going down with an error: every connection it holds is cut now, each with
   * its line (termination I, reason worker-crash), so none ends without one. The count cut.
   */
  abortAll(): number {
    this.draining = true;
    this.admission.draining = true;
    const cut = [...this.sessions];
    for (const session of cut) session.kill("I");
    this.admission.closeHeld();
    this.waiting.closeAll();
    this.admission.flushWarnings();
    return cut.length;
  }

  private async applyBinds(config: ProxyConfig, failHard: boolean): Promise<void> {
    const wanted = new Map<string, { listener: string; address: string; port: number }>();
    this.syncRedirectServers(config);
    for (const listener of config.listeners) {
      for (const bind of listener.binds) wanted.set(bindKey(bind.address, bind.port), { listener: listener.name, ...bind });
    }
    for (const [key, binding] of this.bindings) {
      if (wanted.has(key)) continue;
      this.bindings.delete(key);
      // Closing the listening socket leaves accepted connections alone.
      await closeServer(binding.server);
    }
    for (const [key, want] of wanted) {
      const existing = this.bindings.get(key);
      if (existing) {
        existing.listener = want.listener;
        continue;
      }
      try {
        await this.listen(key, want.listener, want.address, want.port);
      } catch (error) {
        const message = `cannot bind ${want.address}:${want.port} for listener ${want.listener}: ${(error as Error).message}`;
        if (failHard) throw new Error(message);
        this.logger.event("error", message);
      }
    }
  }

  private async listen(key: string, listener: string, address: string, port: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false });
    const spec = { host: address, port, ipv6Only: address.includes(":"), reusePort: this.options.reusePort, backlog: 511 };
    const listening = await listenOn(server, spec, this.options.pauseListeners ?? true);
    const binding: Binding = { key, server, listening, listener };
    server.on("connection", (socket) => {
      this.accept(binding, socket);
      // Full now: the next connection stays in the kernel's backlog.
      this.syncListening();
    });
    server.on("error", (error) => this.logger.event("error", "listener error", { listener: binding.listener, error: error.message }));
    this.bindings.set(key, binding);
    this.logMode(listening.mode);
  }

  private logMode(mode: ListenMode): void {
    const said = mode.pausable ? "pause" : `accept: ${mode.reason}`;
    if (said === this.loggedMode) return;
    this.loggedMode = said;
    if (mode.pausable) this.logger.event("info", "at maxconn a listener stops accepting: new connections wait in the kernel backlog");
    else this.logger.event("info", "at maxconn new connections are accepted and wait unread for a place: listeners cannot pause here", { reason: mode.reason });
  }

  private syncRedirectServers(config: ProxyConfig): void {
    const seen = new Set<string>();
    for (const l of config.listeners) {
      if (l.mode !== "http-redirect") continue;
      seen.add(l.name);
      const existing = this.redirectServers.get(l.name);
      const perSecond = l.sessionsPerSecond === undefined ? undefined : Math.ceil(l.sessionsPerSecond / this.options.workerCount);
      if (existing) {
        existing.http.update(l);
        if (perSecond !== undefined) existing.rate?.update(perSecond);
        else {
          existing.rate?.close();
          existing.rate = null;
        }
      }
      const entry = existing ?? { http: new RedirectServer(l, (host) => this.challengeTarget(host)), rate: null };
      if (perSecond !== undefined && entry.rate === null) entry.rate = new SessionRate(perSecond, 1024, (socket) => entry.http.handle(socket));
      this.redirectServers.set(l.name, entry);
    }
    // A removed listener's live connections finish on their own; its parser just takes no new ones.
    for (const name of [...this.redirectServers.keys()]) if (!seen.has(name)) this.redirectServers.delete(name);
  }

  /**
   * The ACME responder of the server a routed name goes to (the first with one, as HAProxy's
   * `balance first`), as the TLS listeners route it now; "redirect" when its servers name none.
   */
  private challengeTarget(host: string): { address: string; port: number } | "redirect" | null {
    for (const listener of this.snapshot.listeners.values()) {
      const backend = listener.routes.lookup(host);
      if (backend === null) continue;
      const server = this.snapshot.backends.get(backend)?.config.servers.find((s) => s.acmePort !== undefined);
      return server?.acmePort !== undefined ? { address: server.address, port: server.acmePort } : "redirect";
    }
    return null;
  }

  /** `deadlineAt`: a connection coming back from the queue keeps the deadline it had. */
  private accept(binding: Binding, socket: net.Socket, deadlineAt?: number): void {
    const source = canonicalIP(socket.remoteAddress ?? "0.0.0.0");
    const redirect = this.snapshot.redirects.get(binding.listener);
    if (redirect !== undefined) return this.acceptRedirect(binding, redirect.config.maxconn, redirect.rate, socket, source, deadlineAt);
    const listener = this.snapshot.listeners.get(binding.listener);
    if (this.draining || listener === undefined) {
      socket.destroy();
      return;
    }
    // Accepted past maxconn (listeners cannot pause here, or a reload lowered the limit):
    // wait, unread, for a place until the inspect deadline. Counted, and reported one line
    // per window with exact counts.
    const admission = this.admission;
    if (admission.overMaxconn(listener.config.name, this.snapshot.config.global.maxconn, listener.config.maxconn)) {
      return this.wait(binding, socket, deadlineAt ?? Date.now() + listener.config.inspectTimeoutMs, deadlineAt !== undefined);
    }
    // A peer that sends a trusted PROXY header is another proxy; its clients are rated once the header is read.
    if (listener.trusted === null || !listener.trusted.has(source)) {
      const verdict = admission.overRate(listener.config.name, listener.rate, source);
      const onNoMatch = listener.config.onNoMatch;
      if (verdict !== null) return admission.refuse(socket, verdict, listener.config.inspectTimeoutMs, onNoMatch.action === "drop" ? onNoMatch.maxHeld : DEFAULT_MAX_HELD);
    }
    socket.on("error", () => undefined); // errors are handled per phase; never crash on a late one
    const session = new Session(this.sessionContext, socket, listener);
    if (!session.isDone) this.sessions.add(session);
  }

  private acceptRedirect(binding: Binding, maxconn: number | undefined, rate: RateLimiter | null, socket: net.Socket, source: string, deadlineAt?: number): void {
    const name = binding.listener;
    const server = this.redirectServers.get(name);
    if (this.draining || server === undefined) return void socket.destroy();
    const config = this.snapshot.redirects.get(name)?.config;
    if (this.admission.overMaxconn(name, this.snapshot.config.global.maxconn, maxconn)) {
      return this.wait(binding, socket, deadlineAt ?? Date.now() + (config?.requestTimeoutMs ?? 5000), deadlineAt !== undefined);
    }
    const verdict = this.admission.overRate(name, rate, source);
    if (verdict !== null) return this.admission.refuse(socket, verdict, config?.requestTimeoutMs ?? 5000, DEFAULT_MAX_HELD);
    socket.on("error", () => undefined);
    const key = frontendKey(name);
    this.counters.actconn++;
    this.counters.add(key, 1);
    socket.once("close", () => {
      this.counters.actconn--;
      this.counters.add(key, -1);
      this.counters.count(key, socket.bytesRead, socket.bytesWritten);
      this.admitWaiting();
    });
    if (server.rate !== null) server.rate.admit(socket);
    else server.http.handle(socket);
  }

  /** Accepted past maxconn: into the queue (the front for one that already had a turn), or reset when it is full. */
  private wait(binding: Binding, socket: net.Socket, deadlineAt: number, hadTurn: boolean): void {
    if (this.draining) return void socket.resetAndDestroy();
    if (Date.now() >= deadlineAt || !this.waiting.add(socket, binding, deadlineAt, hadTurn)) {
      socket.resetAndDestroy();
      this.admission.refusedAtMaxconn(binding.listener);
    } else if (!hadTurn) this.admission.waiting(binding.listener);
  }

  /**
   * A place freed up (or a reload moved the limits): connections already accepted go first,
   * longest-waiting first, each if its listener has room; then listeners with room accept again.
   */
  private admitWaiting(): void {
    if (this.draining) return;
    const fits = (b: Binding): boolean => this.hasRoom(b.listener);
    for (let next = this.waiting.take(fits); next !== undefined; next = this.waiting.take(fits)) this.accept(next.item, next.socket, next.deadlineAt);
    this.syncListening();
  }

  private hasRoom(listener: string): boolean {
    const maxconn = this.snapshot.redirects.get(listener)?.config.maxconn ?? this.snapshot.listeners.get(listener)?.config.maxconn;
    return this.admission.hasRoom(listener, this.snapshot.config.global.maxconn, maxconn);
  }

  /**
   * Every listener at its limit (all of them at the worker's share of global.maxconn) stops
   * accepting, as HAProxy's do; the others accept. Each pause is counted in a warning line.
   */
  private syncListening(): void {
    if (this.draining) return;
    const room = new Map<string, boolean>();
    const paused = new Set<string>();
    for (const binding of this.bindings.values()) {
      if (!binding.listening.mode.pausable) continue;
      const name = binding.listener;
      let fits = room.get(name);
      if (fits === undefined) room.set(name, (fits = this.hasRoom(name)));
      if (fits) binding.listening.resume();
      else if (binding.listening.pause()) paused.add(name);
    }
    for (const name of paused) this.admission.listenerPaused(name);
  }

  private readonly sessionContext: SessionContext;

  private makeContext(): SessionContext {
    return {
      snapshot: () => this.snapshot,
      counters: this.counters,
      logger: this.logger,
      closed: (s) => {
        this.sessions.delete(s);
        if (this.sessions.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        this.admitWaiting();
      },
      rateCheck: (listener, source) => this.admission.overRate(listener, this.snapshot.listeners.get(listener)?.rate ?? null, source),
      hold: (maxHeld) => this.admission.claimHold(maxHeld),
      unhold: () => this.admission.releaseHold(),
    };
  }
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    // close() calls back only once every accepted connection is gone; we only want the socket closed.
    server.close();
    setImmediate(resolve);
  });
}
