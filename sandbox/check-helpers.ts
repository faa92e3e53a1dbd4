// Shared pieces of the end-to-end checks: what a check is, curl through the LB, and waiting on
// the LB's view of server health.
import type { RoutingRow } from "../topology";
import { pollUntil } from "../lab/command";
import type { HaproxyServerState } from "../lab/haproxy-stats";
import type { IngressSandbox } from "./ingress-sandbox";
import type { Netns } from "../lab/netns";

export interface IngressCheck {
  readonly name: string;
  /** Returns a one-line account of what it saw; throws when the check fails. */
  run(s: IngressSandbox): Promise<string>;
}

export interface CheckResult {
  readonly name: string;
  readonly status: "pass" | "fail";
  readonly detail: string;
  readonly ms: number;
}

interface CurlResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

export async function curl(from: Netns, args: readonly string[], maxTimeS = 3): Promise<CurlResult> {
  const r = await from.exec(["curl", "-sS", "--max-time", String(maxTimeS), ...args], { allowFailure: true, timeoutMs: maxTimeS * 1000 + 3000 });
  return { code: r.code, out: r.stdout, err: r.stderr.trim() };
}

/** GET https://<hostname>/ through the LB, as the printed instructions do it. */
export async function curlThroughLb(from: Netns, hostname: string, lbAddress: string): Promise<CurlResult & { status: number; body: string }> {
  const ip = lbAddress.includes(":") ? `[${lbAddress}]` : lbAddress;
  const r = await curl(from, ["-k", "-g", "--resolve", `${hostname}:443:${ip}`, "-w", "\n%{http_code}", `https://${hostname}/`]);
  const cut = r.out.lastIndexOf("\n");
  return { ...r, status: Number(r.out.slice(cut + 1)) || 0, body: r.out.slice(0, Math.max(cut, 0)) };
}

export function rowState(states: readonly HaproxyServerState[], row: RoutingRow): HaproxyServerState | undefined {
  return states.find((st) => st.backend === row.backend && st.server === row.server);
}

/** Waits until every row satisfies `ok`; returns the time it took. */
export async function waitRows(s: IngressSandbox, rows: readonly RoutingRow[], ok: (st: HaproxyServerState) => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let last: HaproxyServerState[] = [];
  try {
    await pollUntil(
      "server states",
      async () => {
        last = await s.serverStates();
        return rows.every((r) => {
          const st = rowState(last, r);
          return st !== undefined && ok(st);
        })
          ? true
          : undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
  } catch {
    const seen = rows.map((r) => `${r.backend}/${r.server}=${rowState(last, r)?.status}/${rowState(last, r)?.checkStatus}`);
    throw new Error(`not reached within ${timeoutMs} ms: ${seen.join(", ")}`);
  }
  return Date.now() - t0;
}

export const isUp = (st: HaproxyServerState): boolean => st.status === "UP" && st.checkStatus === "L7OK";

export function uniqueServers(rows: readonly RoutingRow[]): RoutingRow[] {
  return rows.filter((r, i) => rows.findIndex((x) => x.backend === r.backend) === i);
}

/** `text` as a regular expression that matches exactly it. */
export const re = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
