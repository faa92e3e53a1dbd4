/** Totals since start, for the stats page. */
export interface Totals {
  sessions: number;
  /** Client to server. */
  bytesIn: number;
  /** Server to client. */
  bytesOut: number;
}

/** Live connection counts for the log's %ac/%fc/%bc/%sc, and totals for stats; kept across reloads (keyed by name). */
export class Counters {
  actconn = 0;
  private readonly counts = new Map<string, number>();
  readonly totals = new Map<string, Totals>();

  /** One finished session of `key` (a frontend, backend or server key). */
  count(key: string, bytesIn: number, bytesOut: number): void {
    const t = this.totals.get(key) ?? { sessions: 0, bytesIn: 0, bytesOut: 0 };
    t.sessions++;
    t.bytesIn += bytesIn;
    t.bytesOut += bytesOut;
    this.totals.set(key, t);
  }

  /** Every key with a live count or a total. */
  keys(): string[] {
    return [...new Set([...this.counts.keys(), ...this.totals.keys()])];
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: string, delta: number): number {
    const next = this.get(key) + delta;
    if (next === 0) this.counts.delete(key);
    else this.counts.set(key, next);
    return next;
  }
}

export const frontendKey = (listener: string) => `fe:${listener}`;
export const backendKey = (backend: string) => `be:${backend}`;
export const serverKey = (backend: string, server: string) => `srv:${backend}/${server}`;
