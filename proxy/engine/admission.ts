/**
 * Whether a new connection may start, and what happens to one that may not:
 * maxconn (this worker's share), the per-source rate limit, and the bounded
 * set of refused connections held open until their deadline. Warnings are
 * rate-limited too: a flood must not turn into a flood of log lines.
 */
import net from "node:net";
import { Logger } from "../log/logger";
import { Counters, frontendKey } from "./counters";
import { RateLimiter } from "./runtime-snapshot";

const WARN_EVERY_MS = 10_000;

export class Admission {
  /** Refused connections held open (read and discarded) until their deadline, sessions in "hold" included. */
  held = 0;
  readonly rateLimited = new Map<string, number>();
  private readonly heldSockets = new Set<net.Socket>();
  private refusedAtLimit = 0;
  private limitWarnedAt = 0;
  private rateWarnedAt = 0;
  private rateSinceWarn = 0;
  draining = false;

  constructor(
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly workerCount: number,
  ) {}

  /** Claims one of the held-connection places; false when they are all taken. */
  claimHold(maxHeld: number): boolean {
    if (this.held >= maxHeld || this.draining) return false;
    this.held++;
    return true;
  }

  releaseHold(): void {
    this.held--;
  }

  /** Drain: held connections have nothing to finish. */
  closeHeld(): void {
    for (const socket of this.heldSockets) socket.destroy();
  }

  /** Counts the connection in the listener's rate table; the action when the source is over its limit. */
  overRate(listener: string, rate: RateLimiter | null, source: string): "drop" | "reject" | null {
    if (rate === null) return null;
    if (rate.table.hit(source) < rate.limit) return null;
    this.rateLimited.set(listener, (this.rateLimited.get(listener) ?? 0) + 1);
    // One line per 10 s at most: a flood must not turn into a flood of log lines.
    this.rateSinceWarn++;
    const now = Date.now();
    if (now - this.rateWarnedAt >= WARN_EVERY_MS) {
      this.logger.event("warn", "rate limit: refusing connections", { listener, source, refused: this.rateSinceWarn, action: rate.action });
      this.rateWarnedAt = now;
      this.rateSinceWarn = 0;
    }
    return rate.action;
  }

  /**
   * drop: no byte goes back. Closing at once would often send a RST (the hello is already in
   * the kernel's buffer, unread), which tells a flooder to retry right away; HAProxy's
   * silent-drop leaves it waiting instead. Node cannot make the kernel forget a socket, so the
   * next best: keep reading and discarding until `holdMs`, then close. Held sockets cost a file
   * descriptor and a little memory each, so at most `maxHeld` per worker; past that, close now.
   */
  refuse(socket: net.Socket, how: "drop" | "reject", holdMs: number, maxHeld: number): void {
    if (how === "reject") return void socket.resetAndDestroy();
    if (!this.claimHold(maxHeld)) return void socket.destroy();
    this.heldSockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    socket.on("end", () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), holdMs);
    socket.once("close", () => {
      clearTimeout(timer);
      this.heldSockets.delete(socket);
      this.releaseHold();
    });
  }

  /** Whether one more connection of `listener` fits this worker's share of both limits. */
  hasRoom(listener: string, globalMaxconn: number, maxconn: number | undefined): boolean {
    const share = (limit: number) => Math.ceil(limit / this.workerCount);
    const listenerLimit = maxconn === undefined ? Infinity : share(maxconn);
    return this.counters.actconn < share(globalMaxconn) && this.counters.get(frontendKey(listener)) < listenerLimit;
  }

  overMaxconn(listener: string, globalMaxconn: number, maxconn: number | undefined): boolean {
    if (this.hasRoom(listener, globalMaxconn, maxconn)) return false;
    this.refusedAtLimit++;
    const now = Date.now();
    if (now - this.limitWarnedAt >= WARN_EVERY_MS) {
      this.logger.event("warn", "maxconn reached, closing new connections", { listener, refused: this.refusedAtLimit });
      this.limitWarnedAt = now;
      this.refusedAtLimit = 0;
    }
    return true;
  }
}
