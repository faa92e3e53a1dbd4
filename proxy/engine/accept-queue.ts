/**
 * Connections accepted past maxconn wait here, unread, for a place to free up or their
 * deadline (the listener's inspect or request timeout), whichever comes first. A full listener
 * normally stops accepting (net/pausable-listener.ts) and what follows waits in the kernel's
 * backlog, as with HAProxy; this queue takes what is accepted anyway: every connection past
 * maxconn where listeners cannot pause, those a reload's lower limit finds, and whatever a
 * libuv that accepts in batches takes after the pause. It is bounded, so file descriptors are:
 * past its capacity a connection is reset at once.
 */
import type net from "node:net";

interface Waiting<T> {
  readonly socket: net.Socket;
  readonly item: T;
  readonly deadlineAt: number;
  timer: NodeJS.Timeout;
}

export class AcceptQueue<T> {
  private readonly waiting: Waiting<T>[] = [];

  constructor(
    private readonly capacity: number,
    /** A connection reset because its deadline came before a place did. */
    private readonly onExpire: (item: T) => void = () => undefined,
  ) {}

  get size(): number {
    return this.waiting.length;
  }

  /**
   * Queues `socket` until `deadlineAt` (ms since the epoch), then resets it. `front`: a
   * connection that had its turn and found no place keeps its turn. False when full.
   */
  add(socket: net.Socket, item: T, deadlineAt: number, front = false): boolean {
    if (this.waiting.length >= this.capacity || socket.destroyed) return false;
    const entry: Waiting<T> = {
      socket,
      item,
      deadlineAt,
      timer: setTimeout(() => {
        this.remove(entry);
        socket.resetAndDestroy();
        this.onExpire(item);
      }, Math.max(0, deadlineAt - Date.now())),
    };
    socket.once("close", () => this.remove(entry));
    socket.on("error", () => undefined);
    if (front) this.waiting.unshift(entry);
    else this.waiting.push(entry);
    return true;
  }

  /**
   * The longest-waiting open connection that `admissible` lets in, out of the queue; undefined
   * if none. Per item, so one listener at its own limit does not hold up another's connections.
   */
  take(admissible: (item: T) => boolean): { readonly socket: net.Socket; readonly item: T; readonly deadlineAt: number } | undefined {
    for (let i = 0; i < this.waiting.length; ) {
      const entry = this.waiting[i]!;
      if (entry.socket.destroyed) {
        this.waiting.splice(i, 1);
        clearTimeout(entry.timer);
        continue;
      }
      if (admissible(entry.item)) {
        this.waiting.splice(i, 1);
        clearTimeout(entry.timer);
        return entry;
      }
      i++;
    }
    return undefined;
  }

  /** Drain: nothing waiting will get a place. */
  closeAll(): void {
    for (const entry of this.waiting.splice(0)) {
      clearTimeout(entry.timer);
      entry.socket.destroy();
    }
  }

  private remove(entry: Waiting<T>): void {
    const i = this.waiting.indexOf(entry);
    if (i >= 0) this.waiting.splice(i, 1);
    clearTimeout(entry.timer);
  }
}
