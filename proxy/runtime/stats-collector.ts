/**
 * Asks every worker for its counters and waits for the answers, at most
 * STATS_WAIT_MS: a busy or respawning worker makes the page a little
 * incomplete rather than late. Nothing is sent on the connection path.
 */
import { WorkerStats } from "../engine/worker-stats";

const STATS_WAIT_MS = 500;

export class StatsCollector {
  private nextId = 1;
  private readonly pending = new Map<number, { got: WorkerStats[]; expected: number; done: () => void }>();

  /** `ask(id)` posts the request to every worker and returns how many were asked. */
  async collect(ask: (id: number) => number): Promise<WorkerStats[]> {
    const id = this.nextId++;
    const got: WorkerStats[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), STATS_WAIT_MS);
      const finish = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve();
      };
      this.pending.set(id, { got, expected: Number.POSITIVE_INFINITY, done: finish });
      const expected = ask(id);
      const entry = this.pending.get(id);
      if (entry === undefined) return;
      entry.expected = expected;
      if (got.length >= expected) finish();
    });
    return got;
  }

  answer(id: number, stats: WorkerStats): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    entry.got.push(stats);
    if (entry.got.length >= entry.expected) entry.done();
  }
}
