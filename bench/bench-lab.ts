// The bench's machines, as namespaces on this host: a client and the LB on a public segment,
// the LB and a web server on prod's private network (the addresses of Pulumi.prod.yaml), and
// the web server on the public segment too, for the direct path. The engines under test run
// the LB's rendered files (prod's stack, with the changes `benchTopology` lists) one at a time
// on the LB's port 443, pinned to their own core.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PollAbort, pollUntil, Sandbox, Segment, selfSignedCertificate, startNginx, sandboxNginxMain, waitForListening } from "../lab";
import type { ManagedProcess, Netns } from "../lab";
import { assembleHaproxyMap } from "../render/haproxy";
import { renderStack } from "../render/stack";
import { readStackConfig, stackFile } from "../scripts/stack-files";
import { paths, planStack, validateStackConfig, type HostPlan, type Topology } from "../topology";
import type { EngineName } from "./results";

export const CLIENT = "203.0.113.10";
export const LB_PUBLIC = "203.0.113.1";
export const WEB_PUBLIC = "203.0.113.20";
export const SITE = "fiscalismia.com";
export const DIRECT_NAME = `direct.${SITE}`;
const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/**
 * Prod's stack as the bench runs it, with three changes, each so that the load generator is not
 * mistaken for an attack or a limit: one client address makes every connection, so the per-source
 * rate limit is raised past anything the bench sends; maxconn is raised so the idle workload's
 * connections all fit; the health check keeps its rendered settings.
 */
export function benchTopology(engine: "haproxy" | "ts", idleConnections: number): Topology {
  const raw = structuredClone(readStackConfig(stackFile("prod"))) as { ingress: Record<string, unknown> };
  const rateLimit = (raw.ingress.rateLimit ?? {}) as Record<string, unknown>;
  raw.ingress = {
    ...raw.ingress,
    engine,
    // HAProxy's one thread holds them all (and needs two fds each, under this host's fd limit);
    // the ts proxy's workers split maxconn evenly while the kernel spreads connections unevenly.
    maxconn: engine === "haproxy" ? Math.max(4096, idleConnections + 1024) : Math.max(4096, idleConnections * 2),
    rateLimit: { ...rateLimit, threshold: 1_000_000_000 },
  };
  return validateStackConfig("prod", raw);
}

function lbOf(topo: Topology): HostPlan {
  const lb = planStack(topo).hosts.find((h) => h.role === "ingress");
  if (lb === undefined) throw new Error("prod has no ingress host");
  return lb;
}

/** The LB's rendered files, as `pulumi up` would push them. */
function renderedLbFiles(topo: Topology, proxyScript?: string): { lb: HostPlan; files: readonly { path: string; content: string }[] } {
  const plan = planStack(topo);
  const lb = plan.hosts.find((h) => h.role === "ingress");
  const files = renderStack(plan, proxyScript === undefined ? {} : { proxyScript }).find((h) => h.host === lb?.name)?.files;
  if (lb === undefined || files === undefined) throw new Error("prod has no ingress host");
  return { lb, files };
}

/** The LB's address on prod's network, and the web server (frontend) that serves SITE there. */
export function privateAddresses(topo: Topology): { lb: string; web: string; webPort: number; prefix: string } {
  const lb = lbOf(topo);
  const lbIp = lb.privateIps.find((p) => p.network === "prod")?.ip;
  const site = topo.sites.find((s) => s.hostname === SITE);
  const server = topo.servers.find((s) => s.name === site?.server);
  const web = server?.networks.prod;
  const range = topo.networks.find((n) => n.name === "prod")?.ipRange;
  if (lbIp === undefined || site === undefined || web === undefined || range === undefined) throw new Error(`prod must route ${SITE} to a server on network prod`);
  return { lb: lbIp, web, webPort: site.port, prefix: range.slice(range.indexOf("/")) };
}

export interface BenchLab {
  readonly sb: Sandbox;
  readonly client: Netns;
  readonly lb: Netns;
  readonly web: Netns;
  readonly statsEnv: Record<string, string>;
  readonly bulkPath: string;
}

/** Writes a file of `mib` MiB without holding it in memory twice. */
function writeBulk(file: string, mib: number): void {
  const chunk = Buffer.alloc(1 << 20, "x");
  writeFileSync(file, "");
  for (let i = 0; i < mib; i++) writeFileSync(file, chunk, { flag: "a" });
}

export async function createBenchLab(topo: Topology, bulkMiB: number): Promise<BenchLab> {
  const sb = await Sandbox.create({ prefix: "igb" });
  try {
    const addr = privateAddresses(topo);
    const client = await sb.namespace("client");
    const lb = await sb.namespace("lb");
    const web = await sb.namespace("web");
    const pub = await Segment.create(sb, { name: "public" });
    await pub.attach(client, { ipv4: `${CLIENT}/24` });
    await pub.attach(lb, { ipv4: `${LB_PUBLIC}/24` });
    await pub.attach(web, { ipv4: `${WEB_PUBLIC}/24` });
    const prod = await Segment.create(sb, { name: "prod" });
    await prod.attach(lb, { ipv4: `${addr.lb}${addr.prefix}` });
    await prod.attach(web, { ipv4: `${addr.web}${addr.prefix}` });

    // wrk resolves names itself; `ip netns exec` overlays /etc/netns/<ns>/hosts on /etc/hosts.
    const hostsDir = `/etc/netns/${client.name}`;
    const dropHosts = (): void => rmSync(hostsDir, { recursive: true, force: true });
    mkdirSync(hostsDir, { recursive: true });
    sb.defer(`hosts ${hostsDir}`, async () => dropHosts(), dropHosts);
    writeFileSync(join(hostsDir, "hosts"), `127.0.0.1 localhost\n${LB_PUBLIC} ${SITE}\n${WEB_PUBLIC} ${DIRECT_NAME}\n`);

    const certDir = await sb.subdir("certs");
    const cert = await selfSignedCertificate(certDir, [SITE, DIRECT_NAME]);
    const webDir = await sb.subdir("web-files");
    const bulkPath = join(webDir, "bulk.bin");
    writeBulk(bulkPath, bulkMiB);
    // The web server behind every engine (PROXY v2, or v1 from nginx stream), and the same
    // server without PROXY for the direct path. Any other path answers 200: the health checks.
    const common = `ssl_certificate ${cert.certPath}; ssl_certificate_key ${cert.keyPath}; ssl_protocols TLSv1.2 TLSv1.3;
      keepalive_requests 1000000; keepalive_timeout 300s; access_log off;
      location = /small { return 200 "ok"; }
      location = /bulk { alias ${bulkPath}; }
      location / { return 200 "ok"; }`;
    const http = `  server { listen ${addr.web}:${addr.webPort} ssl proxy_protocol; server_name ${SITE}; ${common} }
  server { listen ${WEB_PUBLIC}:443 ssl; server_name ${DIRECT_NAME}; ${common} }`;
    await startNginx(sb, web, {
      name: "web",
      config: sandboxNginxMain({ http })
        .replace("worker_processes 1;", "worker_processes 1;\nworker_rlimit_nofile 19000;")
        .replace("worker_connections 256", "worker_connections 18000"),
      waitFor: [{ port: addr.webPort }, { port: 443, address: WEB_PUBLIC }],
    });
    const statsEnv = { STATS_USER: "admin", STATS_PASSWORD: randomBytes(12).toString("hex") };
    return { sb, client, lb, web, statsEnv, bulkPath };
  } catch (error) {
    await sb.teardown();
    throw error;
  }
}

/** A running engine: its process group (for CPU and memory) and how to stop it. */
export interface RunningEngine {
  readonly name: EngineName;
  readonly process: ManagedProcess | null;
  /** The core it is pinned to, alone; null when it may use every core. */
  readonly core: number | null;
  stop(): Promise<void>;
}

/** Writes the LB's rendered files under `root` in place of /srv/ingress/current, paths inside them too. */
function stageRendered(root: string, topo: Topology, proxyScript?: string): HostPlan {
  const { lb, files } = renderedLbFiles(topo, proxyScript);
  const rebase = (text: string): string => text.split(paths.CURRENT).join(root);
  const maps: string[] = [];
  for (const f of files) {
    if (!f.path.startsWith(`${paths.CURRENT}/`)) continue;
    const target = rebase(f.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.path === paths.PROXY_SCRIPT ? f.content : rebase(f.content));
    if (f.path.startsWith(`${paths.HAPROXY_ROUTES_D}/`) && f.path.endsWith(".map")) maps.push(f.content);
  }
  // apply.sh assembles the map from every stack's fragment; here prod is the only one.
  if (maps.length > 0) writeFileSync(rebase(paths.HAPROXY_ROUTES_MAP), assembleHaproxyMap(maps));
  return lb;
}

function containerCommand(lb: HostPlan, name: string, root: string): string[] {
  const command = lb.containers.find((c) => c.name === name)?.command;
  if (command === undefined) throw new Error(`the LB plan has no ${name} container`);
  return command.map((a) => a.split(paths.CURRENT).join(root));
}

/** Runs `argv` in the LB namespace with many file descriptors, on the given cores. */
function pinnedArgv(cores: string, argv: readonly string[]): string[] {
  return ["bash", "-c", 'ulimit -n "$(ulimit -Hn)" && exec taskset -c "$0" "$@"', cores, ...argv];
}

async function stopProcess(p: ManagedProcess): Promise<void> {
  await p.stop({ graceMs: 3000 });
}

export interface EngineStartOptions {
  readonly lab: BenchLab;
  readonly idleConnections: number;
  readonly proxyScript: string;
  readonly nodePath: string;
  /** The core the pinned engines get; the rest of the bench runs on the others. */
  readonly engineCore: number;
  readonly allCores: string;
}

/** Starts `name` fresh on the LB's port 443 and waits until it forwards a request. */
export async function startEngine(name: EngineName, o: EngineStartOptions): Promise<RunningEngine> {
  const { lab } = o;
  if (name === "direct") return { name, process: null, core: null, stop: async () => undefined };
  const root = await lab.sb.subdir(`engine-${name}`);
  let process: ManagedProcess;
  let core: number | null = o.engineCore;
  // BENCH_ENGINE_NODE_OPTIONS reaches the ts proxy only (e.g. --cpu-prof): profiles of the engine under the bench's load.
  const { BENCH_ENGINE_NODE_OPTIONS: engineNodeOptions, NODE_OPTIONS: _ownNodeOptions, ...inherited } = globalThis.process.env;
  const env = { ...inherited, ...lab.statsEnv, ...(engineNodeOptions !== undefined && name.startsWith("ts") ? { NODE_OPTIONS: engineNodeOptions } : {}) };
  if (name === "haproxy") {
    const lb = stageRendered(root, benchTopology("haproxy", o.idleConnections));
    process = await lab.lb.spawn("haproxy", pinnedArgv(String(o.engineCore), containerCommand(lb, "haproxy", root)), { env });
  } else if (name === "ts" || name === "ts-all") {
    const lb = stageRendered(root, benchTopology("ts", o.idleConnections), o.proxyScript);
    const [, ...args] = containerCommand(lb, "proxy", root);
    if (name === "ts-all") core = null;
    process = await lab.lb.spawn(name, pinnedArgv(name === "ts" ? String(o.engineCore) : o.allCores, [o.nodePath, ...args]), { env });
  } else {
    const addr = privateAddresses(benchTopology("haproxy", o.idleConnections));
    // nginx's stream proxy as HAProxy's peer: the same SNI routing and a PROXY header (v1:
    // nginx sends no v2), one log line per connection as the other engines write.
    const conf = join(root, "nginx.conf");
    writeFileSync(
      conf,
      [
        `load_module ${NGINX_STREAM_MODULE};`,
        "user root;",
        "worker_processes 1;",
        "worker_rlimit_nofile 19000;",
        `pid ${root}/nginx.pid;`,
        "error_log stderr warn;",
        "events { worker_connections 18000; }",
        "stream {",
        "  log_format conn '$remote_addr:$remote_port [$time_local] $ssl_preread_server_name $upstream_addr $status $bytes_received $bytes_sent $session_time';",
        `  access_log ${root}/access.log conn;`,
        `  map $ssl_preread_server_name $backend { ${SITE} ${addr.web}:${addr.webPort}; default 127.0.0.1:9; }`,
        "  server { listen 443; listen [::]:443 ipv6only=on; ssl_preread on; proxy_pass $backend; proxy_protocol on; proxy_connect_timeout 5s; proxy_timeout 30s; }",
        "}",
        "",
      ].join("\n"),
    );
    process = await lab.lb.spawn("nginx-stream", pinnedArgv(String(o.engineCore), ["/usr/sbin/nginx", "-p", `${root}/`, "-e", "stderr", "-c", conf, "-g", "daemon off;"]), { env });
  }
  await waitForListening(lab.lb, [{ port: 443 }], { process, timeoutMs: 15_000 });
  const running: RunningEngine = { name, process, core, stop: () => stopProcess(process) };
  try {
    await waitUntilForwarding(lab.client, process);
  } catch (error) {
    await running.stop();
    throw error;
  }
  return running;
}

/** Until a request through the LB is answered: the engine routes and counts its server up. */
async function waitUntilForwarding(client: Netns, p: ManagedProcess): Promise<void> {
  await pollUntil(
    `${p.name} forwarding ${SITE}`,
    async () => {
      const r = await client.exec(["curl", "-sk", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", `https://${SITE}/small`], { allowFailure: true });
      if (r.stdout === "200") return true;
      if (!p.running) throw new PollAbort(`${p.name} exited: ${readFileSync(p.logPath, "utf8").slice(-2000)}`);
      return undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
}
