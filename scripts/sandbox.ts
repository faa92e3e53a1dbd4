// npm run sandbox -- up|test|down [--stack demo|prod|all] [--engine haproxy|ts]
//
// up    builds the chosen stacks (default all: prod + demo attached to prod's LB) as network
//       namespaces running the rendered configs, and prints how to reach them. A supervisor
//       process owns the sandbox until `down`; its state is in /run/hetzner-ingress-sandbox.
// test  runs the end-to-end checks against the running sandbox, pass/fail per check.
// down  stops everything and verifies that no namespace, process, mount point or file is left.
// See docs/sandbox.md.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Engine } from "../topology";
import { pollUntil, sleep } from "../lab/command";
import { readState, removeState, STATE_FILE, SUPERVISOR_LOG, type SandboxState } from "../sandbox/cli-state";
import { requireBuiltScript } from "../sandbox/proxy-script";
import { SANDBOX_STACKS, type SandboxStacks } from "../sandbox/ingress-plan";
import { INGRESS_SANDBOX_PREFIX, registeredMountPoints, releaseMountPoints, removeRunDirIfEmpty, SANDBOX_RUN_DIR, otherLiveRuns } from "../sandbox/mount-points";
import { missingPrerequisites } from "../sandbox/prerequisites";
import { isLive } from "../lab/procfs";
import { cleanupStale, listNetns } from "../lab/sandbox";
import { requestChecks, supervise } from "../sandbox/supervisor";

const USAGE = "usage: npm run sandbox -- up|test|down [--stack demo|prod|all] [--engine haproxy|ts]";
const ENGINES: readonly Engine[] = ["haproxy", "ts"];
const SUPERVISE = "__supervise";

function fail(message: string): number {
  console.error(message);
  return 1;
}

function options(values: { stack?: string; engine?: string }): { stacks: SandboxStacks; engine: Engine } | string {
  const stacks = (values.stack ?? "all") as SandboxStacks;
  const engine = (values.engine ?? "haproxy") as Engine;
  if (!SANDBOX_STACKS.includes(stacks)) return `--stack must be one of ${SANDBOX_STACKS.join(", ")}`;
  if (!ENGINES.includes(engine)) return `--engine must be one of ${ENGINES.join(", ")}`;
  return { stacks, engine };
}

function supervisorAlive(s: SandboxState | undefined): boolean {
  return s !== undefined && isLive(s.supervisorPid);
}

function logTail(): string {
  try {
    return readFileSync(SUPERVISOR_LOG, "utf8").split("\n").slice(-40).join("\n");
  } catch {
    return "";
  }
}

/** Removes what a dead supervisor left: its namespaces (by owner pid), mount points, state. */
async function cleanupAfterDeadSupervisor(): Promise<string[]> {
  const stale = await cleanupStale(INGRESS_SANDBOX_PREFIX);
  const mounts = releaseMountPoints();
  removeState();
  rmSync(SUPERVISOR_LOG, { force: true });
  removeRunDirIfEmpty();
  return [...stale.namespaces, ...stale.dirs, ...mounts];
}

async function up(stacks: SandboxStacks, engine: Engine): Promise<number> {
  const existing = readState();
  if (supervisorAlive(existing)) {
    return fail(`a sandbox is already up (stacks ${existing?.stacks}, engine ${existing?.engine}, supervisor pid ${existing?.supervisorPid}); run \`npm run sandbox -- down\` first`);
  }
  if (existing) console.log(`cleaned up after a sandbox whose supervisor died: ${(await cleanupAfterDeadSupervisor()).join(", ") || "nothing left"}`);
  if (engine === "ts") {
    try {
      requireBuiltScript();
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  mkdirSync(SANDBOX_RUN_DIR, { recursive: true, mode: 0o700 });
  const log = openSync(SUPERVISOR_LOG, "w", 0o600);
  const t0 = Date.now();
  const child = spawn(process.execPath, [...process.execArgv, __filename, SUPERVISE, "--stack", stacks, "--engine", engine], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  child.unref();
  const pid = child.pid ?? -1;
  let state: SandboxState | undefined;
  try {
    state = await pollUntil(
      "the sandbox to come up",
      async () => {
        const s = readState();
        if (s?.supervisorPid === pid && s.status !== "starting") return s;
        if (!isLive(pid)) return { version: 1, status: "failed", supervisorPid: pid, stacks, engine, startedAt: "", error: "the supervisor exited" } as SandboxState;
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  } catch (e) {
    process.kill(pid, "SIGTERM");
    return fail(`${e instanceof Error ? e.message : String(e)}\n${logTail()}`);
  }
  if (state.status !== "ready") {
    await pollUntil("the supervisor to exit", async () => (isLive(pid) ? undefined : true), { timeoutMs: 20_000 }).catch(() => undefined);
    const cleaned = await cleanupAfterDeadSupervisor();
    return fail(`sandbox failed to come up: ${state.error ?? "unknown error"}\n${logTail()}\n(cleaned up: ${cleaned.join(", ") || "nothing left"})`);
  }
  console.log(`sandbox up in ${((Date.now() - t0) / 1000).toFixed(1)} s; supervisor pid ${pid}, state in ${STATE_FILE}`);
  for (const line of state.summary ?? []) console.log(line);
  console.log("\nnpm run sandbox -- test   runs the end-to-end checks; npm run sandbox -- down   removes everything");
  return 0;
}

async function test(): Promise<number> {
  const state = readState();
  if (!supervisorAlive(state) || state?.status !== "ready") return fail("no sandbox is up: run `npm run sandbox -- up` first");
  console.log(`checks against the sandbox (stacks ${state.stacks}, engine ${state.engine}):`);
  let failed = 0;
  let counts = { pass: 0, fail: 0, skip: 0 };
  const t0 = Date.now();
  await requestChecks((r) => {
    if ("result" in r) {
      const { status, name, detail, ms } = r.result;
      counts = { ...counts, [status]: counts[status] + 1 };
      console.log(`${status.toUpperCase().padEnd(4)} ${name} (${ms} ms)\n       ${detail.split("\n").join("\n       ")}`);
    } else if ("done" in r) failed = r.failed;
    else {
      failed++;
      console.log(`ERROR ${r.error}`);
    }
  });
  console.log(`\n${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return failed === 0 && counts.fail === 0 ? 0 : 1;
}

async function down(): Promise<number> {
  const state = readState();
  if (!state) {
    const cleaned = await cleanupAfterDeadSupervisor();
    console.log(cleaned.length > 0 ? `no sandbox was up; removed leftovers: ${cleaned.join(", ")}` : "no sandbox is up");
    return 0;
  }
  if (isLive(state.supervisorPid)) {
    process.kill(state.supervisorPid, "SIGTERM");
    try {
      await pollUntil("the supervisor to tear down", async () => (isLive(state.supervisorPid) ? undefined : true), { timeoutMs: 20_000, intervalMs: 50 });
    } catch {
      console.error("the supervisor did not finish in 20 s; killing it and cleaning up directly");
      process.kill(state.supervisorPid, "SIGKILL");
      await sleep(200);
    }
  }
  await cleanupAfterDeadSupervisor();

  const left: string[] = [];
  if (state.namePrefix) left.push(...listNetns().filter((n) => n.startsWith(state.namePrefix ?? "-")).map((n) => `namespace ${n}`));
  for (const [name, pid] of Object.entries(state.pids ?? {})) if (isLive(pid)) left.push(`process ${name} (${pid})`);
  if (state.dir && existsSync(state.dir) && state.keepFiles !== true) left.push(`dir ${state.dir}`);
  if (otherLiveRuns().length === 0) left.push(...registeredMountPoints().map((d) => `mount point ${d}`));
  if (existsSync(STATE_FILE)) left.push(`file ${STATE_FILE}`);
  if (left.length > 0) return fail(`down left something behind:\n  ${left.join("\n  ")}`);
  const n = Object.keys(state.namespaces ?? {}).length;
  const kept = state.keepFiles === true ? ` (IG_SANDBOX_KEEP=1: files kept in ${state.dir})` : "";
  console.log(`sandbox down: ${n} namespaces and their daemons gone, temp dir and mount points removed, nothing left${kept}`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { stack: { type: "string" }, engine: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  const [command] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const o = options(values);
  if (typeof o === "string") return fail(`${o}\n${USAGE}`);
  if (command === SUPERVISE) {
    const proxyScript = o.engine === "ts" ? readFileSync(requireBuiltScript(), "utf8") : undefined;
    await supervise({ ...o, ...(proxyScript !== undefined ? { proxyScript } : {}) });
    return process.exitCode === 1 ? 1 : -1; // -1: keep running until a signal
  }
  if (command !== "up" && command !== "test" && command !== "down") return fail(USAGE);
  const missing = missingPrerequisites();
  if (missing.length > 0) return fail(`the sandbox needs:\n  - ${missing.join("\n  - ")}`);
  switch (command) {
    case "up":
      return up(o.stacks, o.engine);
    case "test":
      return test();
    case "down":
      return down();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
