// The five workloads, each against whichever engine is running on the LB's port 443 (or the web
// server itself for `direct`): wrk for (a) new connections, (b) keep-alive, (c) bulk and (e)
// paced latency; a Node client holding (d) idle TLS connections while the engine's memory is read.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PollAbort, pollUntil, type Netns } from "../lab";
import { DIRECT_NAME, SITE, type RunningEngine } from "./bench-lab";
import { groupPids, residentKiB, startCpuWindow } from "./proc-meter";
import type { IdleSample, LatencySample, LoadSample } from "./results";

export interface WrkOutput {
  readonly requests: number;
  readonly seconds: number;
  readonly mibPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** wrk's summary: "N requests in 5.00s", Transfer/sec, --latency's percentiles, errors and non-2xx. */
export function parseWrk(out: string): WrkOutput {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (done === null) throw new Error(`wrk printed no summary:\n${out}`);
  const unit: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60 };
  const ms = (label: string): number => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 1e-3 : m[2] === "s" ? 1000 : 1);
  };
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  const scale: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests: Number(done[1]),
    seconds: Number(done[2]) * unit[done[3]!]!,
    mibPerSec: transfer ? Number(transfer[1]) * scale[transfer[2]!]! : NaN,
    p50Ms: ms("50"),
    p99Ms: ms("99"),
    errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0),
  };
}

export interface WorkloadContext {
  readonly client: Netns;
  readonly engine: RunningEngine;
  readonly seconds: number;
  readonly connections: number;
  /** A dir for wrk's scripts. */
  readonly dir: string;
}

const url = (engine: RunningEngine, path: string): string => (engine.name === "direct" ? `https://${DIRECT_NAME}${path}` : `https://${SITE}${path}`);

async function wrk(c: WorkloadContext, args: readonly string[], path: string): Promise<WrkOutput> {
  const argv = ["wrk", "-t", "1", "-d", `${c.seconds}s`, "--latency", "--timeout", "5s", ...args, url(c.engine, path)];
  const r = await c.client.exec(argv, { timeoutMs: (c.seconds + 30) * 1000 });
  return parseWrk(r.stdout);
}

/** A wrk run with the engine's CPU read around it. */
async function measured(c: WorkloadContext, args: readonly string[], path: string): Promise<LoadSample> {
  const stop = startCpuWindow(c.engine.process?.pid ?? null, c.engine.core);
  const out = await wrk(c, args, path);
  const cpu = stop();
  const per = (us: number | null): number | null => (us === null || out.requests === 0 ? null : us / out.requests);
  return {
    requests: out.requests,
    seconds: out.seconds,
    errors: out.errors,
    mibPerSec: out.mibPerSec,
    coreUsPerRequest: per(cpu.coreBusyUs),
    processUsPerRequest: per(cpu.processUs) ?? NaN,
    otherShare: cpu.coreTaskUs === null || cpu.coreBusyUs === null || cpu.coreBusyUs <= 0 ? null : Math.max(0, cpu.coreTaskUs - cpu.processUs) / cpu.coreBusyUs,
  };
}

/** (a) A new TCP and TLS connection per request. */
export const newConnections = (c: WorkloadContext): Promise<LoadSample> => measured(c, ["-c", String(c.connections), "-H", "Connection: close"], "/small");

/** (b) Small requests over kept-alive connections. */
export const keepAlive = (c: WorkloadContext): Promise<LoadSample> => measured(c, ["-c", String(c.connections)], "/small");

/** (c) The bulk file over one connection at a time. */
export const bulk = (c: WorkloadContext): Promise<LoadSample> => measured(c, ["-c", "1"], "/bulk");

/** (e) Paced: each of `connections` waits so the total is about `perSecond`; wrk's latency percentiles. */
export async function pacedLatency(c: WorkloadContext, perSecond: number): Promise<LatencySample> {
  const connections = 8;
  const script = join(c.dir, "paced.lua");
  writeFileSync(script, `-- each connection waits this long after each response\nfunction delay()\n  return ${Math.max(1, Math.round((connections * 1000) / perSecond))}\nend\n`);
  const out = await wrk(c, ["-c", String(connections), "-s", script], "/small");
  return { requests: out.requests, p50Ms: out.p50Ms, p99Ms: out.p99Ms, errors: out.errors };
}

/**
 * Opens `count` TLS connections (full handshakes, SNI set, a few at a time), prints "ready N"
 * once all are up and holds them until killed. A connection that fails is counted, not retried.
 */
const IDLE_CLIENT = `
const tls = require("node:tls");
const [host, name, count, parallel] = process.argv.slice(1).map((v, i) => (i < 2 ? v : Number(v)));
const held = [];
let started = 0, open = 0, failed = 0;
function next() {
  if (started >= count) return;
  started++;
  const s = tls.connect({ host, port: 443, servername: name, rejectUnauthorized: false });
  s.once("secureConnect", () => { open++; held.push(s); done(); });
  s.once("error", () => { failed++; done(); });
}
function done() {
  if (open + failed === count) console.log("ready " + open + " failed " + failed);
  next();
}
for (let i = 0; i < parallel; i++) next();
setInterval(() => {}, 1 << 30);
`;

/** (d) Resident memory of the engine's processes, fresh, then holding `count` idle TLS connections. */
export async function idleConnections(c: WorkloadContext, count: number, nodePath: string, host: string, settleMs = 5000): Promise<IdleSample> {
  const pgid = c.engine.process?.pid;
  if (pgid === undefined) throw new Error("the idle workload needs an engine");
  const rssBeforeKiB = await settledRss(pgid, settleMs);
  const client = await c.client.spawn(`idle-${c.engine.name}`, ["bash", "-c", 'ulimit -n "$(ulimit -Hn)" && exec "$@"', "_", nodePath, "-e", IDLE_CLIENT, host, SITE, String(count), "32"]);
  try {
    const ready = await pollUntil(
      `${count} idle connections through ${c.engine.name}`,
      async () => {
        const done = /ready (\d+) failed (\d+)/.exec(readFileSync(client.logPath, "utf8"));
        if (done === null && !client.running) throw new PollAbort(`the idle client exited: ${readFileSync(client.logPath, "utf8").slice(-1000)}`);
        return done ?? undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const open = Number(ready[1]);
    if (open !== count) throw new Error(`only ${open} of ${count} idle connections opened through ${c.engine.name} (${ready[2]} failed)`);
    const rssAfterKiB = await settledRss(pgid, settleMs);
    return { connections: open, rssBeforeKiB, rssAfterKiB };
  } finally {
    await client.stop({ graceMs: 1000 });
  }
}

/** Resident memory once it stops moving (a fresh engine settles its heap for a moment), or after `maxMs`. */
async function settledRss(pgid: number, maxMs: number): Promise<number> {
  let last = residentKiB(groupPids(pgid));
  for (let waited = 0; waited < maxMs; waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    const now = residentKiB(groupPids(pgid));
    if (Math.abs(now - last) <= 64) return now;
    last = now;
  }
  return last;
}
