// The machine image of the local cloud: what a Hetzner server runs that a network namespace on
// this machine cannot. One script, called by name from /usr/local/sbin on each machine:
//   systemctl   systemd: Quadlet .container units and plain oneshot units (no systemd here)
//   podman      containers without images: the image's program is this machine's binary of that
//               name (haproxy, nginx, node), run with the container's mounts, env and network
//   cloud-init  applies the user data (write_files, runcmd) once at boot; `status --wait`
//   sysctl      applies only per-network-namespace keys (the kernel is shared with this machine)
//   apt-get     the image already holds every package; nothing is installed
// docs/local-engine.md says what each models and what it does not.
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { execLine, parsePodmanRun, parseUnitFile, podmanRunArgs, unitValue, unitValues, type PodmanRun } from "./unit-files";

const STATE = "/var/lib/local-machine";
const QUADLET_DIR = "/etc/containers/systemd";
const UNIT_DIR = "/etc/systemd/system";
const CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The node that runs this script: the `node` of the node image. */
const NODE = process.execPath;

function log(file: string, line: string): void {
  mkdirSync(STATE, { recursive: true });
  appendFileSync(join(STATE, file), `${new Date().toISOString()} ${line}\n`);
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

function writePid(file: string, pid: number): void {
  writeFileSync(file, `${pid} ${startTime(pid) ?? ""}\n`);
}

/**
 * The pid a pid file names, if that very process still runs: machines share this machine's pid
 * space, so a pid left by a crashed daemon may by now be anyone's.
 */
function readPid(file: string): number | undefined {
  try {
    const [pidText, started] = readFileSync(file, "utf8").trim().split(" ");
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return started === undefined || started === "" || startTime(pid) === started ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A live process (not a zombie waiting for its parent). */
function alive(pid: number | undefined): pid is number {
  if (pid === undefined) return false;
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== "Z";
}

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

function binaryOf(image: string, program: string | undefined): string {
  if (program === undefined) throw new Error(`podman run ${image}: no command (the local machine runs the image's program by name)`);
  if (program.includes("/")) return program;
  if (program === "node") return NODE;
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) if (existsSync(join(dir, program))) return join(dir, program);
  throw new Error(`podman run ${image}: this machine has no ${program} to stand in for the image's`);
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
  const [program, ...args] = run.command;
  const env: Record<string, string> = { PATH: CONTAINER_PATH, HOME: "/root", container: "podman" };
  for (const line of [...run.envFiles.flatMap(envFileVars), ...run.env]) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const unshare = ["unshare", "--mount", "--propagation", "private", ...(run.network === "none" ? ["--net"] : [])];
  return { argv: [...unshare, "sh", "-c", steps.join(" && "), "sh", binaryOf(run.image, program), ...args], env };
}

function podman(args: readonly string[]): number {
  const [verb, ...rest] = args;
  switch (verb) {
    case "run": {
      const run = parsePodmanRun(rest);
      const { argv, env } = containerArgv(run);
      if (!run.detach) {
        const r = spawnSync(argv[0]!, argv.slice(1), { stdio: "inherit", env });
        return r.status ?? 125;
      }
      const name = run.name ?? `c${Date.now()}`;
      const pidFile = containerPid(name);
      if (alive(readPid(pidFile))) {
        if (!run.replace) throw new Error(`Error: the container name "${name}" is already in use`);
        stopPid(readPid(pidFile));
      }
      mkdirSync(dirname(pidFile), { recursive: true });
      const out = openSync(join(STATE, "containers", `${name}.log`), "a");
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
  | { readonly kind: "container"; readonly name: string; readonly file: string }
  | { readonly kind: "plain"; readonly name: string; readonly file: string }
  | { readonly kind: "sshd"; readonly name: string };

function unitOf(arg: string): Unit {
  const name = arg.replace(/\.service$/, "");
  if (name === "ssh" || name === "sshd") return { kind: "sshd", name };
  const quadlet = join(QUADLET_DIR, `${name}.container`);
  if (existsSync(quadlet)) return { kind: "container", name, file: quadlet };
  const plain = join(UNIT_DIR, `${name}.service`);
  if (existsSync(plain)) return { kind: "plain", name, file: plain };
  throw new Error(`Unit ${name}.service not found.`);
}

const activeFile = (name: string): string => join(STATE, "units", `${name}.active`);

function unitActive(u: Unit): boolean {
  switch (u.kind) {
    case "sshd":
      return alive(readPid(join(STATE, "sshd.pid")));
    case "container": {
      const name = unitValue(parseUnitFile(readFileSync(u.file, "utf8")), "Container", "ContainerName") ?? `systemd-${u.name}`;
      return alive(readPid(containerPid(name)));
    }
    case "plain":
      return existsSync(activeFile(u.name));
  }
}

function runExec(lines: readonly string[], what: string): void {
  for (const line of lines) {
    const { ignoreFailure, argv } = execLine(line);
    const [program, ...args] = argv;
    if (program === undefined) continue;
    const status = program.endsWith("/podman") || program === "podman" ? podman(args) : (spawnSync(program, args, { stdio: "inherit" }).status ?? 1);
    if (status !== 0 && !ignoreFailure) throw new Error(`${what}: ${argv.join(" ")} exited ${status}`);
  }
}

function startUnit(u: Unit): void {
  switch (u.kind) {
    case "sshd":
      return;
    case "container": {
      const status = podman(podmanRunArgs(u.name, parseUnitFile(readFileSync(u.file, "utf8"))));
      if (status !== 0) throw new Error(`Job for ${u.name}.service failed (podman run exited ${status})`);
      return;
    }
    case "plain": {
      const unit = parseUnitFile(readFileSync(u.file, "utf8"));
      runExec(unitValues(unit, "Service", "ExecStart"), `Job for ${u.name}.service failed`);
      if (unitValue(unit, "Service", "RemainAfterExit") === "yes") {
        mkdirSync(dirname(activeFile(u.name)), { recursive: true });
        writeFileSync(activeFile(u.name), "");
      }
      return;
    }
  }
}

function stopUnit(u: Unit): void {
  switch (u.kind) {
    case "sshd":
      return;
    case "container": {
      const name = unitValue(parseUnitFile(readFileSync(u.file, "utf8")), "Container", "ContainerName") ?? `systemd-${u.name}`;
      podman(["stop", name]);
      return;
    }
    case "plain":
      rmSync(activeFile(u.name), { force: true });
      return;
  }
}

function restartUnit(u: Unit): void {
  stopUnit(u);
  startUnit(u);
}

function reloadUnit(u: Unit): void {
  switch (u.kind) {
    case "sshd": {
      const pid = readPid(join(STATE, "sshd.pid"));
      if (!alive(pid)) throw new Error("ssh.service is not active, cannot reload.");
      process.kill(pid, "SIGHUP");
      return;
    }
    case "container":
    case "plain": {
      const unit = parseUnitFile(readFileSync(u.file, "utf8"));
      const reload = unitValues(unit, "Service", "ExecReload");
      if (reload.length === 0) throw new Error(`Failed to reload ${u.name}.service: Job type reload is not applicable for unit ${u.name}.service.`);
      runExec(reload, `reload of ${u.name}.service failed`);
      return;
    }
  }
}

function systemctl(args: readonly string[]): number {
  log("systemctl.log", args.join(" "));
  const now = args.includes("--now");
  const [verb, ...units] = args.filter((a) => !a.startsWith("--"));
  switch (verb) {
    case "daemon-reload":
      return 0;
    case "is-active":
      return units.every((n) => unitActive(unitOf(n))) ? 0 : 3;
    case "enable":
      for (const n of units) {
        const u = unitOf(n);
        if (now && !unitActive(u)) startUnit(u);
      }
      return 0;
    case "start":
      for (const n of units) {
        const u = unitOf(n);
        if (!unitActive(u)) startUnit(u);
      }
      return 0;
    case "stop":
      for (const n of units) stopUnit(unitOf(n));
      return 0;
    case "restart":
      for (const n of units) restartUnit(unitOf(n));
      return 0;
    case "try-restart":
      for (const n of units) {
        const u = unitOf(n);
        if (unitActive(u)) restartUnit(u);
      }
      return 0;
    case "reload":
      for (const n of units) {
        const u = unitOf(n);
        if (!unitActive(u)) throw new Error(`${u.name}.service is not active, cannot reload.`);
        reloadUnit(u);
      }
      return 0;
    case "reload-or-restart":
    case "try-reload-or-restart":
      for (const n of units) {
        const u = unitOf(n);
        if (!unitActive(u)) {
          if (verb === "reload-or-restart") startUnit(u);
        } else if (u.kind !== "sshd" && unitValues(parseUnitFile(readFileSync(u.file, "utf8")), "Service", "ExecReload").length === 0) {
          // A unit that cannot reload is restarted, as systemd does for reload-or-restart.
          restartUnit(u);
        } else {
          reloadUnit(u);
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

const TOOLS: Record<string, (args: readonly string[]) => number> = { systemctl, podman, "cloud-init": cloudInit, sysctl, "apt-get": aptGet };

function main(): void {
  const [tool, ...args] = process.argv.slice(2);
  const run = tool === undefined ? undefined : TOOLS[tool];
  if (!run) {
    process.stderr.write(`local machine tools: unknown tool ${tool ?? "(none)"}\n`);
    process.exit(2);
  }
  try {
    process.exitCode = run(args);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}

main();
