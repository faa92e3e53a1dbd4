// The whole ingress on one machine: prod and/or demo as Hetzner would run them, each server a
// network namespace, the rendered configs running unchanged in real haproxy/nginx processes.
//
//   client 203.0.113.50, 2001:db8:113::50 ┐                    ┌ net-prod 172.24.0.1 ─ monitoring .0.2, frontend .0.3,
//   flood 203.0.113.66                    ├ seg-inet ─ lb ─────┤                       backend .0.4, intruder .0.9
//   isp 203.0.113.1 / 198.51.100.1 ───────┘  203.0.113.10      └ net-demo 172.20.0.1 ─ demo .0.2 (intruder .0.9)
//   admin 198.51.100.7, client2 198.51.100.20 (via isp)
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Engine, HostPlan } from "../topology";
import * as paths from "../topology/paths";
import { formatIpv4, parseIpv4Cidr } from "../lab/address";
import { waitForListening } from "../lab/daemons";
import { HostRoot, mountTargets, withBindMounts, type BindMount } from "./host-root";
import { planIngressSandbox, type HealthCheck, type IngressSandboxPlan, type SandboxStacks } from "./ingress-plan";
import { LB_ENGINES, resolveBinary, type RunningLb } from "./lb-engine";
import { assembleHaproxyMapFiles, mergeAttachedRoutes } from "./lb-routes";
import { ensureMountPoints, INGRESS_SANDBOX_PREFIX, releaseMountPoints } from "./mount-points";
import type { Netns } from "../lab/netns";
import { RoutedNetwork, Segment } from "../lab/network";
import type { ManagedProcess } from "../lab/process";
import { Sandbox, type Leftovers } from "../lab/sandbox";
import { installSiteCertificates } from "./site-certs";

/** The "internet": documentation ranges only (192.0.2.0/24 is this machine's real uplink). */
export const INTERNET = {
  isp4: "203.0.113.1",
  isp6: "2001:db8:113::1",
  ispAdmin4: "198.51.100.1",
  lb4: "203.0.113.10",
  lb6: "2001:db8:113::10",
  client4: "203.0.113.50",
  client6: "2001:db8:113::50",
  flood4: "203.0.113.66",
  client2: "198.51.100.20",
  admin: "198.51.100.7",
} as const;
/** Stands in for podman's 10.88.0.0/16 in the DNAT scenario; apart from the admin /25. */
export const CONTAINER_SUBNET = "198.51.100.128/25";

export interface IngressSandboxOptions {
  readonly stacks?: SandboxStacks;
  readonly engine?: Engine;
  readonly healthCheck?: HealthCheck;
  readonly proxyScript?: string;
  readonly prefix?: string;
  readonly keepFiles?: boolean;
}

export interface WebHost {
  readonly plan: HostPlan;
  readonly ns: Netns;
  readonly root: HostRoot;
  /** Where the LB reaches it. */
  readonly ip: string;
  nginx: ManagedProcess | undefined;
}

export interface Clients {
  /** A client on the internet, IPv4 and IPv6. */
  readonly client: Netns;
  /** Another internet client, used up by the rate-limit check. */
  readonly flood: Netns;
  /** A client from another network (198.51.100.0/25). */
  readonly client2: Netns;
  /** The admin source that stats.allowedCidrs lets in. */
  readonly admin: Netns;
  /** A machine inside the private networks that is not the LB. */
  readonly intruder: Netns;
}

function nginxContainer(host: HostPlan) {
  const c = host.containers.find((x) => x.name === "nginx");
  if (!c) throw new Error(`host ${host.name} runs no nginx`);
  return c;
}

function hostBinds(root: HostRoot, host: HostPlan): BindMount[] {
  return root.binds(host.containers.flatMap((c) => c.mounts).filter((m, i, all) => all.findIndex((x) => x.container === m.container) === i));
}

export class IngressSandbox {
  lb!: RunningLb;
  private readonly intruderIps: string[] = [];

  private constructor(
    readonly sb: Sandbox,
    readonly plan: IngressSandboxPlan,
    readonly lbNs: Netns,
    readonly lbRoot: HostRoot,
    readonly web: ReadonlyMap<string, WebHost>,
    readonly clients: Clients,
    readonly stats: { readonly user: string; readonly password: string },
  ) {}

  get intruderAddresses(): readonly string[] {
    return this.intruderIps;
  }

  static async up(o: IngressSandboxOptions = {}): Promise<IngressSandbox> {
    const plan = planIngressSandbox({
      stacks: o.stacks ?? "all",
      engine: o.engine ?? "haproxy",
      ...(o.healthCheck ? { healthCheck: o.healthCheck } : {}),
      ...(o.proxyScript !== undefined ? { proxyScript: o.proxyScript } : {}),
    });
    const sb = await Sandbox.create({ prefix: o.prefix ?? INGRESS_SANDBOX_PREFIX, ...(o.keepFiles !== undefined ? { keepFiles: o.keepFiles } : {}) });
    try {
      return await IngressSandbox.build(sb, plan);
    } catch (e) {
      await sb.teardown().catch(() => undefined);
      throw e;
    }
  }

  private static async build(sb: Sandbox, plan: IngressSandboxPlan): Promise<IngressSandbox> {
    // Networks and machines.
    const networks = new Map<string, RoutedNetwork>();
    for (const n of plan.networks) networks.set(n.name, await RoutedNetwork.create(sb, n));
    const net = (name: string): RoutedNetwork => {
      const n = networks.get(name);
      if (!n) throw new Error(`no network ${name} in this sandbox`);
      return n;
    };
    const inet = await Segment.create(sb, { name: "inet" });
    const isp = await sb.namespace("isp");
    await inet.attach(isp, { ipv4: `${INTERNET.isp4}/24`, ipv6: `${INTERNET.isp6}/64`, ifname: "eth0" });
    await isp.addAddress("eth0", `${INTERNET.ispAdmin4}/25`);
    await isp.setForwarding(true);
    for (const scope of ["all", "default", "eth0"]) await isp.sysctl(`net.ipv4.conf.${scope}.send_redirects`, 0);

    const lbNs = await sb.namespace(plan.lb.name);
    await inet.attach(lbNs, { ipv4: `${INTERNET.lb4}/24`, ipv6: `${INTERNET.lb6}/64`, ifname: "eth0", defaultVia4: INTERNET.isp4 });
    for (const [i, a] of plan.lbNetworks.entries()) await net(a.network).attach(lbNs, { ip: a.ip, ifname: `ens${10 + i}` });

    const web = new Map<string, WebHost>();
    for (const h of plan.webHosts) {
      const ns = await sb.namespace(h.name);
      for (const [i, a] of h.privateIps.entries()) await net(a.network).attach(ns, { ip: a.ip, ifname: `ens${10 + i}` });
      const root = new HostRoot(h.name, join(sb.dir, "hosts", h.name));
      const ip = plan.routing.find((r) => r.server === h.name)?.address ?? h.privateIps[0]?.ip ?? "";
      web.set(h.name, { plan: h, ns, root, ip, nginx: undefined });
    }

    const client = await sb.namespace("client");
    await inet.attach(client, { ipv4: `${INTERNET.client4}/24`, ipv6: `${INTERNET.client6}/64`, ifname: "eth0", defaultVia4: INTERNET.isp4 });
    const flood = await sb.namespace("flood");
    await inet.attach(flood, { ipv4: `${INTERNET.flood4}/24`, ifname: "eth0", defaultVia4: INTERNET.isp4 });
    const client2 = await sb.namespace("client2");
    await inet.attach(client2, { ipv4: `${INTERNET.client2}/25`, ifname: "eth0", defaultVia4: INTERNET.ispAdmin4 });
    const admin = await sb.namespace("admin");
    await inet.attach(admin, { ipv4: `${INTERNET.admin}/25`, ifname: "eth0", defaultVia4: INTERNET.ispAdmin4 });
    const intruder = await sb.namespace("intruder");
    const intruderIps: string[] = [];
    for (const [i, n] of plan.networks.entries()) {
      const ip = formatIpv4(parseIpv4Cidr(n.ipRange).network + 9);
      await net(n.name).attach(intruder, { ip, ifname: `ens${10 + i}` });
      intruderIps.push(ip);
    }

    // Files: each host's bundle, certificates, the LB's merged routes and stats secret.
    const lbRoot = new HostRoot(plan.lb.name, join(sb.dir, "hosts", plan.lb.name));
    lbRoot.writeRelease(plan.rendered.get(plan.lb.name)?.files ?? []);
    mergeAttachedRoutes(lbRoot, plan.attachedRoutes);
    if (plan.engine === "haproxy") assembleHaproxyMapFiles(lbRoot);
    const stats = writeStatsEnv(lbRoot, plan.lb);
    for (const w of web.values()) {
      w.root.writeRelease(plan.rendered.get(w.plan.name)?.files ?? []);
      await installSiteCertificates(w.root, w.plan, join(sb.dir, "certs", w.plan.name));
    }

    const sandbox = new IngressSandbox(sb, plan, lbNs, lbRoot, web, { client, flood, client2, admin, intruder }, stats);
    sandbox.intruderIps.push(...intruderIps);

    // Mount targets on the root filesystem; released after every daemon is gone (undo is LIFO).
    const targets = [...hostBinds(lbRoot, plan.lb), ...[...web.values()].flatMap((w) => hostBinds(w.root, w.plan))];
    ensureMountPoints(mountTargets(targets).filter((t) => t !== "/tmp"));
    sb.defer("mount points", async () => void releaseMountPoints(sb.prefix), () => void releaseMountPoints(sb.prefix));

    // Firewalls, then the daemons: nginx first, so the LB's first checks already pass.
    await lbNs.exec(["nft", "-f", lbRoot.path(paths.NFTABLES_FILE)]);
    for (const w of web.values()) await w.ns.exec(["nft", "-f", w.root.path(paths.NFTABLES_FILE)]);
    await Promise.all([...web.keys()].map((h) => sandbox.startNginx(h)));
    sandbox.lb = await LB_ENGINES[plan.engine].start({ ns: lbNs, root: lbRoot, host: plan.lb, statsEnv: stats.env });
    return sandbox;
  }

  webHost(name: string): WebHost {
    const w = this.web.get(name);
    if (!w) throw new Error(`no web host ${name} in this sandbox (stacks ${this.plan.stacks})`);
    return w;
  }

  /** Starts the host's rendered nginx, in its own namespace or (DNAT scenario) in `ns`. */
  async startNginx(name: string, ns?: Netns): Promise<ManagedProcess> {
    const w = this.webHost(name);
    const c = nginxContainer(w.plan);
    const [bin, ...args] = c.command;
    // -e stderr: nginx opens its error log before reading the config; the config says stderr too.
    const argv = [resolveBinary(bin ?? "nginx"), "-e", "stderr", ...args];
    const where = ns ?? w.ns;
    const p = await where.spawn("nginx", withBindMounts(hostBinds(w.root, w.plan), argv));
    const ports = w.plan.listens.filter((l) => l.by === "nginx").map((l) => ({ port: l.port }));
    await waitForListening(where, ports, { process: p });
    if (ns === undefined) w.nginx = p;
    return p;
  }

  async stopNginx(name: string): Promise<void> {
    const w = this.webHost(name);
    await w.nginx?.stop();
    w.nginx = undefined;
  }

  /** Namespace names by role, for printing and the state file. */
  namespaces(): Record<string, string> {
    const out: Record<string, string> = { [this.plan.lb.name]: this.lbNs.name };
    for (const [h, w] of this.web) out[h] = w.ns.name;
    for (const [role, ns] of Object.entries(this.clients)) out[role] = (ns as Netns).name;
    return out;
  }

  async teardown(): Promise<void> {
    await this.sb.teardown();
  }

  leftovers(): Leftovers {
    return this.sb.leftovers();
  }
}

function writeStatsEnv(root: HostRoot, lb: HostPlan): { user: string; password: string; env: Record<string, string> } {
  const secret = lb.secretFiles.find((f) => f.from.kind === "stats-env");
  const user = secret?.from.kind === "stats-env" ? secret.from.user : lb.ingress?.stats.user ?? "admin";
  const password = randomBytes(12).toString("hex");
  const env = { STATS_USER: user, STATS_PASSWORD: password };
  mkdirSync(root.path(paths.SECRETS_DIR), { recursive: true, mode: 0o700 });
  root.write(secret?.path ?? paths.STATS_ENV, `STATS_USER=${user}\nSTATS_PASSWORD=${password}\n`, 0o600);
  return { user, password, env };
}
