/**
 * Whether a new connection may start, and what happens to one that may not:
 * maxconn (this worker's share), the per-source rate limit, and the bounded
 * set of refused connections held open until their deadline. Listeners
 * paused at maxconn are warned about here too. Warnings come
 * one line per window with exact counts (log/warning-window.ts): a flood must
 * not turn into a flood of log lines, nor into a count that is never written.
 */
import net from "node:net";
import { Logger } from "../log/logger";
import { WarningWindow } from "../log/warning-window";
import { Counters, frontendKey } from "./counters";
import { RateLimiter } from "./runtime-snapshot";

/** At most one warning line per this long for each kind of refusal. */
export const WARN_EVERY_MS = 10_000;

export class Admission {
  /** Refused connections held open (read and discarded) until their deadline, sessions in "hold" included. */
  held = 0;
  readonly rateLimited = new Map<string, number>();
  /** Connections reset at maxconn: accepted past it, then the wait queue was full or their deadline came first. */
  readonly maxconnRefused = new Map<string, number>();
  private readonly heldSockets = new Set<net.Socket>();
  /** Per kind and listener, so each line's count is that listener's. */
  private readonly warnings = new Map<string, WarningWindow>();
  draining = false;

  constructor(
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly workerCount: number,
    private readonly warnEveryMs = WARN_EVERY_MS,
  ) {}

  /** `counted`: the field the line's count goes in. */
  private warn(msg: string, listener: string, fields: Record<string, unknown>, counted = "refused"): void {
    const key = `${msg}\u0000${listener}`;
    let window = this.warnings.get(key);
    if (window === undefined) {
      window = new WarningWindow(this.warnEveryMs, (count, last) => this.logger.event("warn", msg, { listener, ...last, [counted]: count }));
      this.warnings.set(key, window);
    }
    window.add(fields);
  }

  /** Writes the refusals counted since each last warning line (drain). */
  flushWarnings(): void {
    for (const window of this.warnings.values()) window.flush();
  }

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
    this.warn("rate limit: refusing connections", listener, { source, action: rate.action });
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

  /** Whether the listener or the process is at maxconn. */
  overMaxconn(listener: string, globalMaxconn: number, maxconn: number | undefined): boolean {
    return !this.hasRoom(listener, globalMaxconn, maxconn);
  }

  /**
   * The listener stopped accepting at maxconn (its own, or the worker's share of the global
   * one): what comes now waits in the kernel's backlog, unseen and not reset. Counts pauses.
   */
  listenerPaused(listener: string): void {
    this.warn("maxconn reached, listener paused: new connections wait in the kernel backlog", listener, {}, "pauses");
  }

  /** A connection accepted past maxconn, queued (counted once, however often it is tried again). */
  waiting(listener: string): void {
    this.warn("maxconn reached, new connections wait for a place", listener, {});
  }

  /** A connection reset at maxconn: the wait queue was full, or its deadline came first. */
  refusedAtMaxconn(listener: string): void {
    this.maxconnRefused.set(listener, (this.maxconnRefused.get(listener) ?? 0) + 1);
    this.warn("maxconn reached, connections reset", listener, {});
  }

}
