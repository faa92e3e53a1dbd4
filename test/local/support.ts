// Drives `npm run local` as a user would, each command its own process, against a local cloud
// of this test's own (run dir, state and bundles in temp dirs), and looks at the result from
// the client's and the operator's namespaces.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { run, type RunResult } from "../../lab/command";
import type { HaproxyServerState } from "../../lab/haproxy-stats";
import { onServer as onMachine } from "../../local/cloud/machine";
import { readServerStates } from "../../sandbox/ingress-sandbox";
import { runLocal } from "../../sandbox/sandbox-run";
import type { CloudInfo, ServerInfo } from "../../local/cloud/cloud";
import { CLIENT } from "../../local/cloud/cloud";

export interface LocalRun {
  readonly env: NodeJS.ProcessEnv;
  readonly dir: string;
}

export function localRun(extraEnv: Readonly<Record<string, string>> = {}): LocalRun {
  const dir = mkdtempSync(join(tmpdir(), "local-engine-test-"));
  return {
    dir,
    env: {
      ...process.env,
      HETZNER_INGRESS_LOCAL_RUN: `/run/hetzner-ingress-local-test-${process.pid}`,
      HETZNER_INGRESS_LOCAL_STATE: join(dir, "state"),
      HETZNER_INGRESS_BUNDLE_DIR: join(dir, "bundles"),
      ...extraEnv,
    },
  };
}

/** `npm run local -- ARGS` for this run, as the sandbox runs it. */
export function local(l: LocalRun, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<RunResult> {
  return runLocal(l, args, env);
}

export function said(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export async function cloudInfo(l: LocalRun): Promise<CloudInfo> {
  const r = await local(l, ["status"]);
  return JSON.parse(r.stdout) as CloudInfo;
}

export function serverNamed(info: CloudInfo, name: string): ServerInfo {
  const s = info.servers.find((x) => x.name === name);
  if (!s) throw new Error(`no server ${name}; have ${info.servers.map((x) => x.name).join(", ")}`);
  return s;
}

/** The stack outputs `up` printed. */
export function outputsOf(r: RunResult): Record<string, unknown> {
  const at = r.stdout.indexOf("\nOutputs:\n");
  if (at < 0) throw new Error(`no outputs in:\n${said(r)}`);
  const text = r.stdout.slice(at + "\nOutputs:\n".length);
  return JSON.parse(text.slice(0, text.indexOf("\n}\n") + 2)) as Record<string, unknown>;
}

/** Lines of the engine's log where a command ran on a host (ssh or scp). */
export function hostCommands(r: RunResult): string[] {
  return r.stdout.split("\n").filter((l) => /^ {2}(create|update|delete) \S+: (ssh|scp) /.test(l));
}

/** GET https://host/path through the LB from the client; the status code or the curl error. */
export async function viaLb(info: CloudInfo, host: string, lbIp: string, path = "/"): Promise<string> {
  const r = await run(
    ["ip", "netns", "exec", info.clientNetns, "curl", "-sk", "--max-time", "5", "--resolve", `${host}:443:${lbIp}`, "-o", "/dev/null", "-w", "%{http_code}", `https://${host}${path}`],
    { allowFailure: true, timeoutMs: 10_000 },
  );
  return r.code === 0 ? r.stdout.trim() : `curl exit ${r.code}: ${r.stderr.trim()}`;
}

/**
 * Polls until the route answers 200: after a server is replaced, the LB's health check takes
 * `fall` misses to mark the old one DOWN and `rise` passes to bring the new one UP.
 */
export async function until200(info: CloudInfo, host: string, lbIp: string, timeoutMs = 60_000): Promise<string> {
  let last = "";
  return waitFor(`200 from ${host}`, async () => ((last = await viaLb(info, host, lbIp)) === "200" ? last : undefined), timeoutMs).catch(() => last);
}

/** HAProxy's view of every server of a TLS backend, from its stats CSV, as the operator (the stats port's one allowed source) reads it. */
export function serverStates(info: CloudInfo, lbIp: string, password: string): Promise<HaproxyServerState[]> {
  return readServerStates({ netns: info.operatorNetns, lbIp, port: 8404, user: "admin", password, engine: "haproxy" }, 5);
}

/** Polls `probe` until it returns a value, or fails with the last thing it saw. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, last: () => string = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last: ${last()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs argv on a machine of the local cloud. */
export function onServer(s: ServerInfo, argv: readonly string[]): Promise<RunResult> {
  return onMachine(s, argv, 10_000);
}

export interface LoopResult {
  readonly ok: number;
  readonly failed: number;
  /** Seconds since the epoch of each failed request. */
  readonly failures: readonly number[];
}

/** A client that opens a new TLS connection per request, every 50 ms, until stopped. */
export function clientLoop(info: CloudInfo, host: string, lbIp: string): { stop(): Promise<LoopResult> } {
  const file = join(mkdtempSync(join(tmpdir(), "client-loop-")), "log");
  const script = `while :; do c=$(curl -sk --connect-timeout 2 --max-time 5 --resolve ${host}:443:${lbIp} -o /dev/null -w '%{http_code}' https://${host}/); echo "$(date +%s.%N) $c" >>${file}; sleep 0.05; done`;
  const loop = run(["ip", "netns", "exec", info.clientNetns, "setsid", "bash", "-c", script], { allowFailure: true, timeoutMs: 30 * 60_000 });
  return {
    async stop() {
      // The loop's bash is the only process in its session: find it by its script.
      await run(["pkill", "-f", file], { allowFailure: true });
      await loop;
      const lines = readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "");
      rmSync(dirname(file), { recursive: true, force: true });
      const failures = lines.filter((l) => l.split(" ")[1] !== "200").map((l) => Number(l.split(" ")[0]));
      return { ok: lines.length - failures.length, failed: failures.length, failures };
    },
  };
}

export { CLIENT };
