// One server of the local cloud: a network namespace for its network, and a mount namespace in
// which /etc, /var, /srv, /usr/local and /root are overlays of its own, so what a deploy
// writes there (units, releases, secrets, sshd drop-ins) stays on that server. /srv and /root
// start empty; /etc and /var show this machine's (its binaries need them) minus what a fresh
// Hetzner image lacks and a deploy depends on (MASKED). Its "init" holds the mount namespace;
// sshd and every daemon it starts live inside both.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { destroyNetns, run, type Netns, type RunResult, type Sandbox } from "../../lab";
import type { ManagedProcess } from "../../lab/process";

/** Directories of the machine that are its own (overlays). */
const PRIVATE_DIRS = ["/etc", "/var", "/srv", "/usr/local", "/root"] as const;
/** Of those, the ones that start empty instead of showing this machine's files. */
const EMPTY_LOWER = new Set<string>(["/srv", "/root"]);
/**
 * Paths of this machine that a fresh Hetzner image does not have and that change what a deploy
 * does: hidden (overlay whiteouts) when they exist here, so the machine starts as a new server.
 */
const MASKED = ["/etc/letsencrypt", "/etc/ssh/sshd_config.d", "/etc/containers", "/etc/systemd/system", "/etc/ingress", "/etc/sysctl.d", "/var/www"];
/** Where the stand-ins of the machine image live: first in root's PATH on Debian. */
export const STANDIN_DIR = "/usr/local/sbin";
export const STANDINS = ["systemctl", "podman", "cloud-init", "sysctl", "apt-get"] as const;

export interface MachineSpec {
  readonly id: number;
  readonly name: string;
  /** Public keys installed for root, as Hetzner does with the server's ssh_keys. */
  readonly authorizedKeys: readonly string[];
  readonly userData: string;
  /** The built machine tools (local/machine/tools.ts). */
  readonly toolsScript: string;
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function sshdConfig(): string {
  return [
    "# The local machine's sshd: Debian's defaults that matter, drop-ins first as on Debian.",
    "Include /etc/ssh/sshd_config.d/*.conf",
    "Port 22",
    "HostKey /etc/ssh/ssh_host_ed25519_key",
    "PidFile /var/lib/local-machine/sshd.pid",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    // No PAM: no login session machinery in a namespace.
    "UsePAM no",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "LogLevel VERBOSE",
    "",
  ].join("\n");
}

/** The argv that runs `argv` on a machine: its files (mount namespace), and its network unless `net` is false. */
export function machineArgv(initPid: number, argv: readonly string[], net = true): string[] {
  return ["nsenter", "-t", String(initPid), "-m", ...(net ? ["-n"] : []), "--", ...argv];
}

/** A root shell's command on a server of the local cloud, from outside it (the operator's view of `ssh root@`). */
export function onServer(s: { readonly initPid: number }, argv: readonly string[], timeoutMs = 15_000): Promise<RunResult> {
  return run(machineArgv(s.initPid, argv), { allowFailure: true, timeoutMs });
}

export class Machine {
  private constructor(
    readonly spec: MachineSpec,
    readonly ns: Netns,
    readonly dir: string,
    readonly init: ManagedProcess,
    readonly sshd: ManagedProcess,
  ) {}

  /** Files written into the machine's own layers before it boots. */
  private static seed(dir: string, onHost: string, content: string, mode: number): void {
    const top = PRIVATE_DIRS.find((d) => onHost === d || onHost.startsWith(`${d}/`));
    if (!top) throw new Error(`${onHost} is not in one of the machine's own directories`);
    const file = join(dir, "upper", top, onHost.slice(top.length));
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
  }

  static async create(sb: Sandbox, ns: Netns, spec: MachineSpec): Promise<Machine> {
    const dir = await sb.subdir(`machine-${spec.id}`);
    for (const d of PRIVATE_DIRS) {
      mkdirSync(join(dir, "upper", d), { recursive: true });
      mkdirSync(join(dir, "work", d), { recursive: true });
      mkdirSync(join(dir, "lower", d), { recursive: true });
    }
    for (const m of MASKED) {
      if (!existsSync(m)) continue;
      const top = PRIVATE_DIRS.find((d) => m.startsWith(`${d}/`))!;
      const whiteout = join(dir, "upper", top, m.slice(top.length));
      mkdirSync(dirname(whiteout), { recursive: true });
      await run(["mknod", whiteout, "c", "0", "0"]);
    }
    chmodSync(join(dir, "upper", "root"), 0o700);
    // Its own host key, made now: the deploy's first contact records it, every later step pins it.
    const keyDir = join(dir, "keys");
    mkdirSync(keyDir, { mode: 0o700 });
    await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", `root@${spec.name}`, "-f", join(keyDir, "host")]);
    Machine.seed(dir, "/etc/ssh/ssh_host_ed25519_key", readFileSync(join(keyDir, "host"), "utf8"), 0o600);
    Machine.seed(dir, "/etc/ssh/ssh_host_ed25519_key.pub", readFileSync(join(keyDir, "host.pub"), "utf8"), 0o644);
    Machine.seed(dir, "/etc/ssh/sshd_config", sshdConfig(), 0o644);
    Machine.seed(dir, "/etc/hostname", `${spec.name}\n`, 0o644);
    Machine.seed(dir, "/root/.ssh/authorized_keys", spec.authorizedKeys.map((k) => `${k.trim()}\n`).join(""), 0o600);
    chmodSync(join(dir, "upper", "root", ".ssh"), 0o700);
    // A fresh image's root has no shell setup of this machine's (pyenv and the like).
    Machine.seed(dir, "/root/.bashrc", "", 0o644);
    Machine.seed(dir, "/root/.profile", "", 0o644);
    Machine.seed(dir, "/var/lib/cloud/instance/user-data.txt", spec.userData, 0o600);
    // cloud-init has not finished until its boot run says so (a boot that dies says "running").
    Machine.seed(dir, "/var/lib/local-machine/cloud-init.status", "running\n", 0o644);
    for (const tool of STANDINS) {
      Machine.seed(dir, `${STANDIN_DIR}/${tool}`, `#!/bin/sh\nexec ${shq(process.execPath)} ${shq(spec.toolsScript)} ${tool} "$@"\n`, 0o755);
    }
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

    const mounts = PRIVATE_DIRS.map(
      (d) => `mount -t overlay overlay -o ${shq(`lowerdir=${EMPTY_LOWER.has(d) ? join(dir, "lower", d) : d},upperdir=${join(dir, "upper", d)},workdir=${join(dir, "work", d)}`)} ${d}`,
    );
    // The marker is written outside the overlays once every one of them is in place.
    const ready = join(dir, "mounted");
    const init = await ns.spawn("init", ["unshare", "--mount", "--propagation", "private", "sh", "-c", [...mounts, `: > ${shq(ready)}`, "exec sleep infinity"].join(" && ")]);
    for (let i = 0; !existsSync(ready); i++) {
      if (!init.running || i > 400) throw new Error(`machine ${spec.name}: mounts did not come up:\n${await init.log()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const sshd = await ns.spawn("sshd", machineArgv(init.pid, ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"], false));
    // Boot: cloud-init applies the user data once, in the background, as on a real first boot.
    await ns.spawn("cloud-init", machineArgv(init.pid, [`${STANDIN_DIR}/cloud-init`, "boot"], false));
    return new Machine(spec, ns, dir, init, sshd);
  }

  /** Runs argv on the machine (its network and its files), as root. */
  exec(argv: readonly string[], options: { readonly allowFailure?: boolean; readonly timeoutMs?: number } = {}): Promise<RunResult> {
    return this.ns.exec(machineArgv(this.init.pid, argv, false), options);
  }

  /** Reads a file as the machine sees it. */
  async readFile(onHost: string): Promise<string> {
    return (await this.exec(["cat", onHost])).stdout;
  }

  async destroy(): Promise<void> {
    await destroyNetns(this.ns.name, this.ns.inode);
  }
}
