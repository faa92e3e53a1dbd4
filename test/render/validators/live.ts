// A client -> haproxy -> nginx chain from rendered files, in three namespaces that only talk to
// each other: "client" (a public address), "lb" (public + private), "web" (private).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HostPlan } from "../../../topology";
import { STATS_ENV } from "./binaries";
import { makeCert } from "./certs";
import { link, TestNetns } from "./netns";
import { stageHaproxy, stageNginx } from "./stage";

export interface LiveAddresses {
  /** CIDR form, on the client <-> LB link. */
  readonly client: string;
  readonly lbPublic: string;
  /** CIDR form, on the LB <-> web link: the LB's and the web host's private IPs from the plan. */
  readonly lbPrivate: string;
  readonly web: string;
}

interface Daemon {
  readonly child: ChildProcess;
  readonly log: string;
  readonly exited: Promise<void>;
}

function startDaemon(argv: readonly string[], log: string, env?: NodeJS.ProcessEnv): Daemon {
  const fd = openSync(log, "a");
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd], env: env ?? process.env });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, log, exited };
}

export class LiveChain {
  private readonly namespaces: TestNetns[] = [];
  private readonly daemons: Daemon[] = [];
  readonly client: TestNetns;
  readonly lb: TestNetns;
  readonly web: TestNetns;
  haproxyLog = "";
  nginxLog = "";

  constructor(
    private readonly dir: string,
    readonly addresses: LiveAddresses,
  ) {
    this.client = this.ns("client");
    this.lb = this.ns("lb");
    this.web = this.ns("web");
    link(this.client, addresses.client, this.lb, addresses.lbPublic, "p");
    link(this.lb, addresses.lbPrivate, this.web, addresses.web, "q");
  }

  private ns(role: string): TestNetns {
    const ns = TestNetns.create(role);
    this.namespaces.push(ns);
    return ns;
  }

  startNginx(host: HostPlan): void {
    const root = join(this.dir, "web");
    mkdirSync(root, { recursive: true });
    const cert = makeCert(root, host.web!.sites.map((s) => s.site.hostname));
    const conf = stageNginx(root, host, cert);
    // Only for this run: the pid file the container keeps in its own /tmp.
    writeFileSync(conf, readFileSync(conf, "utf8").replace("pid /tmp/nginx.pid;", `pid ${root}/nginx.pid;`));
    this.nginxLog = join(this.dir, "nginx.log");
    this.daemons.push(startDaemon(this.web.argv("nginx", "-e", "stderr", "-c", conf, "-g", "daemon off;"), this.nginxLog));
  }

  startHaproxy(lb: HostPlan): void {
    const staged = stageHaproxy(join(this.dir, "lb"), lb);
    this.haproxyLog = join(this.dir, "haproxy.log");
    const argv = this.lb.argv("haproxy", "-W", "-db", "-f", staged.cfg, "-f", staged.routesDir);
    this.daemons.push(startDaemon(argv, this.haproxyLog, { ...process.env, ...STATS_ENV }));
  }

  read(log: string): string {
    try {
      return readFileSync(log, "utf8");
    } catch {
      return "";
    }
  }

  async stop(): Promise<void> {
    for (const d of this.daemons) {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGTERM");
    }
    await Promise.race([Promise.all(this.daemons.map((d) => d.exited)), new Promise((r) => setTimeout(r, 5000))]);
    for (const d of this.daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
    for (const ns of this.namespaces) ns.delete();
  }
}

/** Polls `probe` until it returns a value or the deadline passes. */
export async function eventually<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
