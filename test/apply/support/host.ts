// A "host" for apply.sh tests: sshd in one network namespace, the client in another,
// joined by a veth pair, so apply.sh runs over real ssh exactly as the Pulumi
// remote.Command runs it. Each ApplyHost is a temp tree standing for one machine's
// /srv/ingress, /etc/containers/systemd and /etc/systemd/system, with its own systemctl stand-in.
import { mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateSshKeys, pollUntil, Sandbox, sshArgv, sshdConfig, waitForListening, type Netns, type RunResult, type SshServer } from "../../../lab";
import type { HostPlan } from "../../../topology";
import { writeBundle, type BundleFiles } from "./bundle";
import { systemctlStandin, unitConf, type UnitSpec } from "./systemctl-standin";

export interface ApplyLab {
  readonly sb: Sandbox;
  /** The machine apply.sh runs on: sshd and the daemons live here. */
  readonly host: Netns;
  readonly client: Netns;
  readonly ssh: SshServer;
  readonly hostIp: string;
}

/** Addresses 10.203.<subnet>.1 (host) and .2 (client), only inside the two namespaces. */
export async function startLab(subnet: number): Promise<ApplyLab> {
  const sb = await Sandbox.create({ prefix: "iga" });
  try {
    const host = await sb.namespace("host");
    const client = await sb.namespace("client");
    await sb.veth({ ns: host, ifname: "eth0" }, { ns: client, ifname: "eth0" });
    const hostIp = `10.203.${subnet}.1`;
    await host.addAddress("eth0", `${hostIp}/24`);
    await client.addAddress("eth0", `10.203.${subnet}.2/24`);
    const ssh = await startQuickSshd(sb, host, hostIp);
    return { sb, host, client, ssh, hostIp };
  } catch (e) {
    await sb.teardown();
    throw e;
  }
}

/**
 * sandbox's startSshd, plus one line: HOME for sessions is the key dir. bash sources
 * ~/.bashrc for every ssh command, and this machine's root .bashrc runs `pyenv init`,
 * which costs ~0.3 s per apply; a production host's apply does not pay that.
 */
async function startQuickSshd(sb: Sandbox, ns: Netns, address: string): Promise<SshServer> {
  const keys = await generateSshKeys(await sb.subdir(`${ns.host}-sshd`));
  const configPath = join(keys.dir, "sshd_config");
  await writeFile(configPath, `${sshdConfig(keys, address, 22)}SetEnv HOME=${keys.dir}\n`, { mode: 0o600 });
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const process = await ns.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", configPath]);
  await waitForListening(ns, [{ port: 22, address }], { process });
  return { process, ns, address, port: 22, keys };
}

/**
 * ssh from `from` to the lab's sshd. Classic curve25519 key exchange: OpenSSH 9's
 * default post-quantum one costs ~0.15 s of CPU per connection, and the Go ssh client
 * behind remote.Command does not use it either.
 */
async function ssh(lab: ApplyLab, command: string, timeoutMs: number): Promise<RunResult> {
  const argv = await sshArgv(lab.ssh);
  argv.splice(argv.length - 1, 0, "-o", "KexAlgorithms=curve25519-sha256", "-o", "ControlMaster=auto", "-o", `ControlPath=${lab.ssh.keys.dir}/cm-%C`, "-o", "ControlPersist=120");
  return lab.client.exec([...argv, command], { allowFailure: true, timeoutMs });
}

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export class ApplyHost {
  /** Stands for /srv/ingress. */
  readonly root: string;
  readonly quadletDir: string;
  /** Stands for /etc/systemd/system: where timers go. */
  readonly systemdDir: string;
  readonly stateDir: string;
  /** pid files, logs and temp dirs of the daemons (a host's /run and /var). */
  readonly runDir: string;
  readonly incoming: string;

  private constructor(readonly lab: ApplyLab, readonly base: string) {
    this.root = join(base, "srv", "ingress");
    this.quadletDir = join(base, "etc", "containers", "systemd");
    this.systemdDir = join(base, "etc", "systemd", "system");
    this.stateDir = join(base, "systemd");
    this.runDir = join(base, "run");
    this.incoming = join(this.root, "incoming");
  }

  /** `units` get the root so their START can name root/current/... as the Quadlet Exec does. */
  static async create(lab: ApplyLab, label: string, units: (root: ApplyHost) => readonly UnitSpec[]): Promise<ApplyHost> {
    const h = new ApplyHost(lab, await lab.sb.subdir(label));
    for (const d of [h.root, h.quadletDir, join(h.stateDir, "units"), h.runDir, h.incoming]) await mkdir(d, { recursive: true });
    await writeFile(join(h.stateDir, "systemctl"), systemctlStandin(h.stateDir), { mode: 0o755 });
    await writeFile(join(h.stateDir, "calls.log"), "");
    for (const u of units(h)) await writeFile(join(h.stateDir, "units", `${u.name}.conf`), unitConf(u));
    return h;
  }

  /** What the remote command line sets: the test's roots instead of the host's. */
  env(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return {
      INGRESS_ROOT: this.root,
      QUADLET_DIR: this.quadletDir,
      SYSTEMD_UNIT_DIR: this.systemdDir,
      SYSTEMCTL: join(this.stateDir, "systemctl"),
      INGRESS_PROBE_TIMEOUT: "5",
      // The LB renders attached stacks' routes in the node image; here with this test's node.
      INGRESS_RENDER_ROUTES: process.execPath,
      ...extra,
    };
  }

  /** Runs apply.sh over ssh from the client namespace; never throws on a non-zero exit. */
  async run(script: string, args: readonly string[], extraEnv: Readonly<Record<string, string>> = {}): Promise<RunResult> {
    const env = Object.entries(this.env(extraEnv)).map(([k, v]) => `${k}=${shq(v)}`);
    const command = [...env, "/bin/bash", shq(script), ...args.map(shq)].join(" ");
    return ssh(this.lab, command, 30_000);
  }

  /** Copies a bundle to incoming/<hash>/ and applies it with the bundle's own apply.sh. */
  async applyBundle(files: BundleFiles, role: HostPlan["role"], extraEnv: Readonly<Record<string, string>> = {}): Promise<RunResult & { readonly bundle: string }> {
    const bundle = await writeBundle(this.incoming, files);
    const r = await this.run(join(bundle, "apply.sh"), ["--bundle", bundle, "--role", role], extraEnv);
    return { ...r, bundle };
  }

  /** Puts routes data in a file of its own; returns it. */
  async writeRoutes(stack: string, data: string): Promise<string> {
    const file = join(this.base, `routes-push-${stack}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
    await writeFile(file, data);
    return file;
  }

  /** Pushes routes data as `stack`'s routes. */
  async pushRoutes(stack: string, data: string, script: string, extraEnv: Readonly<Record<string, string>> = {}): Promise<RunResult> {
    return this.run(script, ["--routes", await this.writeRoutes(stack, data), "--stack", stack], extraEnv);
  }

  /** What apply.sh asked systemd to do, in order; queries (is-enabled, is-active) change nothing and are left out. */
  async calls(): Promise<string[]> {
    return (await readFile(join(this.stateDir, "calls.log"), "utf8")).split("\n").filter((l) => l !== "" && !/^is-(enabled|active) /.test(l));
  }

  async injectFailure(verb: string): Promise<void> {
    await writeFile(join(this.stateDir, `fail-once-${verb}`), "");
  }

  async current(): Promise<string | undefined> {
    try {
      return await readlink(join(this.root, "current"));
    } catch {
      return undefined;
    }
  }

  async releases(): Promise<string[]> {
    return (await readdir(join(this.root, "releases"))).sort();
  }

  async routesDirs(): Promise<string[]> {
    return (await readdir(join(this.root, "routes"))).sort();
  }

  readFile(rel: string): Promise<string> {
    return readFile(join(this.root, rel), "utf8");
  }
}

/** GET from the client namespace; "" with the error when nothing answers. */
export async function httpGet(lab: ApplyLab, port: number, path = "/", hostHeader?: string): Promise<string> {
  const argv = ["curl", "-sS", "--max-time", "2", ...(hostHeader ? ["-H", `Host: ${hostHeader}`] : []), `http://${lab.hostIp}:${port}${path}`];
  const r = await lab.client.exec(argv, { allowFailure: true });
  return r.code === 0 ? r.stdout.trim() : `curl failed: ${r.stderr.trim()}`;
}

/**
 * Waits until the answer is `expected`: a reload signal returns before the daemon has
 * switched, so an answer right after apply.sh may still come from the old workers.
 */
export async function waitForBody(lab: ApplyLab, port: number, expected: string, path = "/", hostHeader?: string): Promise<void> {
  let last = "";
  await pollUntil(
    `"${expected}" from port ${port}${path}${hostHeader ? ` (Host ${hostHeader})` : ""}`,
    async () => {
      last = await httpGet(lab, port, path, hostHeader);
      return last === expected ? true : undefined;
    },
    { timeoutMs: 5000, intervalMs: 50 },
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last answer: ${last}`);
  });
}

/** The id of a release from its `current` link target. */
export function releaseId(link: string | undefined): string | undefined {
  return link?.replace(/^releases\//, "");
}

/** The release id apply.sh printed as live. */
export function liveId(r: RunResult): string {
  const m = /release (\S+) is live/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`no "release ... is live" in output:\n${r.stdout}\n${r.stderr}`);
  return m[1];
}

export function output(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}
