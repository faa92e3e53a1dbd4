// npm run doctor -- --stack prod [--stack demo] [--site HOST] [--json]
//                   [--local | --sandbox [RUN_DIR]] [--config-dir DIR]
// For each route: a verdict per hop with the reason and the fix (doctor/verdicts.ts), from
// probes run over SSH on the LB and on each server (doctor/probe-scripts.ts), read-only; and per
// host, drift between what the stack renders now and what the host runs (doctor/drift.ts).
// Exit 0: every route serves and no host drifted; 1: something is broken; 2: bad usage.
import { spawnSync } from "node:child_process";
import { promises as dnsPromises } from "node:dns";
import { connect } from "node:net";
import { join } from "node:path";
import { REPO_ROOT } from "../scripts/stack-files";
import { assembleRoutingTable, type HostPlan, type RouteFragment, type RoutingRow } from "../topology";
import { parseShowStat } from "../lab/haproxy-stats";
import type { StatsReport } from "../proxy/stats/report";
import { callCloudIn, LOCAL_RUN_DIR } from "../local/cloud/protocol";
import type { CloudInfo } from "../local/cloud/cloud";
import { fromBase64, lbProbeScript, parseProbe, serverProbeScript } from "./probe-scripts";
import { runProbe } from "./remote";
import { localTarget, pulumiTarget, sandboxDirs, type StackTarget } from "./targets";
import { diagnoseRoute, type EngineServerView, type Hop, type RouteReport } from "./verdicts";
import { hostDrift, type HostDriftReport } from "./host-drift";

interface Options {
  readonly stacks: string[];
  readonly site?: string;
  readonly json: boolean;
  readonly source: { readonly kind: "pulumi" } | { readonly kind: "local"; readonly stateDir: string; readonly runDir: string };
  readonly configDir: string;
}

function usage(message: string): never {
  process.stderr.write(`doctor: ${message}\nusage: npm run doctor -- --stack NAME [--stack NAME]... [--site HOST] [--json] [--local | --sandbox [RUN_DIR]] [--config-dir DIR]\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Options {
  const stacks: string[] = [];
  let site: string | undefined;
  let json = false;
  let source: Options["source"] = { kind: "pulumi" };
  let configDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === "--stack") stacks.push(value());
    else if (a === "--site") site = value().toLowerCase();
    else if (a === "--json") json = true;
    else if (a === "--config-dir") configDir = value();
    else if (a === "--local") {
      // Where npm run local keeps its stacks (local/cli.ts LOCAL_STATE_DIR, whose module runs its CLI when imported).
      source = { kind: "local", stateDir: process.env["HETZNER_INGRESS_LOCAL_STATE"] ?? join(REPO_ROOT, ".local-engine"), runDir: LOCAL_RUN_DIR };
    } else if (a === "--sandbox") {
      const runDir = argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("--") ? argv[++i]! : (process.env["HETZNER_INGRESS_SANDBOX_RUN"] ?? "/run/hetzner-ingress-sandbox");
      source = { kind: "local", stateDir: sandboxDirs(runDir).stateDir, runDir };
      configDir ??= sandboxDirs(runDir).configDir;
    } else usage(`unknown argument ${a}`);
  }
  // The sandbox deploys prod and demo: both, unless named.
  if (stacks.length === 0 && source.kind === "local" && configDir !== undefined) stacks.push("prod", "demo");
  if (stacks.length === 0) usage("name at least one --stack");
  return { stacks, ...(site !== undefined ? { site } : {}), json, source, configDir: configDir ?? REPO_ROOT };
}

/** TCP connect from here: "ok", "refused", "timeout", or the error. */
function tcpFromHere(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: string) => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done("timeout"), timeoutMs);
    s.once("connect", () => done("ok"));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "refused" : (e.code ?? e.message)));
  });
}

function engineView(engine: "haproxy" | "ts", page: string, backend: string, server: string): EngineServerView | undefined {
  if (engine === "haproxy") {
    const row = parseShowStat(page).find((r) => r.backend === backend && r.server === server);
    return row ? { status: row.status, checkStatus: row.checkStatus, checkDescription: row.checkDescription, lastCheck: row.lastCheck, ...(row.checkCode !== undefined ? { checkCode: row.checkCode } : {}) } : undefined;
  }
  const report = JSON.parse(page) as StatsReport;
  const s = report.backends.find((b) => b.name === backend)?.servers.find((x) => x.name === server);
  return s ? { status: s.statusDetail, checkStatus: s.checkStatus, checkDescription: s.checkDescription, lastCheck: s.checkInfo, ...(s.checkCode !== undefined ? { checkCode: s.checkCode } : {}) } : undefined;
}

/** What a host said, made harmless for a terminal: no control characters. */
const clean = (text: string): string => text.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");

const MARK: Record<Hop["status"], string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", skip: "--  " };

function printText(routes: readonly RouteReport[], drift: readonly HostDriftReport[]): void {
  const lines: string[] = [];
  for (const r of routes) {
    const first = r.hops.find((h) => h.status === "fail");
    lines.push(`${r.broken ? "BROKEN" : "ok"}  ${r.hostname} -> ${r.server} ${r.target} (stack ${r.stack}, backend ${r.backend})${first ? `: breaks at "${first.hop}"` : ""}`);
    for (const h of r.hops) {
      lines.push(`    ${MARK[h.status]} ${h.hop}: ${clean(h.detail)}`);
      if (h.fix && h.status !== "ok") lines.push(`         fix: ${clean(h.fix)}`);
    }
  }
  for (const d of drift) {
    lines.push(`${d.findings.length > 0 || d.error ? "DRIFT" : "ok"}  host ${d.host} (stack ${d.stack}): ${d.error !== undefined ? clean(d.error) : (d.findings.length === 0 ? "every file is what the stack renders now; its daemons run the live release" : `${d.findings.length} difference(s)`)}`);
    for (const f of d.findings) lines.push(`    ${f.kind} ${clean(f.path)}: ${clean(f.detail)}\n         fix: ${clean(f.fix)}`);
    for (const f of d.notes) lines.push(`    note: ${f.kind} ${clean(f.path)}: ${clean(f.detail)}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.source.kind === "local" && process.env["INGRESS_DOCTOR_IN_NETNS"] !== "1") {
    // Everything the doctor sends goes from the local cloud's operator, as ssh and curl would.
    const info = await callCloudIn<CloudInfo>(o.source.runDir, "info").catch(() => undefined);
    if (!info) usage(`no local cloud answers at ${o.source.runDir} (npm run local -- up, or npm run sandbox -- up)`);
    const r = spawnSync("ip", ["netns", "exec", info.operatorNetns, process.execPath, "--import", "tsx", __filename, ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, INGRESS_DOCTOR_IN_NETNS: "1" } });
    process.exit(r.status ?? 1);
  }
  const source = o.source;
  const targets = o.stacks.map((s) => (source.kind === "local" ? localTarget(s, source.stateDir, o.configDir) : pulumiTarget(s, o.configDir)));
  const owner = targets.find((t) => t.plan.hosts.some((h) => h.role === "ingress"));
  const lbHost: HostPlan | undefined = owner?.plan.hosts.find((h) => h.role === "ingress");
  const lbIpv4 = owner?.lbIpv4 ?? targets.find((t) => t.lbIpv4)?.lbIpv4;
  if (!lbIpv4) usage("no stack names the LB's address (lbIpv4): is it up?");
  const fragments: RouteFragment[] = [];
  if (lbHost?.ingress) fragments.push(lbHost.ingress.fragment);
  for (const t of targets) if (t.plan.attach) fragments.push(t.plan.attach.fragment);
  let rows: RoutingRow[] = assembleRoutingTable(fragments);
  if (o.site !== undefined) {
    rows = rows.filter((r) => r.hostname === o.site);
    if (rows.length === 0) usage(`no route for ${o.site} in stacks ${o.stacks.join(", ")}`);
  }
  // By stack and name: two stacks may each have a server called "backend".
  const hostOf = (stack: string, server: string): { target: StackTarget; host: HostPlan } | undefined => {
    const t = targets.find((x) => x.stack === stack);
    const host = t?.plan.hosts.find((h) => h.name === server);
    return t && host ? { target: t, host } : undefined;
  };
  const engine = lbHost?.ingress?.engine ?? "haproxy";
  const unit = engine === "haproxy" ? "haproxy" : "proxy";
  const healthPathOf = (row: RoutingRow) => hostOf(row.stack, row.server)?.host.web?.sites.find((s) => s.site.hostname === row.hostname)?.site.healthPath ?? "/healthz";

  // The probes: the LB once, each server once, all at once.
  const lbPromise =
    owner && lbHost && owner.privateKey
      ? runProbe(
          { ip: lbIpv4, privateKey: owner.privateKey, ...(owner.lbHostKey ? { hostKey: owner.lbHostKey } : {}) },
          lbProbeScript({
            unit,
            ...(lbHost.ingress!.stats.enabled ? { stats: { port: lbHost.ingress!.stats.port, path: engine === "haproxy" ? "/stats;csv" : "/stats.json" } } : {}),
            routes: rows.map((r) => ({ hostname: r.hostname, address: r.address, port: r.port, healthPath: healthPathOf(r) })),
          }),
          // A route that times out costs the probe ~4 s; its TLS tries only follow a connect.
          30_000 + rows.length * 20_000,
        )
      : Promise.resolve({ ok: false, stdout: "", atS: Math.floor(Date.now() / 1000), error: owner ? "no deploy key in the owning stack's state" : `the LB belongs to a stack not named here: add --stack <owner>` });
  const keyOf = (row: Pick<RoutingRow, "stack" | "server">) => `${row.stack}/${row.server}`;
  const servers = [...new Map(rows.map((r) => [keyOf(r), r])).values()];
  const serverProbes = new Map(
    servers.map((row) => {
      const name = row.server;
      const h = hostOf(row.stack, name);
      const ip = h?.target.hostIps.get(name);
      const p =
        h && ip && h.target.privateKey
          ? runProbe({ ip, privateKey: h.target.privateKey }, serverProbeScript())
          : Promise.resolve({ ok: false, stdout: "", atS: Math.floor(Date.now() / 1000), error: h ? `no address or deploy key for ${name} in stack ${h.target.stack}'s state` : `${name} belongs to a stack not named here (--stack ${row.stack})` });
      return [keyOf(row), p] as const;
    }),
  );
  const local = source.kind === "local";
  const dnsOf = async (name: string, family: 4 | 6) => {
    if (local) return {};
    try {
      return { addresses: family === 4 ? await dnsPromises.resolve4(name) : await dnsPromises.resolve6(name) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTFOUND" || code === "ENODATA") return family === 4 ? { error: "no A record" } : { addresses: [] };
      return { error: (e as Error).message };
    }
  };
  const lbIpv6 = owner?.lbIpv6 ?? targets.find((t) => t.lbIpv6)?.lbIpv6;
  const [lb443, lb80, lbResult] = await Promise.all([tcpFromHere(lbIpv4, 443), tcpFromHere(lbIpv4, 80), lbPromise]);
  const lbProbe = lbResult.ok ? parseProbe(lbResult.stdout) : undefined;
  let page = "";
  let pageError: string | undefined;
  if (lbProbe) {
    page = fromBase64(lbProbe.get("stats"));
    if (lbProbe.get("stats_rc") !== "0") pageError = `stats page: ${lbProbe.get("stats_rc")}`;
  }
  const nowS = Math.floor(Date.now() / 1000);
  const reports: RouteReport[] = [];
  for (const [index, row] of rows.entries()) {
    const h = hostOf(row.stack, row.server);
    // An attached stack's server meets the LB on the attachment's network, whatever its name.
    const attach = h?.target.plan.attach;
    const lbPrivateIp = attach ? attach.ip : (lbHost?.privateIps.find((p) => h?.host.privateIps.some((q) => q.network === p.network))?.ip ?? "");
    let view: EngineServerView | undefined;
    let viewError = pageError;
    if (lbProbe && !pageError) {
      try {
        view = engineView(engine, page, row.backend, row.server);
      } catch (e) {
        viewError = `stats page unreadable: ${(e as Error).message}`;
      }
    }
    const srv = await serverProbes.get(keyOf(row))!;
    reports.push(
      diagnoseRoute(
        { hostname: row.hostname, stack: row.stack, backend: row.backend, server: row.server, address: row.address, port: row.port, healthPath: healthPathOf(row), lbPrivateIp, engine },
        { lbIpv4, ...(lbIpv6 ? { lbIpv6 } : {}), dns: await dnsOf(row.hostname, 4), ...(local ? {} : { dns6: await dnsOf(row.hostname, 6) }), lb443, lb80, nowS },
        { index, unit, ...(lbProbe ? { probe: lbProbe } : { unreachable: lbResult.error ?? "no probe" }), ...(view ? { view } : {}), ...(viewError ? { viewError } : {}) },
        srv.ok ? { probe: parseProbe(srv.stdout), probedAtS: srv.atS } : { unreachable: srv.error ?? "no probe" },
      ),
    );
  }
  const drift = await hostDrift(targets, o.site === undefined ? undefined : new Set(rows.map((r) => r.server)));
  const broken = reports.some((r) => r.broken) || drift.some((d) => d.findings.length > 0 || d.error !== undefined);
  if (o.json) process.stdout.write(`${JSON.stringify({ ok: !broken, routes: reports, drift }, null, 2)}\n`);
  else printText(reports, drift);
  process.exit(broken ? 1 : 0);
}

main().catch((e: unknown) => {
  process.stderr.write(`doctor: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
