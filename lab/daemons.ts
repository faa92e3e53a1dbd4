import { access, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PollAbort, pollUntil, run } from "./command";
import type { Netns } from "./netns";
import type { ManagedProcess } from "./process";
import type { Sandbox } from "./sandbox";
import { haproxyCommand } from "./haproxy-stats";

export interface Listener {
  readonly port: number;
  /** Match only this local address; default: any. */
  readonly address?: string;
}

export interface Daemon {
  readonly process: ManagedProcess;
  /** Where its config and side files were written. */
  readonly dir: string;
  readonly configPath: string;
}

export interface DaemonSpec {
  /** Unique per run; names the config dir and the log file. */
  readonly name: string;
  /** The full main config file text. */
  readonly config: string;
  /** Extra files written next to the config (relative path -> content). */
  readonly files?: Readonly<Record<string, string>>;
  /** Ports that must be listening before start resolves. */
  readonly waitFor?: readonly Listener[];
  readonly timeoutMs?: number;
}

async function writeFiles(dir: string, files: Readonly<Record<string, string>> | undefined): Promise<void> {
  for (const [rel, content] of Object.entries(files ?? {})) {
    if (rel.startsWith("/") || rel.split("/").includes("..")) throw new Error(`file path must stay inside the daemon dir: ${rel}`);
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content, { mode: 0o600 });
  }
}

async function tail(p: ManagedProcess): Promise<string> {
  return (await p.log()).split("\n").slice(-30).join("\n");
}

/**
 * Waits until `ns` has a TCP socket listening on each listener, failing
 * early (with the log) when the daemon exits instead.
 */
export async function waitForListening(
  ns: Netns,
  listeners: readonly Listener[],
  options: { readonly process?: ManagedProcess; readonly timeoutMs?: number } = {},
): Promise<void> {
  if (listeners.length === 0) return;
  const what = listeners.map((l) => `${l.address ?? "*"}:${l.port}`).join(", ");
  await pollUntil(
    `${ns.host} listening on ${what}`,
    async () => {
      const p = options.process;
      if (p !== undefined && !p.running) {
        throw new PollAbort(`${p.name} exited (${JSON.stringify(p.exit)}) before listening on ${what}:\n${await tail(p)}`);
      }
      const sockets = await ns.listeningTcp();
      const ok = listeners.every((l) => sockets.some((s) => s.port === l.port && (l.address === undefined || s.address === l.address)));
      return ok ? true : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 5000, intervalMs: 20 },
  );
}

async function startIn(
  sb: Sandbox,
  ns: Netns,
  spec: DaemonSpec,
  configName: string,
  argv: (dir: string, configPath: string) => string[],
  extraFiles: (dir: string) => Record<string, string> = () => ({}),
): Promise<Daemon> {
  const dir = await sb.subdir(`${ns.host}-${spec.name}`);
  const configPath = join(dir, configName);
  await writeFile(configPath, spec.config, { mode: 0o600 });
  await writeFiles(dir, { ...spec.files, ...extraFiles(dir) });
  const process = await ns.spawn(spec.name, argv(dir, configPath), { cwd: dir });
  await waitForListening(ns, spec.waitFor ?? [], { process, ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }) });
  return { process, dir, configPath };
}

export interface NginxMainOptions {
  /** Contents of the `http {}` block. */
  readonly http?: string;
  /** Contents of the `stream {}` block; loads the stream module. */
  readonly stream?: string;
}

/**
 * A main nginx.conf for running inside the sandbox. Its paths are relative,
 * so they land in the daemon dir (`startNginx` passes it as `-p`); workers run
 * as root because that 0700 dir is closed to the packaged `www-data`/`nobody`.
 * Rendered server blocks go inside `http` or `stream`.
 */
export function sandboxNginxMain(o: NginxMainOptions): string {
  const lines = [
    o.stream !== undefined ? "load_module /usr/lib/nginx/modules/ngx_stream_module.so;" : "",
    "user root;",
    "worker_processes 1;",
    "pid nginx.pid;",
    "error_log stderr info;",
    "events { worker_connections 256; }",
  ];
  if (o.http !== undefined) {
    const tmp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `  ${k}_temp_path tmp-${k};`);
    lines.push("http {", ...tmp, "  default_type text/plain;", "  access_log access.log;", o.http, "}");
  }
  if (o.stream !== undefined) lines.push("stream {", o.stream, "}");
  return lines.filter((l) => l !== "").join("\n") + "\n";
}

/**
 * Runs nginx in the foreground in `ns`. `-e stderr` keeps it from touching
 * /var/log/nginx before the config is read; `daemon off` is added unless the
 * config says it.
 */
export function startNginx(sb: Sandbox, ns: Netns, spec: DaemonSpec): Promise<Daemon> {
  const daemonSet = /^\s*daemon\s+/m.test(spec.config);
  return startIn(sb, ns, spec, "nginx.conf", (dir, config) => [
    "/usr/sbin/nginx", "-p", `${dir}/`, "-e", "stderr", "-c", config,
    ...(daemonSet ? [] : ["-g", "daemon off;"]),
  ]);
}

/** Checks an nginx config with the binary that will run it. */
export async function nginxConfigTest(configPath: string, prefixDir: string): Promise<{ ok: boolean; output: string }> {
  const r = await run(["/usr/sbin/nginx", "-t", "-p", `${prefixDir}/`, "-e", "stderr", "-c", configPath], { allowFailure: true });
  return { ok: r.code === 0, output: r.stderr + r.stdout };
}

export interface HaproxyDaemon extends Daemon {
  /** An admin-level stats socket, always added by the sandbox. */
  readonly statsSocket: string;
}

/**
 * Runs haproxy in the foreground (`-db`) in `ns`. A second config file adds a
 * `global` section with an admin stats socket in the daemon dir (HAProxy
 * merges repeated `global` sections), so rendered configs run unmodified.
 */
export async function startHaproxy(sb: Sandbox, ns: Netns, spec: DaemonSpec): Promise<HaproxyDaemon> {
  const d = await startIn(
    sb,
    ns,
    spec,
    "haproxy.cfg",
    (dir, config) => ["/usr/sbin/haproxy", "-db", "-f", config, "-f", join(dir, SANDBOX_STATS_CFG)],
    (dir) => ({ [SANDBOX_STATS_CFG]: haproxyStatsConfig(join(dir, "admin.sock")) }),
  );
  const statsSocket = join(d.dir, "admin.sock");
  await pollUntil(
    `${ns.host}/${spec.name} stats socket`,
    async () => {
      if (!d.process.running) throw new PollAbort(`${d.process.name} exited (${JSON.stringify(d.process.exit)}):\n${await tail(d.process)}`);
      await access(statsSocket);
      await haproxyCommand(statsSocket, "show info", 1000);
      return true;
    },
    { timeoutMs: spec.timeoutMs ?? 5000, intervalMs: 20 },
  );
  return { ...d, statsSocket };
}

const SANDBOX_STATS_CFG = "sandbox-stats.cfg";

/** The extra `global` section that gives every sandboxed haproxy an admin socket. */
export function haproxyStatsConfig(socketPath: string): string {
  return `global\n    stats socket ${socketPath} mode 600 level admin\n`;
}

/** Validates a haproxy config with the binary that will run it (`haproxy -c`). */
export async function haproxyConfigTest(configPath: string): Promise<{ ok: boolean; output: string }> {
  const r = await run(["/usr/sbin/haproxy", "-c", "-f", configPath], { allowFailure: true });
  return { ok: r.code === 0, output: r.stderr + r.stdout };
}
