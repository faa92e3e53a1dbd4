/** Live connection counts for the log's %ac/%fc/%bc/%sc, kept across reloads (keyed by name). */
export class Counters {
  actconn = 0;
  private readonly counts = new Map<string, number>();

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
