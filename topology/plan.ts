// From a validated topology to one plan per host. Pure: the same plan feeds the renderers,
// the Pulumi components, the sandbox and the tests.
import { KNOWN_IMAGES } from "./images";
import * as paths from "./paths";
import { ACME_DIRECTORIES } from "./schema";
import { scraperCidrs } from "./metrics-scrapers";
import type {
  AcmeCertificatePlan,
  AcmePlan,
  AttachPlan,
  ContainerPlan,
  FilePlan,
  FirewallRule,
  HostPlan,
  LbBackend,
  ListenPlan,
  MetricsPlan,
  Route,
  RouteFragment,
  SecretFilePlan,
  SitePlan,
  StackPlan,
} from "./plan-types";
import type { OwnIngress, ServerConfig, SiteConfig, Topology } from "./types";

const ANYWHERE = ["0.0.0.0/0", "::/0"] as const;
const SSH_PORT = 22;
/**
 * Every web server's ACME http-01 responder: plain HTTP on the private network, answered by its
 * nginx from the webroot the ACME client writes tokens to. Only the LB reaches it (nftables),
 * forwarding port-80 requests for /.well-known/acme-challenge/ of the hostnames it routes there.
 */
export const ACME_CHALLENGE_PORT = 8402;

export function planStack(topo: Topology): StackPlan {
  const lbIps = lbPrivateIps(topo);
  const fragment = routeFragment(topo, lbIps);
  const hosts: HostPlan[] = [];
  if (topo.ingress.mode === "own") hosts.push(planIngressHost(topo, topo.ingress, fragment));
  for (const server of topo.servers) hosts.push(planWebHost(topo, server, lbIps));
  const attach: AttachPlan | undefined =
    topo.ingress.mode === "attach" ? { stack: topo.ingress.stack, network: topo.ingress.network, ip: topo.ingress.ip, fragment } : undefined;
  return attach ? { stack: topo.stack, hosts, attach } : { stack: topo.stack, hosts };
}

/** The LB's address in each network of this stack. */
function lbPrivateIps(topo: Topology): ReadonlyMap<string, string> {
  if (topo.ingress.mode === "attach") return new Map([[topo.ingress.network, topo.ingress.ip]]);
  return new Map(Object.entries(topo.ingress.server.networks));
}

/** The address the LB uses to reach a server: the first network they share. */
function addressFromLb(server: ServerConfig, lbIps: ReadonlyMap<string, string>): string {
  const shared = [...lbIps.keys()].find((net) => server.networks[net] !== undefined);
  if (!shared) throw new Error(`server ${server.name} shares no network with the LB (validation should have caught this)`);
  return server.networks[shared]!;
}

export function backendName(stack: string, server: string, port: number): string {
  return `${stack}_${server}_${port}`.replace(/[^A-Za-z0-9_.-]/g, "_");
}

function routeFragment(topo: Topology, lbIps: ReadonlyMap<string, string>): RouteFragment {
  const servers = new Map(topo.servers.map((s) => [s.name, s]));
  const backends = new Map<string, LbBackend>();
  const routes: Route[] = [];
  for (const site of topo.sites) {
    const server = servers.get(site.server)!;
    const name = backendName(topo.stack, site.server, site.port);
    if (!backends.has(name)) {
      backends.set(name, {
        name,
        servers: [{ name: site.server, address: addressFromLb(server, lbIps), port: site.port, acmePort: ACME_CHALLENGE_PORT }],
        // The first site on a listener names the check; any name it serves proves the listener works.
        check: { sni: site.hostname, path: site.healthPath },
      });
    }
    routes.push({ hostname: site.hostname, backend: name });
  }
  return { stack: topo.stack, backends: [...backends.values()], routes };
}

/** What every host plan says about its server, whatever runs on it. */
function serverFields(topo: Topology, server: ServerConfig) {
  return {
    stack: topo.stack,
    name: server.name,
    serverType: server.serverType,
    image: server.image,
    selinux: KNOWN_IMAGES[server.image]?.selinux ?? false,
    labels: server.labels,
    privateIps: Object.entries(server.networks).map(([network, ip]) => ({ network, ip })),
  };
}

function sshRule(topo: Topology): FirewallRule {
  return { port: SSH_PORT, sources: topo.ssh.adminCidrs, purpose: "ssh", scope: "public" };
}

function quadletFile(name: string): FilePlan {
  return { path: `${paths.QUADLET_DIR}/${name}.container`, kind: "quadlet", mode: 0o644 };
}

const NFTABLES: FilePlan = { path: paths.NFTABLES_FILE, kind: "nftables", mode: 0o644 };
const APPLY_PLAN: FilePlan = { path: paths.APPLY_PLAN_FILE, kind: "apply-plan", mode: 0o644 };
/** Port 80 only ever redirects: an eighth of the LB's connections is plenty, and the rest stay for TLS. */
const HTTP_SHARE_OF_MAXCONN = 8;

const ROOT_MOUNT = { host: paths.INGRESS_ROOT, container: paths.INGRESS_ROOT };

/** The metrics endpoint of an LB whose stack enables it. */
function metricsPlan(topo: Topology, ingress: OwnIngress): MetricsPlan | undefined {
  const { metrics, server } = ingress;
  if (!metrics.enabled) return undefined;
  const lbNetworks = Object.keys(server.networks);
  return { port: metrics.port, path: "/metrics", addresses: Object.values(server.networks), scrapers: scraperCidrs(metrics.scrapers, topo.servers, lbNetworks) };
}

function planIngressHost(topo: Topology, ingress: OwnIngress, fragment: RouteFragment): HostPlan {
  const server = ingress.server;
  const { ports, stats } = ingress;
  const metrics = metricsPlan(topo, ingress);
  const firewall: FirewallRule[] = [
    { port: ports.http, sources: ANYWHERE, purpose: "http", scope: "public" },
    { port: ports.https, sources: ANYWHERE, purpose: "https", scope: "public" },
  ];
  if (stats.enabled) firewall.push({ port: stats.port, sources: stats.allowedCidrs, purpose: "stats", scope: "public" });
  // Private: the cloud firewall never opens it, and the scrapers reach it over the private network only.
  if (metrics) firewall.push({ port: metrics.port, sources: metrics.scrapers, purpose: "metrics", scope: "private" });
  firewall.push(sshRule(topo));

  const secretFiles: SecretFilePlan[] = [];
  if (stats.enabled && stats.passwordSecret) {
    secretFiles.push({ path: paths.STATS_ENV, from: { kind: "stats-env", user: stats.user, secretKey: stats.passwordSecret } });
  }
  // Always written, empty without attached stacks: a stack removed from the list loses its key.
  secretFiles.push({ path: paths.ATTACHED_KEYS_FILE, from: { kind: "attached-keys", stacks: ingress.attachedStacks.map((a) => a.stack) } });

  let container: ContainerPlan;
  let files: FilePlan[];
  if (ingress.engine === "haproxy") {
    container = {
      name: "haproxy",
      image: topo.containerImages.haproxy,
      reloadSignal: "USR2",
      // -W master-worker so USR2 reloads without dropping connections; -db stays in the foreground for systemd.
      command: ["haproxy", "-W", "-db", "-f", paths.HAPROXY_CFG, "-f", paths.HAPROXY_ROUTES_D],
      config: paths.HAPROXY_CFG,
      check: ["haproxy", "-c", "-f", paths.HAPROXY_CFG, "-f", paths.HAPROXY_ROUTES_D],
      mounts: [ROOT_MOUNT],
      ...(stats.enabled ? { envFile: paths.STATS_ENV } : {}),
    };
    files = [
      { path: paths.HAPROXY_CFG, kind: "haproxy-config", mode: 0o644 },
      { path: `${paths.HAPROXY_ROUTES_D}/${topo.stack}.cfg`, kind: "haproxy-routes", mode: 0o644 },
      { path: `${paths.HAPROXY_ROUTES_D}/${topo.stack}.map`, kind: "haproxy-map", mode: 0o644 },
      { path: paths.HAPROXY_ERRORFILE_503, kind: "haproxy-errorfile", mode: 0o644 },
    ];
  } else {
    container = {
      name: "proxy",
      image: topo.containerImages.node,
      reloadSignal: "HUP",
      command: ["node", paths.PROXY_SCRIPT, "--config", paths.PROXY_CONFIG, "--routes-dir", paths.PROXY_ROUTES_D],
      config: paths.PROXY_CONFIG,
      // The proxy's own command line, which loads and merges exactly what it would run.
      check: ["node", paths.PROXY_SCRIPT, "--config", paths.PROXY_CONFIG, "--routes-dir", paths.PROXY_ROUTES_D, "--check"],
      mounts: [ROOT_MOUNT],
      ...(stats.enabled ? { envFile: paths.STATS_ENV } : {}),
    };
    files = [
      { path: paths.PROXY_CONFIG, kind: "proxy-config", mode: 0o644 },
      { path: `${paths.PROXY_ROUTES_D}/${topo.stack}.json`, kind: "proxy-routes", mode: 0o644 },
    ];
  }
  files.push(quadletFile(container.name), NFTABLES, APPLY_PLAN);
  if (ingress.attachedStacks.length > 0) {
    files.push({ path: paths.ATTACHED_POLICY, kind: "attached-policy", mode: 0o644 }, { path: paths.ATTACHED_NODE_IMAGE, kind: "attached-node-image", mode: 0o644 });
  }

  const listens: ListenPlan[] = [
    { port: ports.http, purpose: "http", by: container.name },
    { port: ports.https, purpose: "https", by: container.name },
  ];
  if (stats.enabled) listens.push({ port: stats.port, purpose: "stats", by: container.name });
  if (metrics) for (const address of metrics.addresses) listens.push({ port: metrics.port, purpose: "metrics", by: container.name, address });
  listens.push({ port: SSH_PORT, purpose: "ssh", by: "sshd" });

  return {
    ...serverFields(topo, server),
    role: "ingress",
    containers: [container],
    listens,
    firewall,
    files,
    secretFiles,
    ingress: {
      engine: ingress.engine,
      ports,
      maxconn: ingress.maxconn,
      httpMaxconn: Math.floor(ingress.maxconn / HTTP_SHARE_OF_MAXCONN),
      attachedStacks: ingress.attachedStacks.map((a) => ({ ...a, zones: [...a.zones] })),
      nodeImage: topo.containerImages.node,
      stats,
      ...(metrics ? { metrics } : {}),
      rateLimit: ingress.rateLimit,
      timeouts: ingress.timeouts,
      healthCheck: ingress.healthCheck,
      fragment,
    },
  };
}

function sitePlan(site: SiteConfig): SitePlan {
  if (site.tls.source === "host") {
    const real = site.tls.path.replace(/\/+$/, "");
    const { link, standin } = paths.hostCertPaths(site.hostname);
    const hostCert = { link, real, standin, certFile: "fullchain.pem", keyFile: "privkey.pem" };
    return { site, cert: `${link}/${hostCert.certFile}`, key: `${link}/${hostCert.keyFile}`, certDelivery: "host", hostCert };
  }
  if (site.tls.source === "acme") {
    const { link, standin } = paths.hostCertPaths(site.hostname);
    const { real, certFile, keyFile } = paths.acmeCertPaths(site.hostname);
    const hostCert = { link, real, standin, certFile, keyFile, attempts: paths.acmeAttemptsFile(site.hostname) };
    return { site, cert: `${link}/${certFile}`, key: `${link}/${keyFile}`, certDelivery: "acme", hostCert };
  }
  const { cert, key } = paths.tlsPaths(site.port);
  return { site, cert, key, certDelivery: "deploy" };
}

/** The acme job of a web server whose sites take certificates from ACME. */
function acmePlan(topo: Topology, sites: readonly SitePlan[]): AcmePlan | undefined {
  const certificates = sites.flatMap((s): AcmeCertificatePlan[] =>
    s.site.tls.source === "acme" ? [{ hostname: s.site.hostname, challenge: s.site.tls.challenge, dir: paths.acmeCertPaths(s.site.hostname).dir }] : [],
  );
  if (certificates.length === 0) return undefined;
  const acme = topo.acme;
  if (!acme) throw new Error("sites take certificates from ACME but the stack has no acme settings (validation should have caught this)");
  const directoryUrl = acme.directory in ACME_DIRECTORIES ? ACME_DIRECTORIES[acme.directory as keyof typeof ACME_DIRECTORIES] : acme.directory;
  const needsEnv = acme.eab !== undefined || certificates.some((c) => c.challenge === "dns-01");
  return {
    directoryUrl,
    email: acme.email,
    keyType: acme.keyType,
    renewBeforeDays: acme.renewBeforeDays,
    ...(acme.caCertificate !== undefined ? { caFile: paths.ACME_CA_FILE, caPem: acme.caCertificate } : {}),
    ...(needsEnv ? { envFile: paths.ACME_ENV } : {}),
    ...(acme.eab !== undefined ? { eab: { kid: acme.eab.kid } } : {}),
    certificates,
  };
}

/** The secret env file of the acme job: EAB for the account, the Hetzner token for dns-01. */
function acmeEnvFile(topo: Topology, acme: AcmePlan): SecretFilePlan {
  const vars: { name: string; secretKey?: string; value?: string }[] = [];
  // lego >= 4.14 reads the HMAC key from LEGO_EAB_HMAC (so it is never an argument); --eab and --kid are in the script.
  if (topo.acme?.eab) vars.push({ name: "LEGO_EAB_HMAC", secretKey: topo.acme.eab.hmacSecret });
  if (acme.certificates.some((c) => c.challenge === "dns-01")) vars.push({ name: "HETZNER_API_TOKEN", secretKey: topo.acme!.dnsTokenSecret! });
  return { path: paths.ACME_ENV, from: { kind: "acme-env", vars } };
}

/**
 * The ACME client (lego, in its official image) as a oneshot job: /bin/sh runs the release's
 * script, which calls lego once per certificate. It writes its own state and the webroot's
 * tokens, and reads the release (script, CA bundle); nothing else of the host.
 */
function acmeContainer(topo: Topology, acme: AcmePlan): ContainerPlan {
  return {
    name: "acme",
    image: topo.containerImages.lego,
    job: { timer: "acme" },
    entrypoint: "/bin/sh",
    command: [paths.ACME_SCRIPT],
    config: paths.ACME_SCRIPT,
    check: ["-n", paths.ACME_SCRIPT],
    mounts: [
      ROOT_MOUNT,
      { host: paths.ACME_STATE_DIR, container: paths.ACME_STATE_DIR, writable: true },
      { host: paths.ACME_WEBROOT, container: paths.ACME_WEBROOT, writable: true },
    ],
    ...(acme.envFile !== undefined ? { envFile: acme.envFile } : {}),
  };
}

function planWebHost(topo: Topology, server: ServerConfig, lbIps: ReadonlyMap<string, string>): HostPlan {
  const sites = topo.sites.filter((s) => s.server === server.name).map(sitePlan);
  const realIpFrom = [...lbIps.entries()].filter(([net]) => server.networks[net] !== undefined).map(([, ip]) => ip);
  const ports = [...new Set(sites.map((s) => s.site.port))].sort((a, b) => a - b);

  // Certificates kept on the host reach nginx as apply.sh's checked copies under /srv/ingress
  // (files/apply.sh, cert_copy), never from where certbot or lego write them.
  const mounts = [ROOT_MOUNT, { host: paths.ACME_WEBROOT, container: paths.ACME_WEBROOT }];
  const nginx: ContainerPlan = {
    name: "nginx",
    image: topo.containerImages.nginx,
    reloadSignal: "HUP",
    command: ["nginx", "-c", paths.NGINX_CONF, "-g", "daemon off;"],
    config: paths.NGINX_CONF,
    check: ["nginx", "-t", "-c", paths.NGINX_CONF],
    mounts,
  };

  const secretFiles: SecretFilePlan[] = [];
  // The stand-in a host-kept certificate starts from: self-signed, one per site.
  for (const s of sites) {
    if (!s.hostCert) continue;
    const hostnames = [s.site.hostname];
    secretFiles.push(
      { path: `${s.hostCert.standin}/${s.hostCert.certFile}`, from: { kind: "tls-cert", hostnames, source: "self-signed" } },
      { path: `${s.hostCert.standin}/${s.hostCert.keyFile}`, from: { kind: "tls-key", hostnames, source: "self-signed" } },
    );
  }
  for (const port of ports) {
    const onPort = sites.filter((s) => s.site.port === port);
    const first = onPort[0]!;
    const tls = first.site.tls;
    if (tls.source === "host" || tls.source === "acme") continue;
    const hostnames = onPort.map((s) => s.site.hostname);
    secretFiles.push(
      { path: first.cert, from: { kind: "tls-cert", hostnames, source: tls.source, ...(tls.source === "provided" ? { secretKey: tls.certSecret } : {}) } },
      { path: first.key, from: { kind: "tls-key", hostnames, source: tls.source, ...(tls.source === "provided" ? { secretKey: tls.keySecret } : {}) } },
    );
  }

  const acme = acmePlan(topo, sites);
  if (acme?.envFile !== undefined) secretFiles.push(acmeEnvFile(topo, acme));
  const acmeFiles: FilePlan[] = acme
    ? [
        quadletFile("acme"),
        { path: paths.ACME_SCRIPT, kind: "acme-script", mode: 0o755 },
        { path: `${paths.SYSTEMD_UNIT_DIR}/acme.timer`, kind: "systemd-timer", mode: 0o644 },
        ...(acme.caFile !== undefined ? [{ path: acme.caFile, kind: "acme-ca", mode: 0o644 } satisfies FilePlan] : []),
      ]
    : [];

  return {
    ...serverFields(topo, server),
    role: "web",
    containers: acme ? [nginx, acmeContainer(topo, acme)] : [nginx],
    listens: [
      ...ports.map((port): ListenPlan => ({ port, purpose: "site", by: "nginx" })),
      { port: ACME_CHALLENGE_PORT, purpose: "acme", by: "nginx" },
      { port: SSH_PORT, purpose: "ssh", by: "sshd" },
    ],
    firewall: [
      // Only the LB may reach a PROXY listener: anyone else could forge a client address.
      ...ports.map((port): FirewallRule => ({ port, sources: realIpFrom.map((ip) => `${ip}/32`), purpose: "site", scope: "private" })),
      // Nor the challenge responder: a token is only ever fetched through the LB's port 80.
      { port: ACME_CHALLENGE_PORT, sources: realIpFrom.map((ip) => `${ip}/32`), purpose: "acme", scope: "private" },
      sshRule(topo),
    ],
    files: [
      { path: paths.NGINX_CONF, kind: "nginx-config", mode: 0o644 },
      ...sites.map((s): FilePlan => ({ path: `${paths.NGINX_SITES_D}/${s.site.hostname}.conf`, kind: "nginx-site", mode: 0o644 })),
      quadletFile("nginx"),
      NFTABLES,
      APPLY_PLAN,
      ...(sites.some((s) => s.hostCert) ? [{ path: paths.HOST_CERTS_FILE, kind: "host-certs", mode: 0o644 } satisfies FilePlan] : []),
      ...acmeFiles,
    ],
    secretFiles,
    web: acme ? { sites, realIpFrom, acme } : { sites, realIpFrom },
  };
}

export interface RoutingRow {
  readonly hostname: string;
  readonly stack: string;
  readonly backend: string;
  readonly server: string;
  readonly address: string;
  readonly port: number;
}

/**
 * Joins the fragments that meet on one LB into its routing table. A hostname claimed by two
 * stacks is an error naming both: a silent override would send one stack's users to another's servers.
 */
export function assembleRoutingTable(fragments: readonly RouteFragment[]): RoutingRow[] {
  const rows = new Map<string, RoutingRow>();
  const errors: string[] = [];
  const seenBackends = new Map<string, string>();
  for (const fragment of fragments) {
    const backends = new Map(fragment.backends.map((b) => [b.name, b]));
    for (const b of fragment.backends) {
      const owner = seenBackends.get(b.name);
      if (owner && owner !== fragment.stack) errors.push(`backend "${b.name}" is defined by stacks "${owner}" and "${fragment.stack}"`);
      seenBackends.set(b.name, fragment.stack);
    }
    for (const route of fragment.routes) {
      const earlier = rows.get(route.hostname);
      if (earlier) {
        errors.push(`hostname "${route.hostname}" is claimed by stack "${earlier.stack}" and stack "${fragment.stack}"; remove it from one of them`);
        continue;
      }
      const backend = backends.get(route.backend);
      const target = backend?.servers[0];
      if (!target) {
        errors.push(`route "${route.hostname}" of stack "${fragment.stack}" names backend "${route.backend}", which it does not define`);
        continue;
      }
      rows.set(route.hostname, { hostname: route.hostname, stack: fragment.stack, backend: route.backend, server: target.name, address: target.address, port: target.port });
    }
  }
  if (errors.length > 0) throw new Error(`routes cannot be assembled:\n  - ${errors.join("\n  - ")}`);
  return [...rows.values()];
}
