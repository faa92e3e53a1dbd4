// The machine image of the local cloud: what a Hetzner server runs that a network namespace on
// this machine cannot. One script, called by name from /usr/local/sbin on each machine:
//   systemctl   systemd: Quadlet .container units (long-running, or Type=oneshot runs as start
//               jobs), plain oneshot units, and timers (state only: they never fire here)
//   podman      containers without images: the image's program (or --entrypoint) is this
//               machine's binary of that name, run with the container's mounts, env and network
//   cloud-init  applies the user data (write_files, runcmd) once at boot; `status --wait`
//   sysctl      applies only per-network-namespace keys (the kernel is shared with this machine)
//   apt-get     the image already holds every package; nothing is installed
// docs/local-engine.md says what each models and what it does not.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import {
  containerNameOf, execLine, isOneshot, parsePodmanRun, parseUnitFile, podmanRunArgs, timeSpanMs, unitValue, unitValues, type PodmanRun, type UnitFile,
} from "./unit-files";

const STATE = "/var/lib/local-machine";
const QUADLET_DIR = "/etc/containers/systemd";
const UNIT_DIR = "/etc/systemd/system";
const CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The node that runs this script: the `node` of the node image. */
const NODE = process.execPath;

/** A failure that ends the tool with the status the real one gives for it (systemctl's 5 for a unit it cannot find, podman's 127). */
class ToolExit extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function log(file: string, line: string): void {
  mkdirSync(STATE, { recursive: true });
  appendFileSync(join(STATE, file), `${new Date().toISOString()} ${line}\n`);
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** A process's start time: with the pid, it names that process and no later one with its pid. */
function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Writes a pid file; returns its text, which names that process and no other. */
function writePid(file: string, pid: number): string {
  const text = `${pid} ${startTime(pid) ?? ""}\n`;
  writeFileSync(file, text);
  return text;
}

/** A pid file's process, if that very process still exists, and the file's text (its identity). */
interface PidRecord {
  readonly pid: number;
  readonly id: string;
}

/**
 * The process a pid file's text names, if it still exists: machines share this machine's pid
 * space, so a pid left by a crashed daemon may by now be anyone's.
 */
function pidRecordOf(text: string): PidRecord | undefined {
  const [pidText, started] = text.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return started === undefined || started === "" || startTime(pid) === started ? { pid, id: text.trim() } : undefined;
}

function readPid(file: string): number | undefined {
  const text = readText(file);
  return text === undefined ? undefined : pidRecordOf(text)?.pid;
}

/** A live process (not a zombie waiting for its parent). */
function alive(pid: number | undefined): pid is number {
  if (pid === undefined) return false;
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== "Z";
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function stopPid(pid: number | undefined, timeoutMs = 10_000): void {
  if (!alive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let t = 0; t < timeoutMs && alive(pid); t += 50) sleepMs(50);
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

// --- podman ---------------------------------------------------------------------------------

const containerPid = (name: string): string => join(STATE, "containers", `${name}.pid`);
const containerLog = (name: string): string => join(STATE, "containers", `${name}.log`);

/** Where a path of the container is on this machine: under a volume's target, in its source. */
function hostPathOf(run: PodmanRun, path: string): string {
  const v = run.volumes.filter((m) => path === m.target || path.startsWith(`${m.target}/`)).sort((a, b) => b.target.length - a.target.length)[0];
  return v === undefined ? path : `${v.source}${path.slice(v.target.length)}`;
}

function binaryOf(run: PodmanRun, program: string | undefined): string {
  if (program === undefined) throw new Error(`podman run ${run.image}: no command (the local machine runs the image's program by name)`);
  if (program.includes("/")) {
    // The container's root is this machine's: a path runs as is, where the container sees it.
    if (!existsSync(hostPathOf(run, program))) {
      throw new ToolExit(`Error: crun: executable file \`${program}\` not found: No such file or directory: OCI runtime attempted to invoke a command that was not found`, 127);
    }
    return program;
  }
  if (program === "node") return NODE;
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) if (existsSync(join(dir, program))) return join(dir, program);
  throw new Error(`podman run ${run.image}: this machine has no ${program} to stand in for the image's`);
}

function envFileVars(file: string): string[] {
  if (!existsSync(file)) throw new Error(`Error: open ${file}: no such file or directory`);
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** argv that runs the container's program in its own mount namespace (and network, for --network none). */
function containerArgv(run: PodmanRun): { argv: string[]; env: Record<string, string> } {
  const steps: string[] = [];
  for (const v of run.volumes) {
    // podman refuses a bind whose source does not exist, and so does this.
    if (!existsSync(v.source)) throw new Error(`Error: statfs ${v.source}: no such file or directory`);
    steps.push(`mkdir -p ${shq(v.target)}`, `mount --bind ${shq(v.source)} ${shq(v.target)}`);
    if (v.readOnly) steps.push(`mount -o remount,bind,ro ${shq(v.target)}`);
  }
  for (const t of run.tmpfs) steps.push(`mkdir -p ${shq(t.target)}`, `mount -t tmpfs -o ${shq(t.options)} tmpfs ${shq(t.target)}`);
  // A container user: that uid and gid, no supplementary groups, and of the added
  // capabilities only what a non-root process keeps (ambient), as podman gives them.
  let drop = "";
  if (run.user !== undefined) {
    const [uid, gid = uid] = run.user.split(":");
    for (const c of run.capAdd) if (!/^(CAP_)?[A-Z_]+$/.test(c)) throw new Error(`podman run: --cap-add ${c} is not a capability name`);
    const caps = run.capAdd.map((c) => `+${c.toLowerCase().replace(/^cap_/, "")}`).join(",");
    drop = `setpriv --reuid=${uid} --regid=${gid} --clear-groups${caps ? ` --inh-caps=${caps} --ambient-caps=${caps}` : ""} `;
  }
  steps.push("cd /", `exec ${drop}"$@"`);
  // podman runs the entrypoint with the command as its arguments; without one, the command alone.
  const [program, ...args] = run.entrypoint === undefined ? run.command : [run.entrypoint, ...run.command];
  const env: Record<string, string> = { PATH: CONTAINER_PATH, HOME: "/root", container: "podman" };
  for (const line of [...run.envFiles.flatMap(envFileVars), ...run.env]) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const unshare = ["unshare", "--mount", "--propagation", "private", ...(run.network === "none" ? ["--net"] : [])];
  return { argv: [...unshare, "sh", "-c", steps.join(" && "), "sh", binaryOf(run, program), ...args], env };
}

/** podman refuses a name a running container has; with --replace that one is stopped first. */
function takeName(name: string, replace: boolean): void {
  const pid = readPid(containerPid(name));
  if (!alive(pid)) return;
  if (!replace) throw new Error(`Error: the container name "${name}" is already in use`);
  stopPid(pid);
}

/** How a child ended, as podman reports a container's end: its exit code, or 128 + the signal that killed it. */
function exitStatus(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
}

/**
 * `podman run` without -d: the container runs in podman's foreground and podman exits with its
 * status. A named one is findable (podman stop, kill) while it runs; signals podman gets are
 * passed on to it (podman's --sig-proxy), which is how systemd's stop of the unit reaches it.
 */
async function runForeground(argv: readonly string[], env: Record<string, string>, name: string | undefined): Promise<number> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit", env });
  const status = exitStatus(child);
  const pidFile = name === undefined || child.pid === undefined ? undefined : containerPid(name);
  let mine = "";
  if (pidFile !== undefined) {
    mkdirSync(dirname(pidFile), { recursive: true });
    mine = writePid(pidFile, child.pid!);
  }
  const proxy = (signal: NodeJS.Signals): void => void child.kill(signal);
  const proxied = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
  for (const s of proxied) process.on(s, proxy);
  try {
    return await status;
  } finally {
    for (const s of proxied) process.off(s, proxy);
    // Only our own record: a --replace run may have taken the name since.
    if (pidFile !== undefined && readText(pidFile) === mine) rmSync(pidFile, { force: true });
  }
}

async function podman(args: readonly string[]): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case "run": {
      const run = parsePodmanRun(rest);
      const { argv, env } = containerArgv(run);
      if (run.name !== undefined) takeName(run.name, run.replace);
      if (!run.detach) return runForeground(argv, env, run.name);
      const name = run.name ?? `c${Date.now()}`;
      const pidFile = containerPid(name);
      mkdirSync(dirname(pidFile), { recursive: true });
      const out = openSync(containerLog(name), "a");
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", out, out], env, detached: true });
      writePid(pidFile, child.pid!);
      child.unref();
      log("podman.log", `run ${name} (pid ${child.pid}): ${run.command.join(" ")}`);
      process.stdout.write(`${name}\n`);
      return 0;
    }
    case "kill": {
      let signal = "SIGKILL";
      const names: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i]!;
        if (a === "--signal" || a === "-s") signal = rest[++i] ?? signal;
        else if (a.startsWith("--signal=")) signal = a.slice(9);
        else names.push(a);
      }
      for (const name of names) {
        const pid = readPid(containerPid(name));
        if (!alive(pid)) {
          process.stderr.write(`Error: no container with name or ID "${name}" found\n`);
          return 125;
        }
        process.kill(pid, signal.startsWith("SIG") ? signal : `SIG${signal}`);
      }
      return 0;
    }
    case "stop":
    case "rm": {
      for (const name of rest.filter((a) => !a.startsWith("-"))) {
        stopPid(readPid(containerPid(name)));
        rmSync(containerPid(name), { force: true });
      }
      return 0;
    }
    default:
      throw new Error(`podman ${verb ?? ""}: not modelled by the local machine`);
  }
}

// --- systemctl ------------------------------------------------------------------------------

type Unit =
  | { readonly kind: "container"; readonly name: string; readonly id: string; readonly file: string }
  /** A Quadlet unit with Type=oneshot: each start is a job that runs the container to its end. */
  | { readonly kind: "container-job"; readonly name: string; readonly id: string; readonly file: string }
  | { readonly kind: "plain"; readonly name: string; readonly id: string; readonly file: string }
  | { readonly kind: "timer"; readonly name: string; readonly id: string; readonly file: string }
  | { readonly kind: "sshd"; readonly name: string; readonly id: string };
type JobUnit = Extract<Unit, { kind: "container-job" }>;
type TimerUnit = Extract<Unit, { kind: "timer" }>;
type ActiveState = "active" | "inactive" | "activating" | "failed";

/** The full name systemctl reports: a bare name is a service. */
function unitId(arg: string): string {
  return /\.(service|timer)$/.test(arg) ? arg : `${arg}.service`;
}

/** The unit systemd would have loaded for `arg`, if its file exists. */
function findUnit(arg: string): Unit | undefined {
  const id = unitId(arg);
  if (id.endsWith(".timer")) {
    const file = join(UNIT_DIR, id);
    return existsSync(file) ? { kind: "timer", name: id.slice(0, -".timer".length), id, file } : undefined;
  }
  const name = id.slice(0, -".service".length);
  if (name === "ssh" || name === "sshd") return { kind: "sshd", name, id };
  const quadlet = join(QUADLET_DIR, `${name}.container`);
  if (existsSync(quadlet)) {
    const unit = parseUnitFile(readFileSync(quadlet, "utf8"));
    if (!isOneshot(unit)) return { kind: "container", name, id, file: quadlet };
    // systemd would keep such a unit active after its run, and run ExecStopPost only at its stop.
    if (unitValue(unit, "Service", "RemainAfterExit") === "yes") throw new Error(`${id}: RemainAfterExit=yes on a oneshot Quadlet unit is not modelled by the local machine`);
    return { kind: "container-job", name, id, file: quadlet };
  }
  const plain = join(UNIT_DIR, id);
  return existsSync(plain) ? { kind: "plain", name, id, file: plain } : undefined;
}

/** The unit, or systemctl's error for `verb` on a unit it has no file for, with systemctl's status. */
function unitOf(verb: string, arg: string): Unit {
  const u = findUnit(arg);
  if (u !== undefined) return u;
  const id = unitId(arg);
  switch (verb) {
    case "enable":
    case "disable":
      throw new ToolExit(`Failed to ${verb} unit: Unit file ${id} does not exist.`, 1);
    case "stop":
      throw new ToolExit(`Failed to stop ${id}: Unit ${id} not loaded.`, 5);
    default:
      throw new ToolExit(`Failed to ${verb} ${id}: Unit ${id} not found.`, 5);
  }
}

function readUnit(u: Exclude<Unit, { kind: "sshd" }>): UnitFile {
  return parseUnitFile(readFileSync(u.file, "utf8"));
}

const unitsPath = (file: string): string => join(STATE, "units", file);
const activeFile = (name: string): string => unitsPath(`${name}.active`);
/** A timer records only that it is enabled and started: it never fires here (docs/local-engine.md). */
const timerFile = (u: TimerUnit, what: "enabled" | "active"): string => unitsPath(`${u.id}.${what}`);
/** The pid file of the running start job of a oneshot unit. */
const jobFile = (u: JobUnit): string => unitsPath(`${u.id}.job`);
/** One line per finished job: its pid file's text and how it ended. */
const jobHistory = (u: JobUnit): string => unitsPath(`${u.id}.jobs`);

function setFlag(file: string, on: boolean): void {
  if (!on) return rmSync(file, { force: true });
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, "");
}

/** Where a unit's output goes (its journal, on systemd): a Quadlet unit's is its container's log. */
function unitLog(u: Unit): string {
  if (u.kind === "container" || u.kind === "container-job") return containerLog(containerNameOf(u.name, readUnit(u)));
  return unitsPath(`${u.id}.log`);
}

function stateOf(u: Unit): ActiveState {
  switch (u.kind) {
    case "sshd":
      return alive(readPid(join(STATE, "sshd.pid"))) ? "active" : "inactive";
    case "container":
      return alive(readPid(containerPid(containerNameOf(u.name, readUnit(u))))) ? "active" : "inactive";
    case "container-job": {
      if (alive(readPid(jobFile(u)))) return "activating";
      // Without RemainAfterExit a oneshot is never active: inactive after a good run, failed after a bad one.
      const last = lastJobResult(u);
      return last === "exit-code" || last === "timeout" ? "failed" : "inactive";
    }
    case "plain":
      return existsSync(activeFile(u.name)) ? "active" : "inactive";
    case "timer":
      return existsSync(timerFile(u, "active")) ? "active" : "inactive";
  }
}

/** Runs Exec lines in order as systemd does; the first failure without the "-" prefix stops them and is returned. */
async function runExec(lines: readonly string[]): Promise<string | undefined> {
  for (const line of lines) {
    const { ignoreFailure, argv } = execLine(line);
    const [program, ...args] = argv;
    if (program === undefined) continue;
    let status: number;
    if (program.endsWith("/podman") || program === "podman") {
      status = await podman(args);
    } else {
      const r = spawnSync(program, args, { stdio: "inherit" });
      if (r.error) process.stderr.write(`${program}: ${r.error.message}\n`);
      status = r.status ?? 1;
    }
    if (status !== 0 && !ignoreFailure) return `${argv.join(" ")} exited ${status}`;
  }
  return undefined;
}

// A oneshot Quadlet unit's start is a job, run in a process of its own as systemd runs jobs apart
// from the systemctl that asked for them: a caller that goes away (an ssh session, a test's
// timeout) does not cut the run short of its ExecStopPost.

/** How a start job ended (a service's Result, or canceled by a stop); a job process's exit status is its index. */
const JOB_RESULTS = ["success", "exit-code", "timeout", "canceled"] as const;
type JobResult = (typeof JOB_RESULTS)[number];
/** The hidden systemctl verb that is a job's process. */
const JOB_VERB = "local-machine-job";
/** What systemd gives a service's processes: no caller's environment. */
const SERVICE_ENV = { PATH: CONTAINER_PATH };
/** systemd's DefaultTimeoutStopSec: how long a stop waits for a job before killing it. */
const STOP_TIMEOUT_MS = 90_000;

function jobResults(u: JobUnit): { readonly id: string; readonly result: JobResult }[] {
  return (readText(jobHistory(u)) ?? "")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const cut = l.lastIndexOf(" ");
      return { id: l.slice(0, cut), result: JOB_RESULTS.find((r) => r === l.slice(cut + 1)) ?? "exit-code" };
    });
}

function lastJobResult(u: JobUnit): JobResult | undefined {
  return jobResults(u).at(-1)?.result;
}

/**
 * Takes a pid file for this process, atomically (a hard link fails where one exists), or finds
 * the live process that holds it. A holder that died without letting go is stale and removed.
 */
function claimPidFile(file: string): PidRecord | undefined {
  mkdirSync(dirname(file), { recursive: true });
  const mine = `${file}.${process.pid}`;
  writePid(mine, process.pid);
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        return undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const text = readText(file);
      if (text === undefined) continue; // let go of meanwhile: try again
      const holder = pidRecordOf(text);
      if (holder !== undefined && alive(holder.pid)) return holder;
      // Left by a job killed with its machine. Removed only if unchanged, so a job that took it since keeps it.
      if (readText(file) === text) rmSync(file, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
}

/** The process of a start job: runs the unit once, or, while another job runs it, waits for that one and ends as it did (systemd merges the two starts). */
async function startJobProcess(u: JobUnit): Promise<JobResult> {
  const holder = claimPidFile(jobFile(u));
  if (holder !== undefined) {
    while (alive(holder.pid)) await sleep(100);
    // A job with no result line was killed: systemd would call that a failure.
    return jobResults(u).findLast((j) => j.id === holder.id)?.result ?? "exit-code";
  }
  const id = readText(jobFile(u))!.trim();
  let result: JobResult = "exit-code";
  try {
    result = await runOneshot(u);
    return result;
  } finally {
    appendFileSync(jobHistory(u), `${id} ${result}\n`);
    rmSync(jobFile(u), { force: true });
  }
}

/**
 * One run of a oneshot Quadlet unit, in systemd's order: ExecStart (the podman run Quadlet
 * generates, in the foreground), then after a good one ExecStartPost and ExecStop, then
 * ExecStopPost whatever happened. TimeoutStartSec (none by default for a oneshot) bounds the
 * container's run; a SIGTERM (systemctl stop) reaches the container and cancels the job.
 */
async function runOneshot(u: JobUnit): Promise<JobResult> {
  const unit = readUnit(u);
  const say = (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${u.id}: ${line}\n`);
  let canceled = false;
  const cancel = (): void => void (canceled = true);
  process.on("SIGTERM", cancel);
  let timedOut = false;
  const timeoutMs = timeSpanMs(unitValue(unit, "Service", "TimeoutStartSec") ?? "infinity");
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          stopPid(readPid(containerPid(containerNameOf(u.name, unit))));
        }, timeoutMs);
  say(`Starting ${unitValue(unit, "Unit", "Description") ?? u.id}...`);
  let status: number;
  try {
    status = await podman(podmanRunArgs(u.name, unit));
  } catch (e) {
    // podman's own refusals (a bind or env file that does not exist) end the run as podman does.
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    status = e instanceof ToolExit ? e.status : 125;
  } finally {
    clearTimeout(timer);
  }
  let result: JobResult = canceled ? "canceled" : timedOut ? "timeout" : status === 0 ? "success" : "exit-code";
  if (status !== 0) say(`Main process exited, code=exited, status=${status}`);
  for (const key of ["ExecStartPost", "ExecStop"]) {
    if (result !== "success") break;
    const failed = await runExec(unitValues(unit, "Service", key));
    if (failed !== undefined) {
      say(`${key}: ${failed}`);
      result = "exit-code";
    }
  }
  const failed = await runExec(unitValues(unit, "Service", "ExecStopPost"));
  if (failed !== undefined) {
    say(`ExecStopPost: ${failed}`);
    if (result === "success") result = "exit-code";
  }
  // The handler stays to the process's end: a stop arriving now must not kill the job before it records its result.
  if (canceled) result = "canceled";
  say(result === "success" ? "Deactivated successfully." : result === "canceled" ? "Stopped." : `Failed with result '${result}'.`);
  return result;
}

/** This script again as another call of a tool, on systemd's side: its own session, a service's environment, output to `log`. */
function spawnSelf(args: readonly string[], log: string): ChildProcess {
  mkdirSync(dirname(log), { recursive: true });
  const out = openSync(log, "a");
  try {
    return spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], { detached: true, stdio: ["ignore", out, out], env: SERVICE_ENV, cwd: "/" });
  } finally {
    closeSync(out);
  }
}

/** `systemctl start` of a oneshot unit: returns when its job has ended, failing as systemctl does. */
async function startJob(u: JobUnit): Promise<void> {
  const ended = JOB_RESULTS[await exitStatus(spawnSelf(["systemctl", JOB_VERB, u.id], unitLog(u)))] ?? "exit-code";
  const see = `See ${unitLog(u)} for details.`;
  switch (ended) {
    case "success":
      return;
    case "exit-code":
      throw new ToolExit(`Job for ${u.id} failed because the control process exited with error code.\n${see}`, 1);
    case "timeout":
      throw new ToolExit(`Job for ${u.id} failed because a timeout was exceeded.\n${see}`, 1);
    case "canceled":
      throw new ToolExit(`Job for ${u.id} canceled.`, 1);
  }
}

/** A timer's start: systemd refuses one whose unit to trigger is not loaded. */
function startTimer(u: TimerUnit): void {
  const trigger = unitValue(readUnit(u), "Timer", "Unit") ?? `${u.name}.service`;
  if (findUnit(trigger) === undefined) throw new ToolExit(`Job for ${u.id} failed.\n${u.id}: Refusing to start, unit ${trigger} to trigger not loaded.`, 1);
  setFlag(timerFile(u, "active"), true);
}

async function startUnit(u: Unit): Promise<void> {
  switch (u.kind) {
    case "sshd":
      return;
    case "container": {
      const status = await podman(podmanRunArgs(u.name, readUnit(u)));
      if (status !== 0) throw new Error(`Job for ${u.id} failed (podman run exited ${status})`);
      return;
    }
    case "container-job":
      return startJob(u);
    case "plain": {
      const unit = readUnit(u);
      const failed = await runExec(unitValues(unit, "Service", "ExecStart"));
      if (failed !== undefined) throw new Error(`Job for ${u.id} failed: ${failed}`);
      if (unitValue(unit, "Service", "RemainAfterExit") === "yes") setFlag(activeFile(u.name), true);
      return;
    }
    case "timer":
      return startTimer(u);
  }
}

async function stopUnit(u: Unit): Promise<void> {
  switch (u.kind) {
    case "sshd":
      return;
    case "container":
      await podman(["stop", containerNameOf(u.name, readUnit(u))]);
      return;
    case "container-job": {
      // systemd cancels a running start job: SIGTERM to its process, which podman passes to the
      // container; the job then runs ExecStopPost, and the stop returns once it has ended.
      stopPid(readPid(jobFile(u)), STOP_TIMEOUT_MS);
      stopPid(readPid(containerPid(containerNameOf(u.name, readUnit(u)))));
      return;
    }
    case "plain":
      return setFlag(activeFile(u.name), false);
    case "timer":
      return setFlag(timerFile(u, "active"), false);
  }
}

async function restartUnit(u: Unit): Promise<void> {
  await stopUnit(u);
  await startUnit(u);
}

function reloadLines(u: Unit): readonly string[] {
  return u.kind === "sshd" || u.kind === "timer" ? [] : unitValues(readUnit(u), "Service", "ExecReload");
}

async function reloadUnit(u: Unit): Promise<void> {
  if (u.kind === "sshd") {
    const pid = readPid(join(STATE, "sshd.pid"));
    if (!alive(pid)) throw new Error("ssh.service is not active, cannot reload.");
    process.kill(pid, "SIGHUP");
    return;
  }
  const reload = reloadLines(u);
  if (reload.length === 0) throw new Error(`Failed to reload ${u.id}: Job type reload is not applicable for unit ${u.id}.`);
  const failed = await runExec(reload);
  if (failed !== undefined) throw new Error(`reload of ${u.id} failed: ${failed}`);
}

function jobUnit(arg: string | undefined): JobUnit {
  const u = unitOf("start", arg ?? "");
  if (u.kind !== "container-job") throw new Error(`systemctl ${JOB_VERB} ${u.id}: not a oneshot Quadlet unit`);
  return u;
}

async function systemctl(args: readonly string[]): Promise<number> {
  if (args[0] === JOB_VERB) return JOB_RESULTS.indexOf(await startJobProcess(jobUnit(args[1])));
  log("systemctl.log", args.join(" "));
  const options = new Set(args.filter((a) => a.startsWith("-")));
  const now = options.has("--now");
  const quiet = options.has("--quiet") || options.has("-q");
  const [verb, ...units] = args.filter((a) => !a.startsWith("-"));
  if (options.has("--no-block") && verb !== "start") throw new Error(`systemctl --no-block ${verb ?? ""}: not modelled by the local machine`);
  switch (verb) {
    case "daemon-reload":
      return 0;
    case "is-active": {
      // As systemctl: each unit's state on stdout unless --quiet; 0 if any of them is active.
      const states = units.map((n) => {
        const u = findUnit(n);
        return u === undefined ? "inactive" : stateOf(u);
      });
      if (!quiet) process.stdout.write(states.map((s) => `${s}\n`).join(""));
      return states.includes("active") ? 0 : 3;
    }
    case "is-enabled": {
      const states = units.map((n) => {
        const u = findUnit(n);
        if (u === undefined) throw new ToolExit(`Failed to get unit file state for ${unitId(n)}: No such file or directory`, 1);
        if (u.kind !== "timer") throw new Error(`systemctl is-enabled ${u.id}: not modelled by the local machine (timers only)`);
        return existsSync(timerFile(u, "enabled")) ? "enabled" : "disabled";
      });
      if (!quiet) process.stdout.write(states.map((s) => `${s}\n`).join(""));
      return states.includes("enabled") ? 0 : 1;
    }
    case "enable":
    case "disable":
      for (const n of units) {
        const u = unitOf(verb, n);
        // Only a timer's enablement is kept: it is what `is-enabled` is asked about.
        if (u.kind === "timer") setFlag(timerFile(u, "enabled"), verb === "enable");
        if (now && verb === "enable" && stateOf(u) !== "active") await startUnit(u);
        if (now && verb === "disable") await stopUnit(u);
      }
      return 0;
    case "start":
      for (const n of units) {
        const u = unitOf(verb, n);
        if (stateOf(u) === "active") continue;
        // --no-block: the start proceeds on systemd's side; this returns at once.
        if (options.has("--no-block") && u.kind !== "timer" && u.kind !== "sshd") spawnSelf(["systemctl", "start", u.id], unitLog(u)).unref();
        else await startUnit(u);
      }
      return 0;
    case "stop":
      for (const n of units) await stopUnit(unitOf(verb, n));
      return 0;
    case "restart":
      for (const n of units) await restartUnit(unitOf(verb, n));
      return 0;
    case "try-restart":
      for (const n of units) {
        const u = unitOf(verb, n);
        if (stateOf(u) === "active") await restartUnit(u);
      }
      return 0;
    case "reload":
      for (const n of units) {
        const u = unitOf(verb, n);
        if (stateOf(u) !== "active") throw new Error(`${u.id} is not active, cannot reload.`);
        await reloadUnit(u);
      }
      return 0;
    case "reload-or-restart":
    case "try-reload-or-restart":
      for (const n of units) {
        const u = unitOf(verb, n);
        if (stateOf(u) !== "active") {
          if (verb === "reload-or-restart") await startUnit(u);
        } else if (u.kind !== "sshd" && reloadLines(u).length === 0) {
          // A unit that cannot reload is restarted, as systemd does for reload-or-restart.
          await restartUnit(u);
        } else {
          await reloadUnit(u);
        }
      }
      return 0;
    default:
      throw new Error(`systemctl ${verb ?? ""}: not modelled by the local machine`);
  }
}

// --- cloud-init -----------------------------------------------------------------------------

const CLOUD_STATUS = join(STATE, "cloud-init.status");
const USER_DATA = "/var/lib/cloud/instance/user-data.txt";

interface CloudConfig {
  readonly write_files?: readonly { path: string; content?: string; permissions?: string }[];
  readonly runcmd?: readonly (string | readonly string[])[];
  readonly packages?: readonly string[];
}

/** The modules of cloud-init this project's user data uses, in cloud-init's order. */
function cloudInitBoot(): number {
  mkdirSync(STATE, { recursive: true });
  writeFileSync(CLOUD_STATUS, "running\n");
  const errors: string[] = [];
  const out = (line: string) => log("cloud-init-output.log", line);
  try {
    const text = readFileSync(USER_DATA, "utf8");
    if (!text.startsWith("#cloud-config")) throw new Error("user data is not #cloud-config (the only kind the local machine applies)");
    const config = (parse(text) ?? {}) as CloudConfig;
    for (const f of config.write_files ?? []) {
      mkdirSync(dirname(f.path), { recursive: true });
      writeFileSync(f.path, f.content ?? "", { mode: parseInt(f.permissions ?? "0644", 8) });
      out(`write_files: ${f.path}`);
    }
    if (config.packages) out(`packages: ${config.packages.join(" ")} (in the machine image)`);
    for (const cmd of config.runcmd ?? []) {
      const argv = typeof cmd === "string" ? ["sh", "-c", cmd] : [...cmd];
      // cloud-init runs commands with the image's PATH, which finds the image's own tools first.
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", env: { ...process.env, PATH: CONTAINER_PATH } });
      out(`runcmd: ${argv.join(" ")} -> ${r.status}${r.stdout ? `\n${r.stdout.trimEnd()}` : ""}${r.stderr ? `\n${r.stderr.trimEnd()}` : ""}`);
      if (r.status !== 0) errors.push(`runcmd ${argv.join(" ")} exited ${r.status}`);
    }
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }
  writeFileSync(CLOUD_STATUS, errors.length === 0 ? "done\n" : `error\n${errors.join("\n")}\n`);
  return errors.length === 0 ? 0 : 1;
}

function cloudInit(args: readonly string[]): number {
  const [verb] = args;
  if (verb === "boot") return cloudInitBoot();
  if (verb !== "status") throw new Error(`cloud-init ${verb ?? ""}: not modelled by the local machine`);
  const read = () => (existsSync(CLOUD_STATUS) ? readFileSync(CLOUD_STATUS, "utf8") : "not started\n");
  let status = read();
  if (args.includes("--wait")) {
    for (;;) {
      const s = status.split("\n")[0];
      if (s === "done" || s === "error") break;
      sleepMs(250);
      status = read();
    }
  }
  const [state, ...detail] = status.trimEnd().split("\n");
  process.stdout.write(`status: ${state}\n`);
  if (args.includes("--long") && detail.length > 0) process.stdout.write(`errors:\n${detail.map((d) => `\t- ${d}`).join("\n")}\n`);
  return state === "error" ? 1 : 0;
}

// --- sysctl, apt-get ------------------------------------------------------------------------

/** Keys that belong to the network namespace; any other would change this whole machine. */
const PER_NAMESPACE = /^net\.(ipv4|ipv6|netfilter)\.|^net\.core\.somaxconn$/;

function sysctl(args: readonly string[]): number {
  const writes: string[] = [];
  if (args[0] === "--system") {
    for (const dir of ["/etc/sysctl.d"]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).filter((n) => n.endsWith(".conf")).sort()) {
        for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
          const t = line.trim();
          if (t === "" || t.startsWith("#") || t.startsWith(";") || !t.includes("=")) continue;
          writes.push(t.replace(/\s*=\s*/, "="));
        }
      }
    }
  } else if (args[0] === "-w") {
    writes.push(...args.slice(1));
  } else {
    return spawnSync("/usr/sbin/sysctl", [...args], { stdio: "inherit" }).status ?? 1;
  }
  for (const w of writes) {
    const key = w.slice(0, w.indexOf("="));
    if (!PER_NAMESPACE.test(key)) {
      process.stdout.write(`* ${key}: skipped (not per network namespace on the local machine)\n`);
      continue;
    }
    const r = spawnSync("/usr/sbin/sysctl", ["-w", w], { stdio: "inherit" });
    if (r.status !== 0) return r.status ?? 1;
  }
  return 0;
}

function aptGet(args: readonly string[]): number {
  process.stdout.write(`apt-get ${args.join(" ")}: the local machine image already holds its packages\n`);
  return 0;
}

const TOOLS: Record<string, (args: readonly string[]) => number | Promise<number>> = { systemctl, podman, "cloud-init": cloudInit, sysctl, "apt-get": aptGet };

async function main(): Promise<void> {
  const [tool, ...args] = process.argv.slice(2);
  const run = tool === undefined ? undefined : TOOLS[tool];
  if (!run) {
    process.stderr.write(`local machine tools: unknown tool ${tool ?? "(none)"}\n`);
    process.exit(2);
  }
  try {
    process.exitCode = await run(args);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof ToolExit ? e.status : 1;
  }
}

void main();
