/**
 * One worker's proxy: its listening sockets, live sessions and the current
 * config snapshot. Reload swaps the snapshot and opens/closes only the binds
 * that changed; live sessions are never touched. Drain stops accepting,
 * waits up to a grace period, then ends what is left.
 */
import net from "node:net";
import { ProxyConfig } from "../config/schema";
import { Logger } from "../log/logger";
import { Session } from "../session/session";
import { Counters, frontendKey } from "./counters";
import { buildSnapshot, RuntimeSnapshot } from "./runtime-snapshot";

export interface EngineOptions {
  /** Workers sharing the configured maxconn limits; each enforces its share. */
  readonly workerCount: number;
  /** Ask the kernel to spread connections over workers' own sockets (Node >= 22.12). */
  readonly reusePort: boolean;
}

interface Binding {
  readonly key: string;
  readonly server: net.Server;
  listener: string;
}

const bindKey = (address: string, port: number) => `${address}|${port}`;

export class Engine {
  private snapshot: RuntimeSnapshot;
  private readonly cursors = new Map<string, { value: number }>();
  private readonly bindings = new Map<string, Binding>();
  private readonly sessions = new Set<Session>();
  readonly counters = new Counters();
  private draining = false;
  private refusedAtLimit = 0;
  private limitWarnedAt = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    config: ProxyConfig,
    private readonly logger: Logger,
    private readonly options: EngineOptions,
  ) {
    this.snapshot = buildSnapshot(config, this.cursors);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Addresses actually bound (port 0 resolved), for tests and logs. */
  boundAddresses(): { listener: string; address: string; port: number }[] {
    return [...this.bindings.values()].map((b) => {
      const address = b.server.address() as net.AddressInfo;
      return { listener: b.listener, address: address.address, port: address.port };
    });
  }

  async start(): Promise<void> {
    this.warnUnimplemented(this.snapshot.config);
    await this.applyBinds(this.snapshot.config, true);
  }

  async reload(config: ProxyConfig): Promise<void> {
    this.snapshot = buildSnapshot(config, this.cursors);
    this.warnUnimplemented(config);
    await this.applyBinds(config, false);
    this.logger.event("info", "config reloaded", {
      listeners: config.listeners.length,
      routes: config.routes.length,
      backends: config.backends.length,
      activeSessions: this.sessions.size,
    });
  }

  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    await Promise.all([...this.bindings.values()].map((b) => closeServer(b.server)));
    this.bindings.clear();
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
    this.logger.event("info", "drained", { killed: left.length });
  }

  private warnUnimplemented(config: ProxyConfig): void {
    const pending = [
      ...config.listeners.filter((l) => l.mode !== "tls-passthrough").map((l) => `listener ${l.name} (${l.mode})`),
      ...config.listeners.filter((l) => l.rateLimit !== undefined).map((l) => `rateLimit on ${l.name}`),
      ...config.backends.filter((b) => b.healthCheck !== undefined).map((b) => `healthCheck on ${b.name}`),
      ...(config.stats ? ["stats"] : []),
    ];
    if (pending.length > 0) this.logger.event("warn", "config sections accepted but not implemented in this build", { pending });
  }

  private async applyBinds(config: ProxyConfig, failHard: boolean): Promise<void> {
    const wanted = new Map<string, { listener: string; address: string; port: number }>();
    for (const listener of config.listeners) {
      if (listener.mode !== "tls-passthrough") continue;
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

  private listen(key: string, listener: string, address: string, port: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false });
    const binding: Binding = { key, server, listener };
    server.on("connection", (socket) => this.accept(binding, socket));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: address, port, ipv6Only: address.includes(":"), backlog: 511, ...(this.options.reusePort ? { reusePort: true } : {}) }, () => {
        server.removeListener("error", reject);
        server.on("error", (error) => this.logger.event("error", "listener error", { listener: binding.listener, error: error.message }));
        this.bindings.set(key, binding);
        resolve();
      });
    });
  }

  private accept(binding: Binding, socket: net.Socket): void {
    const listener = this.snapshot.listeners.get(binding.listener);
    if (this.draining || listener === undefined) {
      socket.destroy();
      return;
    }
    const share = (limit: number) => Math.ceil(limit / this.options.workerCount);
    const globalLimit = share(this.snapshot.config.global.maxconn);
    const listenerLimit = listener.config.maxconn === undefined ? Infinity : share(listener.config.maxconn);
    if (this.counters.actconn >= globalLimit || this.counters.get(frontendKey(listener.config.name)) >= listenerLimit) {
      // Past maxconn: close at once, before reading a byte. Counted, and reported at most every 10 s.
      socket.resetAndDestroy();
      this.refusedAtLimit++;
      const now = Date.now();
      if (now - this.limitWarnedAt >= 10_000) {
        this.logger.event("warn", "maxconn reached, closing new connections", { listener: listener.config.name, refused: this.refusedAtLimit });
        this.limitWarnedAt = now;
        this.refusedAtLimit = 0;
      }
      return;
    }
    socket.on("error", () => undefined); // errors are handled per phase; never crash on a late one
    const session = new Session(
      {
        snapshot: () => this.snapshot,
        counters: this.counters,
        logger: this.logger,
        closed: (s) => {
          this.sessions.delete(s);
          if (this.sessions.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        },
      },
      socket,
      listener,
    );
    if (!session.isDone) this.sessions.add(session);
  }
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    // close() calls back only once every accepted connection is gone; we only want the socket closed.
    server.close();
    setImmediate(resolve);
  });
}
