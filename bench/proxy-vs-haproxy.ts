// Side-by-side benchmark of the two ingress engines on one machine, in one run:
// wrk (client namespace) -> engine (lb namespace) -> nginx `ssl proxy_protocol` (backend
// namespace), with the same backend, certificate and load for HAProxy and the ts proxy, plus
// wrk straight to nginx as the ceiling. Reports each engine's rate and the ts/haproxy ratio.
//
//   sudo npm run bench -- [--seconds 5] [--rounds 3] [--connections 32]
//
// All traffic stays inside namespaces this script creates (a documentation-range segment).
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";
import { parseArgs } from "node:util";
import { buildScript } from "../components/program/program-files";
import { Sandbox, Segment, selfSignedCertificate, startHaproxy, startNginx, sandboxNginxMain, waitForListening } from "../lab";
import type { Netns } from "../lab";

const LB = "203.0.113.2";
const BACKEND = "203.0.113.20";
const CLIENT = "203.0.113.10";
const NAME = "bench.test";
const HAPROXY_PORT = 443;
const TS_PORT = 4443;
const TS_SINGLE_PORT = 5443;
const PROXY_LISTEN = 8443; // nginx behind an engine, PROXY v2 expected
const DIRECT_LISTEN = 9443; // nginx for the ceiling, no PROXY header

interface WrkResult {
  readonly requestsPerSec: number;
  readonly transferMiBPerSec: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly errors: number;
}

interface Scenario {
  readonly name: string;
  readonly path: string;
  readonly connections: number;
  readonly closeEachRequest: boolean;
}

function median(rs: readonly WrkResult[]): WrkResult {
  const sorted = [...rs].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function parseWrk(out: string): WrkResult {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (label: string): number => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  const scale: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    transferMiBPerSec: transfer ? Number(transfer[1]) * scale[transfer[2]!]! : NaN,
    latencyP50Ms: ms("50"),
    latencyP99Ms: ms("99"),
    errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (Number.isNaN(non2xx) ? 0 : non2xx),
  };
}

async function wrk(client: Netns, url: string, s: Scenario, seconds: number): Promise<WrkResult> {
  const argv = ["wrk", "-t", "2", "-c", String(s.connections), "-d", `${seconds}s`, "--latency", "--timeout", "5s"];
  if (s.closeEachRequest) argv.push("-H", "Connection: close");
  const r = await client.exec([...argv, url], { timeoutMs: (seconds + 30) * 1000 });
  return parseWrk(r.stdout);
}

function haproxyConfig(): string {
  return `global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend https
    bind ${LB}:${HAPROXY_PORT}
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend be if { req.ssl_sni -i ${NAME} }
backend be
    server nginx ${BACKEND}:${PROXY_LISTEN} send-proxy-v2
`;
}

/** `workers` undefined: the proxy's default, one per CPU. */
function proxyConfig(port: number, workers: number | undefined): string {
  return JSON.stringify({
    listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: LB, port }] }],
    routes: [{ host: NAME, backend: "be" }],
    backends: [{ name: "be", servers: [{ name: "nginx", address: BACKEND, port: PROXY_LISTEN }] }],
    log: { format: "json", level: "warn" }, ...(workers === undefined ? {} : { global: { workers } }),
  });
}

function nginxSites(cert: string, key: string): string {
  const common = `ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000; access_log off;
    location = /small { return 200 "ok"; }
    location = /bulk { alias bulk.bin; }`;
  return `  server { listen ${BACKEND}:${PROXY_LISTEN} ssl proxy_protocol; server_name ${NAME}; ${common} }
  server { listen ${BACKEND}:${DIRECT_LISTEN} ssl; server_name ${NAME}; ${common} }`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "5" }, connections: { type: "string", default: "32" }, rounds: { type: "string", default: "3" } },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  for (const bin of ["wrk", "haproxy", "nginx"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`]);
    } catch {
      throw new Error(`${bin} is missing: apt-get install wrk haproxy nginx-light`);
    }
  }
  const bundle = join(__dirname, "..", "dist", "proxy.js");
  mkdirSync(join(__dirname, "..", "dist"), { recursive: true });
  writeFileSync(bundle, buildScript(join(__dirname, "..", "proxy", "main.ts")));

  const sb = await Sandbox.create({ prefix: "igb" });
  try {
    const seg = await Segment.create(sb, { name: "bench" });
    const [client, lb, backend] = [await sb.namespace("client"), await sb.namespace("lb"), await sb.namespace("backend")];
    await seg.attach(client, { ipv4: `${CLIENT}/24` });
    await seg.attach(lb, { ipv4: `${LB}/24` });
    await seg.attach(backend, { ipv4: `${BACKEND}/24` });

    // wrk resolves the name itself; `ip netns exec` overlays /etc/netns/<ns>/hosts on /etc/hosts.
    const hostsDir = `/etc/netns/${client.name}`;
    mkdirSync(hostsDir, { recursive: true });
    const dropHosts = (): void => rmSync(hostsDir, { recursive: true, force: true });
    sb.defer(`hosts ${hostsDir}`, async () => dropHosts(), dropHosts);
    writeFileSync(join(hostsDir, "hosts"), `127.0.0.1 localhost\n${LB} ${NAME}\n${BACKEND} direct.${NAME}\n`);

    const certDir = await sb.subdir("certs");
    const cert = await selfSignedCertificate(certDir, [NAME, `direct.${NAME}`]);
    await startNginx(sb, backend, {
      name: "nginx",
      config: sandboxNginxMain({ http: nginxSites(cert.certPath, cert.keyPath) }).replace("worker_processes 1;", "worker_processes 1;\nworker_rlimit_nofile 65536;").replace("worker_connections 256", "worker_connections 16384"),
      files: { "bulk.bin": "x".repeat(1 << 20) },
      waitFor: [{ port: PROXY_LISTEN }, { port: DIRECT_LISTEN }],
    });
    await startHaproxy(sb, lb, { name: "haproxy", config: haproxyConfig(), waitFor: [{ port: HAPROXY_PORT }] });
    const proxyDir = await sb.subdir("proxy");
    for (const [label, port, workers] of [["ts", TS_PORT, undefined], ["ts-single", TS_SINGLE_PORT, 1]] as const) {
      const file = join(proxyDir, `${label}.json`);
      writeFileSync(file, proxyConfig(port, workers));
      const p = await lb.spawn(label, [process.execPath, bundle, "--config", file]);
      await waitForListening(lb, [{ port }], { process: p });
    }

    const scenarios: Scenario[] = [
      { name: "small requests, keep-alive", path: "/small", connections, closeEachRequest: false },
      { name: "new TCP+TLS connection per request", path: "/small", connections, closeEachRequest: true },
      { name: "1 MiB responses, keep-alive", path: "/bulk", connections: Math.max(1, connections / 4), closeEachRequest: false },
    ];
    const rows: string[] = [];
    const targets: Record<string, (path: string) => string> = {
      direct: (path) => `https://direct.${NAME}:${DIRECT_LISTEN}${path}`,
      haproxy: (path) => `https://${NAME}:${HAPROXY_PORT}${path}`,
      ts: (path) => `https://${NAME}:${TS_PORT}${path}`,
      "ts-single": (path) => `https://${NAME}:${TS_SINGLE_PORT}${path}`,
    };
    // Targets take turns within each round, so drift in machine load hits all of them alike;
    // each row is the median round.
    const results: Record<string, Record<string, WrkResult>> = {};
    for (const s of scenarios) {
      const runs: Record<string, WrkResult[]> = {};
      for (let round = 0; round < rounds; round++) {
        for (const [engine, url] of Object.entries(targets)) (runs[engine] ??= []).push(await wrk(client, url(s.path), s, seconds));
      }
      results[s.name] = Object.fromEntries(Object.entries(runs).map(([engine, rs]) => [engine, median(rs)]));
    }
    const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : "-");
    rows.push(`${execFileSync("haproxy", ["-v"]).toString().split("\n")[0]}; ts proxy on node ${process.version}`);
    rows.push(`median of ${rounds} rounds of ${seconds}s per target; wrk -t2; ts = one worker per CPU (${os.availableParallelism()}), ts-single = one worker`);
    rows.push("");
    rows.push("| scenario | engine | req/s | MiB/s | p50 ms | p99 ms | errors |");
    rows.push("|---|---|---|---|---|---|---|");
    for (const [name, byEngine] of Object.entries(results)) {
      for (const [engine, r] of Object.entries(byEngine)) {
        rows.push(`| ${name} | ${engine} | ${fmt(r.requestsPerSec)} | ${fmt(r.transferMiBPerSec, 1)} | ${fmt(r.latencyP50Ms, 2)} | ${fmt(r.latencyP99Ms, 2)} | ${r.errors} |`);
      }
    }
    rows.push("");
    rows.push("| scenario | ts / haproxy | ts-single / haproxy | haproxy / direct |");
    rows.push("|---|---|---|---|");
    for (const [name, r] of Object.entries(results)) {
      const ratio = (a: WrkResult, b: WrkResult): string => fmt(a.requestsPerSec / b.requestsPerSec, 2);
      rows.push(`| ${name} | ${ratio(r.ts!, r.haproxy!)} | ${ratio(r["ts-single"]!, r.haproxy!)} | ${ratio(r.haproxy!, r.direct!)} |`);
    }
    process.stdout.write(rows.join("\n") + "\n");
  } finally {
    await sb.teardown();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
