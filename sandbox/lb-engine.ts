// How the sandbox starts the LB for each engine: the plan's container command, run in the LB's
// namespace with the host root bind-mounted over /srv/ingress, and the stats credentials in
// the environment as podman's --env-file would give them.
import { existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import type { Engine, HostPlan } from "../topology";
import * as paths from "../topology/paths";
import { PollAbort, pollUntil } from "../lab/command";
import { waitForListening, type Listener } from "../lab/daemons";
import { haproxyCommand, haproxyServerStates, type HaproxyServerState } from "../lab/haproxy-stats";
import { withBindMounts, type HostRoot } from "./host-root";
import type { Netns } from "../lab/netns";
import type { ManagedProcess } from "../lab/process";

export interface LbLaunch {
  readonly ns: Netns;
  readonly root: HostRoot;
  readonly host: HostPlan;
  /** Variables of stats.env. */
  readonly statsEnv: Readonly<Record<string, string>>;
}

export interface RunningLb {
  readonly engine: Engine;
  readonly process: ManagedProcess;
  /** When every listener was up (ms since the epoch). */
  readonly startedAt: number;
  /** The engine's own view of server health; absent while the engine has none to offer. */
  readonly serverStates?: () => Promise<HaproxyServerState[]>;
  /** Real path of the admin socket (haproxy). */
  readonly adminSocket?: string;
}

export interface LbEngineDriver {
  readonly engine: Engine;
  start(launch: LbLaunch): Promise<RunningLb>;
}

const SANDBOX_DIR = `${paths.INGRESS_ROOT}/sandbox`;
const ADMIN_CFG = `${SANDBOX_DIR}/admin.cfg`;
const ADMIN_SOCKET = `${SANDBOX_DIR}/admin.sock`;
const PROXY_STATS_SOCKET = `${SANDBOX_DIR}/proxy-stats.sock`;

/** Absolute path of a binary the plan names by its bare name, as the container image would run it. */
export function resolveBinary(name: string): string {
  if (name === "node") return process.execPath;
  const dirs = [...(process.env["PATH"] ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"].filter((d) => d !== "");
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} not found in PATH or /usr/sbin`);
}

function container(host: HostPlan, name: "haproxy" | "proxy") {
  const c = host.containers.find((x) => x.name === name);
  if (!c) throw new Error(`host ${host.name} runs no ${name} container`);
  return c;
}

function listeners(host: HostPlan, by: string): Listener[] {
  return host.listens.filter((l) => l.by === by).map((l) => ({ port: l.port }));
}

async function spawnLb(launch: LbLaunch, name: string, argv: readonly string[], mounts: HostPlan["containers"][number]["mounts"]): Promise<ManagedProcess> {
  const env = { ...process.env, ...launch.statsEnv };
  // The proxy runs the Node of this checkout, which may live under /tmp; it writes nothing there.
  return launch.ns.spawn(name, withBindMounts(launch.root.binds(mounts, { privateTmp: name !== "proxy" }), argv), { env });
}

export const haproxyEngine: LbEngineDriver = {
  engine: "haproxy",
  async start(launch) {
    const c = container(launch.host, "haproxy");
    // One addition to the rendered command: an admin socket for the tests, in a file of its own.
    launch.root.write(ADMIN_CFG, `global\n    stats socket ${ADMIN_SOCKET} mode 600 level admin\n`);
    const [bin, ...args] = c.command;
    const argv = [resolveBinary(bin ?? "haproxy"), ...args, "-f", ADMIN_CFG];
    const p = await spawnLb(launch, "haproxy", argv, c.mounts);
    await waitForListening(launch.ns, listeners(launch.host, "haproxy"), { process: p });
    const socket = launch.root.path(ADMIN_SOCKET);
    await pollUntil(
      "haproxy admin socket",
      async () => {
        if (!p.running) throw new PollAbort(`haproxy exited:\n${await p.log()}`);
        await haproxyCommand(socket, "show info", 1000);
        return true;
      },
      { timeoutMs: 5000, intervalMs: 20 },
    );
    return { engine: "haproxy", process: p, startedAt: Date.now(), serverStates: () => haproxyServerStates(socket), adminSocket: socket };
  },
};

/** The proxy's /stats.json server rows, in the shape `show stat` gives for haproxy. */
interface ProxyStatsJson {
  readonly backends: readonly {
    readonly name: string;
    readonly servers: readonly { name: string; statusDetail: string; checkStatus: string; checkDescription: string; checkInfo: string; checkCode?: number; checkDurationMs?: number }[];
  }[];
}

function proxyServerStates(socketPath: string, timeoutMs = 2000): Promise<HaproxyServerState[]> {
  return new Promise((resolve, reject) => {
    // A unix socket is local IPC, like haproxy's admin socket: read from the root namespace.
    const req = http.get({ socketPath, path: "/stats.json", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        try {
          const report = JSON.parse(body) as ProxyStatsJson;
          resolve(
            report.backends.flatMap((b) =>
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
            ),
          );
        } catch (e) {
          reject(new Error(`proxy stats: ${res.statusCode} ${body.slice(0, 200)} (${(e as Error).message})`));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`proxy stats socket ${socketPath}: no reply within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export const tsEngine: LbEngineDriver = {
  engine: "ts",
  async start(launch) {
    const c = container(launch.host, "proxy");
    const [bin, ...args] = c.command;
    // One addition to the rendered command, as for haproxy: a local stats socket for the tests.
    mkdirSync(launch.root.path(SANDBOX_DIR), { recursive: true });
    const argv = [resolveBinary(bin ?? "node"), ...args, "--stats-socket", PROXY_STATS_SOCKET];
    const p = await spawnLb(launch, "proxy", argv, c.mounts);
    // Only the TLS listener is waited for: whether :80 and stats answer is for the checks to say.
    const https = launch.host.ingress?.ports.https ?? 443;
    await waitForListening(launch.ns, [{ port: https }], { process: p });
    const socket = launch.root.path(PROXY_STATS_SOCKET);
    await pollUntil(
      "proxy stats socket",
      async () => {
        if (!p.running) throw new PollAbort(`proxy exited:\n${await p.log()}`);
        await proxyServerStates(socket, 1000);
        return true;
      },
      { timeoutMs: 5000, intervalMs: 20 },
    );
    return { engine: "ts", process: p, startedAt: Date.now(), serverStates: () => proxyServerStates(socket) };
  },
};

export const LB_ENGINES: Readonly<Record<Engine, LbEngineDriver>> = { haproxy: haproxyEngine, ts: tsEngine };
