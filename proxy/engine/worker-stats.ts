/** One http-redirect listener's requests: redirected, sent on as ACME challenges, refused. */
export interface RedirectTotals {
  name: string;
  requests: number;
  redirects: number;
  challenges: number;
  errors: number;
}

/** What one worker reports for the stats page; the primary adds the workers' reports up. */
export interface WorkerStats {
  /** Per counter key (fe:, be:, srv:): live sessions and totals since start. */
  readonly counters: readonly { key: string; current: number; sessions: number; bytesIn: number; bytesOut: number }[];
  /** Connections refused by each listener's rate limit. */
  readonly rateLimited: Readonly<Record<string, number>>;
  /** Connections each listener refused at maxconn (its own or the process's). */
  readonly maxconnRefused: Readonly<Record<string, number>>;
  readonly redirects: readonly RedirectTotals[];
  /** Connections held open after a refusal (drop with holdUntilInspectDeadline). */
  readonly held: number;
}

export function sumWorkerStats(reports: readonly WorkerStats[]): WorkerStats {
  const counters = new Map<string, { key: string; current: number; sessions: number; bytesIn: number; bytesOut: number }>();
  const rateLimited: Record<string, number> = {};
  const maxconnRefused: Record<string, number> = {};
  const redirects = new Map<string, RedirectTotals>();
  let held = 0;
  for (const r of reports) {
    for (const c of r.counters) {
      const t = counters.get(c.key) ?? { key: c.key, current: 0, sessions: 0, bytesIn: 0, bytesOut: 0 };
      t.current += c.current;
      t.sessions += c.sessions;
      t.bytesIn += c.bytesIn;
      t.bytesOut += c.bytesOut;
      counters.set(c.key, t);
    }
    for (const [k, v] of Object.entries(r.rateLimited)) rateLimited[k] = (rateLimited[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.maxconnRefused)) maxconnRefused[k] = (maxconnRefused[k] ?? 0) + v;
    for (const x of r.redirects) {
      const t = redirects.get(x.name) ?? { name: x.name, requests: 0, redirects: 0, challenges: 0, errors: 0 };
      t.requests += x.requests;
      t.redirects += x.redirects;
      t.challenges += x.challenges;
      t.errors += x.errors;
      redirects.set(x.name, t);
    }
    held += r.held;
  }
  return { counters: [...counters.values()], rateLimited, maxconnRefused, redirects: [...redirects.values()], held };
}
