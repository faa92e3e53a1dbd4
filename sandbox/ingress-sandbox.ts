// A running sandbox as its checks see it: prod and demo deployed by the local engine (nothing
// here deploys), the machines of the local cloud, and the namespaces to probe them from. The
// checks act as people would: clients on the internet, the operator at the admin address, an
// intruder in a private network, and the operator's root shell on a server (systemctl, logs).
//
//   client 203.0.113.50, 2001:db8:113::50 ┐                        ┌ prod network: monitoring, frontend, backend, intruder
//   flood 203.0.113.66                    ├ isp (cloud firewalls) ─ LB ┤
//   operator 198.51.100.7, client2 .20    ┘                        └ demo network: demo, intruder
import type { HostPlan, RoutingRow } from "../topology";
import * as paths from "../topology/paths";
import { run, type RunResult } from "../lab/command";
import { parseShowStat, type HaproxyServerState } from "../lab/haproxy-stats";
import { Netns } from "../lab/netns";
import { Sandbox } from "../lab/sandbox";
import { CLIENT, CLIENT2, FLOOD, OPERATOR, type CloudInfo, type ProbeInfo, type ServerInfo } from "../local/cloud/cloud";
import { callCloudIn } from "../local/cloud/protocol";
import { machineArgv, onServer, STANDIN_DIR } from "../local/cloud/machine";
import { ipv4InCidr, parseIpv4Cidr } from "../lab/address";
import { ACME_BACKEND_PREFIX } from "../render/haproxy";
import type { StatsReport } from "../proxy/stats/report";
import { planIngressSandbox, type IngressSandboxPlan } from "./ingress-plan";
import type { SandboxRun } from "./sandbox-run";
import type { AcmeCaInfo } from "../local/cloud/acme-ca";

/** Check-time namespaces (the DNAT scenario's container) and processes: "ingress check". */
export const CHECK_PREFIX = "ingck";

/** The internet's fixed addresses, as the local cloud gives them. */
export const INTERNET = {
  client4: CLIENT.ipv4,
  client6: CLIENT.ipv6,
  flood4: FLOOD.ipv4,
  client2: CLIENT2.ipv4,
  admin: OPERATOR.ipv4,
} as const;

export interface WebHost {
  readonly plan: HostPlan;
  readonly server: ServerInfo;
  readonly ns: Netns;
  /** Where the LB reaches it. */
  readonly ip: string;
}

export interface Clients {
  /** A client on the internet, IPv4 and IPv6. */
  readonly client: Netns;
  /** Another internet client, used up by the rate-limit check. */
  readonly flood: Netns;
  /** A client from another network than the operator's. */
  readonly client2: Netns;
  /** The operator: the admin source that ssh and stats.allowedCidrs let in. */
  readonly admin: Netns;
  /** A machine inside each private network that is none of the stacks' servers. */
  readonly intruders: readonly { readonly ns: Netns; readonly ip: string; readonly ipRange: string }[];
}

/** The ts proxy's /stats.json rows in the shape HAProxy's `show stat` gives. */
function fromProxyJson(report: StatsReport): HaproxyServerState[] {
  return report.backends.flatMap((b) =>
    b.servers.map((s) => ({
      backend: b.name,
      server: s.name,
      status: s.statusDetail,
      checkStatus: s.checkStatus,
      checkRunning: false,
      checkDescription: s.checkDescription,
      lastCheck: s.checkInfo,
      ...(s.checkCode !== undefined ? { checkCode: s.checkCode } : {}),
      ...(s.checkDurationMs !== undefined ? { checkDurationMs: s.checkDurationMs } : {}),
    })),
  );
}

export interface StatsPage {
  /** The namespace it is read from: the operator's, the stats port's one allowed source. */
  readonly netns: string;
  readonly lbIp: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly engine: IngressSandboxPlan["engine"];
}

/**
 * The engine's view of every server of a TLS backend, read as the operator reads it: the
 * stats page with the password (HAProxy's `;csv`, the ts proxy's /stats.json). The challenge
 * backends (acme:<backend>) have no checks and are left out. No answer (the engine
 * reloading) is no view yet: [], for a poll to try again.
 */
export async function readServerStates(page: StatsPage, timeoutS = 3): Promise<HaproxyServerState[]> {
  const path = page.engine === "haproxy" ? "/stats;csv" : "/stats.json";
  const r = await run(["ip", "netns", "exec", page.netns, "curl", "-sf", "--max-time", String(timeoutS), "-u", `${page.user}:${page.password}`, `http://${page.lbIp}:${page.port}${path}`], {
    allowFailure: true,
    timeoutMs: timeoutS * 1000 + 3000,
  });
  if (r.code !== 0) return [];
  const rows = page.engine === "haproxy" ? parseShowStat(r.stdout) : fromProxyJson(JSON.parse(r.stdout) as StatsReport);
  return rows.filter((row) => !row.backend.startsWith(ACME_BACKEND_PREFIX));
}

export class IngressSandbox {
  private readonly stopped = new Set<string>();

  private constructor(
    readonly sb: Sandbox,
    readonly plan: IngressSandboxPlan,
    readonly lbServer: ServerInfo,
    readonly lbNs: Netns,
    readonly web: ReadonlyMap<string, WebHost>,
    readonly clients: Clients,
    readonly stats: { readonly user: string; readonly password: string },
    readonly runDir: string,
  ) {}

  /** The sandbox of this run dir, as deployed; fails when it is not up. */
  static async attach(r: SandboxRun): Promise<IngressSandbox> {
    const plan = planIngressSandbox(r.dir);
    const info = await callCloudIn<CloudInfo>(r.dir, "info").catch((e: Error) => {
      throw new Error(`no sandbox answers in ${r.dir} (${e.message}); \`npm run sandbox -- down\` then \`up\` makes a new one`);
    });
    const probes = await callCloudIn<ProbeInfo>(r.dir, "probes");
    const sb = await Sandbox.create({ prefix: CHECK_PREFIX });
    try {
      const server = (host: string): ServerInfo => {
        const name = plan.serverNames.get(host) ?? host;
        const s = info.servers.find((x) => x.name === name);
        if (!s) throw new Error(`the sandbox has no server ${name} (has ${info.servers.map((x) => x.name).join(", ") || "none"}): is it up?`);
        return s;
      };
      const lbServer = server(plan.lb.name);
      const web = new Map<string, WebHost>();
      for (const h of plan.webHosts) {
        const s = server(h.name);
        const ip = plan.routing.find((row) => row.server === h.name)?.address ?? h.privateIps[0]?.ip ?? "";
        web.set(h.name, { plan: h, server: s, ns: Netns.attach(s.netns, h.name, sb), ip });
      }
      const clients: Clients = {
        client: Netns.attach(info.clientNetns, "client", sb),
        flood: Netns.attach(probes.flood, "flood", sb),
        client2: Netns.attach(probes.client2, "client2", sb),
        admin: Netns.attach(info.operatorNetns, "operator", sb),
        intruders: probes.intruders.map((i) => ({ ns: Netns.attach(i.netns, "intruder", sb), ip: i.ip, ipRange: i.ipRange })),
      };
      const statsEnv = await onServer(lbServer, ["cat", paths.STATS_ENV]);
      const env = Object.fromEntries(statsEnv.stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const user = env["STATS_USER"];
      const password = env["STATS_PASSWORD"];
      if (statsEnv.code !== 0 || !user || !password) throw new Error(`cannot read the stats credentials from ${paths.STATS_ENV} on ${lbServer.name}: ${statsEnv.stderr.trim() || "no STATS_USER/STATS_PASSWORD"}`);
      const stats = { user, password };
      await assertEngineRuns(lbServer, plan.engine);
      return new IngressSandbox(sb, plan, lbServer, Netns.attach(lbServer.netns, plan.lb.name, sb), web, clients, stats, r.dir);
    } catch (e) {
      await sb.teardown().catch(() => undefined);
      throw e;
    }
  }

  get lb4(): string {
    return this.lbServer.ipv4;
  }

  get lb6(): string {
    return this.lbServer.ipv6;
  }

  webHost(name: string): WebHost {
    const w = this.web.get(name);
    if (!w) throw new Error(`no web host ${name} in this sandbox`);
    return w;
  }

  /** A root shell's command on the host's machine (its mount and network namespaces). */
  onHost(name: string, argv: readonly string[]): Promise<RunResult> {
    return onServer(this.webHost(name).server, argv);
  }

  /** The same on the LB's machine. */
  onLb(argv: readonly string[]): Promise<RunResult> {
    return onServer(this.lbServer, argv);
  }

  async stopNginx(name: string): Promise<void> {
    const r = await this.onHost(name, [`${STANDIN_DIR}/systemctl`, "stop", "nginx.service"]);
    if (r.code !== 0) throw new Error(`systemctl stop nginx on ${name}: ${r.stderr}`);
    this.stopped.add(name);
  }

  /** Starts nginx's unit; `inNetns` runs it in another network namespace (the DNAT scenario's container). */
  async startNginx(name: string, inNetns?: Netns): Promise<void> {
    const start = [`${STANDIN_DIR}/systemctl`, "start", "nginx.service"];
    const w = this.webHost(name);
    const r = inNetns
      ? await inNetns.exec(machineArgv(w.server.initPid, start, false), { allowFailure: true })
      : await this.onHost(name, start);
    if (r.code !== 0) throw new Error(`systemctl start nginx on ${name}: ${r.stderr}`);
    if (!inNetns) this.stopped.delete(name);
  }

  nginxStopped(name: string): boolean {
    return this.stopped.has(name);
  }

  /** What nginx wrote (its container log: stdout and stderr, access log included). */
  async nginxLog(name: string): Promise<string> {
    return (await this.onHost(name, ["cat", containerLog("nginx")])).stdout;
  }

  /** The sandbox's ACME CA (Pebble): its info, or an action on it (local/cloud/acme-ca.ts). */
  acmeCa(action: "info" | "start" | "stop" | "resolve", arg?: string): Promise<AcmeCaInfo> {
    return callCloudIn<AcmeCaInfo>(this.runDir, "acmeCa", action, ...(arg === undefined ? [] : [arg]));
  }

  /** The engine's view of every server, read as the operator reads it: the stats page, with the password. */
  serverStates(): Promise<HaproxyServerState[]> {
    return readServerStates({ netns: this.clients.admin.name, lbIp: this.lb4, port: this.plan.lb.ingress?.stats.port ?? 8404, ...this.stats, engine: this.plan.engine });
  }

  /** The intruder in the private network that holds `ip`. */
  intruderFor(ip: string): Clients["intruders"][number] {
    const intruder = this.clients.intruders.find((i) => ipv4InCidr(ip, parseIpv4Cidr(i.ipRange)));
    if (!intruder) throw new Error(`no intruder in the network of ${ip}`);
    return intruder;
  }

  /** Routing rows in the order the checks take them. */
  get rows(): readonly RoutingRow[] {
    return this.plan.routing;
  }

  /** Namespace names by role, for printing. */
  namespaces(): Record<string, string> {
    const out: Record<string, string> = { [this.plan.lb.name]: this.lbNs.name };
    for (const [h, w] of this.web) out[h] = w.ns.name;
    for (const [role, ns] of Object.entries(this.clients)) if (ns instanceof Netns) out[role] = ns.name;
    for (const i of this.clients.intruders) out[`intruder ${i.ip}`] = i.ns.name;
    return out;
  }

  /** Ends this check session: its own namespaces and processes; the deployed sandbox stays. */
  async close(): Promise<void> {
    await this.sb.teardown();
  }
}

/** Where the machine's podman stand-in keeps a container's output (its jobs' too). */
export const containerLog = (container: string): string => `/var/lib/local-machine/containers/${container}.log`;

/** The LB's engine container, as the machine's podman stand-in keeps it: "<pid> <start time>" per container. */
const ENGINE_CONTAINER: Readonly<Record<IngressSandboxPlan["engine"], string>> = { haproxy: "haproxy", ts: "proxy" };

/**
 * Every check would fail, each its own way, against an LB whose engine has died: say that
 * once, first. Alive means the pid is there, not a zombie, and started when the file says.
 */
async function assertEngineRuns(lb: ServerInfo, engine: IngressSandboxPlan["engine"]): Promise<void> {
  const name = ENGINE_CONTAINER[engine];
  const file = `/var/lib/local-machine/containers/${name}.pid`;
  const script = `read -r pid start <${file} || exit 2; set -- $(sed 's/^.*) //' /proc/$pid/stat 2>/dev/null); [ "$1" != "" ] && [ "$1" != Z ] && [ "\${20}" = "$start" ]`;
  const r = await onServer(lb, ["sh", "-c", script]);
  if (r.code !== 0) {
    throw new Error(`the LB's engine (${engine}, container ${name}) is not running on ${lb.name}: ${r.code === 2 ? `no ${file}` : "its process is gone"}; its log is ${containerLog(name)} on that machine, and \`systemctl start ${name}.service\` there starts it again`);
  }
}

