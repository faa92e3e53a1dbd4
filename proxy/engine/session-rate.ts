/**
 * HAProxy's `rate-limit sessions N` on a listener: at most N new sessions per
 * second; the excess is not refused but waits (HAProxy stops accepting and
 * leaves it in the backlog). Here the accepted socket waits, paused, in a
 * bounded queue and is served in a later second; past the bound it is closed.
 */
import net from "node:net";

export class SessionRate {
  private second = 0;
  private used = 0;
  private readonly queue: net.Socket[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private perSecond: number,
    private readonly maxQueued: number,
    private readonly serve: (socket: net.Socket) => void,
  ) {}

  update(perSecond: number): void {
    this.perSecond = perSecond;
  }

  admit(socket: net.Socket): void {
    if (this.queue.length === 0 && this.take()) return this.serve(socket);
    if (this.queue.length >= this.maxQueued) {
      socket.destroy();
      return;
    }
    socket.pause();
    this.queue.push(socket);
    this.arm();
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    for (const socket of this.queue.splice(0)) socket.destroy();
  }

  private take(now: number = Date.now()): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.second) [this.second, this.used] = [second, 0];
    if (this.used >= this.perSecond) return false;
    this.used++;
    return true;
  }

  private arm(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      while (this.queue.length > 0 && this.take()) {
        const socket = this.queue.shift()!;
        if (!socket.destroyed) this.serve(socket);
      }
      if (this.queue.length > 0) this.arm();
    }, 1000 - (Date.now() % 1000) + 1);
  }
}
