// Cross-field validation of a stack config. Every rule runs and every error is collected,
// so one `pulumi preview` shows the whole list. Pure: no I/O, no Pulumi.
import { ConfigIssue, ConfigValidationError, formatPath } from "./errors";
import { normaliseHostname } from "../contract/hostname";
import { KNOWN_IMAGES, quadletImages } from "./images";
import { removedServerTypeMessage } from "./server-types";
import { Cidr, Ipv4Cidr, cidrContainsIpv4, cidrSize, cidrsOverlap, intToIpv4, ipv4ToInt, isWholeInternet, parseCidr, wideCoverage } from "./ip";
import { AttachedStackConfig, ENGINES, OwnIngressConfig, ServerConfig, StackConfig, stackConfigSchema } from "./schema";
import type { Engine, Topology } from "./types";
import { ACME_CHALLENGE_PORT } from "./plan";
import { isScraperAddress, scraperCidrText } from "./metrics-scrapers";

/** Hetzner: a spread placement group (each stack has one) holds at most this many servers. */
export const SPREAD_GROUP_LIMIT = 10;

/** Hetzner attaches a server to at most this many private networks. */
export const MAX_NETWORKS_PER_SERVER = 3;

const ZONE_OF_LOCATION: Readonly<Record<StackConfig["location"], StackConfig["networkZone"]>> = {
  fsn1: "eu-central",
  nbg1: "eu-central",
  hel1: "eu-central",
  ash: "us-east",
  hil: "us-west",
  sin: "ap-southeast",
};

const PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map((c) => parseCidr(c) as Ipv4Cidr);

interface ParsedNetwork {
  readonly name: string;
  readonly range: Ipv4Cidr;
  readonly subnets: readonly Ipv4Cidr[];
}

/** Validates raw stack config (the values of Pulumi.<stack>.yaml without the namespace). */
export function validateStackConfig(stack: string, raw: unknown): Topology {
  const parsed = stackConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigValidationError(
      stack,
      parsed.error.issues.flatMap((i): ConfigIssue[] =>
        i.code === "unrecognized_keys"
          ? i.keys.map((key) => ({ path: formatPath(i.path), message: unknownKeyMessage(key, i.path.length === 0) }))
          : [{ path: formatPath(i.path), message: i.message }],
      ),
    );
  }
  const issues: ConfigIssue[] = [];
  const topology = checkTopology(stack, parsed.data, (path, message) => issues.push({ path, message }));
  if (issues.length > 0) throw new ConfigValidationError(stack, issues);
  return topology;
}

function unknownKeyMessage(key: string, topLevel: boolean): string {
  if (topLevel) return `unknown key "${key}"; if it holds a secret, set it with \`pulumi config set --secret ${key} ...\` so it is stored encrypted`;
  return `unknown key "${key}"; check its spelling against docs/config.md`;
}

type Report = (path: string, message: string) => void;

function checkTopology(stack: string, cfg: StackConfig, report: Report): Topology {
  if (ZONE_OF_LOCATION[cfg.location] !== cfg.networkZone) {
    report("networkZone", `location ${cfg.location} is in network zone ${ZONE_OF_LOCATION[cfg.location]}, not ${cfg.networkZone}; set networkZone: ${ZONE_OF_LOCATION[cfg.location]}`);
  }
  const networks = checkNetworks(cfg, report);
  const declared = new Set(cfg.networks.map((n) => n.name));
  const ipOwners = new Map<string, string>(); // "net/ip" -> path that claimed it

  const lbServer = cfg.ingress.mode === "own" ? cfg.ingress.server : undefined;
  const allServers: Array<{ server: ServerConfig; path: string }> = cfg.servers.map((server, i) => ({ server, path: `servers[${i}]` }));
  if (lbServer) allServers.push({ server: lbServer, path: "ingress.server" });

  const seenNames = new Map<string, string>();
  for (const { server, path } of allServers) {
    const earlier = seenNames.get(server.name);
    if (earlier) report(`${path}.name`, `server name "${server.name}" is already used by ${earlier}; give each server its own name`);
    else seenNames.set(server.name, path);
    checkServer(server, path, networks, declared, ipOwners, report);
  }

  if (cfg.ingress.mode === "attach") {
    const net = networks.get(cfg.ingress.network);
    if (!declared.has(cfg.ingress.network)) {
      report("ingress.network", `unknown network "${cfg.ingress.network}"; the LB joins one of this stack's networks: ${[...declared].join(", ")}`);
    } else if (net) {
      checkPrivateIp(cfg.ingress.ip, net, "ingress.ip", ipOwners, report);
    }
  } else {
    if (!(ENGINES as readonly string[]).includes(cfg.ingress.engine)) {
      report("ingress.engine", `unknown engine "${cfg.ingress.engine}"; use "haproxy" or "ts"`);
    }
    const stats = cfg.ingress.stats;
    if (stats.enabled && !stats.passwordSecret) {
      report("ingress.stats.passwordSecret", "stats is enabled without a password; name a secret config key (pulumi config set --secret statsPassword ...) or set stats.enabled: false");
    }
    if (stats.enabled && stats.allowedCidrs.length === 0) {
      report("ingress.stats.allowedCidrs", "stats is enabled but no source may reach it; list the CIDRs allowed to see the stats page");
    }
    const statsCidrs = stats.allowedCidrs.flatMap((c, i) => checkCidr(c, `ingress.stats.allowedCidrs[${i}]`, report) ?? []);
    // The stats page is HTTP basic auth in clear text: never open to a large part of the internet.
    const wide = stats.enabled ? wideCoverage(statsCidrs) : undefined;
    if (wide) {
      report(
        "ingress.stats.allowedCidrs",
        `together these cover ${wide}, and the stats page sends its password in clear text (HTTP basic auth); list your admin networks, or reach it through SSH from wherever SSH is allowed: ssh -L ${stats.port}:127.0.0.1:${stats.port} root@<lb>`,
      );
    }
    const ports = cfg.ingress.ports;
    if (ports.http === ports.https) report("ingress.ports.http", `http and https both use port ${ports.http}; give them different ports`);
    if (stats.enabled && (stats.port === ports.http || stats.port === ports.https)) {
      report("ingress.stats.port", `stats port ${stats.port} collides with a public port; choose another (8404 is HAProxy's usual)`);
    }
    checkMetrics(cfg, cfg.ingress, networks, report);
    if (cfg.ingress.healthCheck.timeout > cfg.ingress.healthCheck.interval) {
      report("ingress.healthCheck.timeout", "the check timeout is longer than the check interval; make it shorter");
    }
  }
  const attachedStacks = cfg.ingress.mode === "own" ? checkAttachedStacks(stack, cfg.ingress.attachedStacks, networks, report) : [];

  if (allServers.length > SPREAD_GROUP_LIMIT) {
    report("servers", `${allServers.length} servers (the LB included), but a Hetzner spread placement group, one per stack, holds at most ${SPREAD_GROUP_LIMIT}; split the servers over two stacks`);
  }

  const sites = checkSites(cfg, declared, report);
  checkAcme(cfg, report);
  checkSsh(cfg, report);

  const ingress = cfg.ingress.mode === "own" ? { ...cfg.ingress, engine: cfg.ingress.engine as Engine, attachedStacks } : cfg.ingress;
  return {
    stack,
    location: cfg.location,
    networkZone: cfg.networkZone,
    networks: cfg.networks,
    servers: cfg.servers,
    sites,
    ingress,
    ssh: cfg.ssh,
    protect: cfg.protect,
    containerImages: cfg.containerImages,
    ...(cfg.acme ? { acme: cfg.acme } : {}),
  };
}

/**
 * Metrics are served on the LB's private addresses only, so every scraper has to be inside one
 * of its networks: a server of this stack that shares one, or a CIDR inside one. Anything else
 * could never connect, and saying so here beats a scrape that silently times out.
 */
function checkMetrics(cfg: StackConfig, ingress: OwnIngressConfig, networks: Map<string, ParsedNetwork>, report: Report): void {
  const { metrics, ports, stats } = ingress;
  const lbNetworks = Object.keys(ingress.server.networks).flatMap((n) => networks.get(n) ?? []);
  const where = lbNetworks.map((n) => `${n.name} (${n.range.text})`).join(", ") || "(none)";
  if (metrics.enabled && metrics.scrapers.length === 0) {
    report("ingress.metrics.scrapers", `metrics are enabled but nothing may scrape them; name the server that runs Prometheus (e.g. monitoring) or a CIDR inside the LB's network(s): ${where}`);
  }
  const servers = new Map(cfg.servers.map((s) => [s.name, s]));
  metrics.scrapers.forEach((entry, i) => {
    const path = `ingress.metrics.scrapers[${i}]`;
    if (!isScraperAddress(entry)) {
      const server = servers.get(entry);
      if (entry === ingress.server.name) report(path, `"${entry}" is the load balancer, which always reaches its own metrics; name the server that scrapes them`);
      else if (!server) report(path, `unknown server "${entry}"; name a server of this stack (${cfg.servers.map((s) => s.name).join(", ") || "none declared"}) or write a CIDR inside the LB's network(s): ${where}`);
      else if (!lbNetworks.some((n) => server.networks[n.name] !== undefined)) {
        report(path, `server "${entry}" shares no network with the load balancer (${where}), and metrics are served on the LB's private address only; put it in one of them or name another scraper`);
      }
      return;
    }
    const cidr = checkCidr(scraperCidrText(entry), path, report);
    if (!cidr) return;
    if (cidr.family !== 4 || !lbNetworks.some((n) => n.range.prefix <= cidr.prefix && cidrContainsIpv4(n.range, cidr.base))) {
      report(path, `${entry} is outside the LB's private network(s) ${where}, and metrics are served on the LB's private address only, so it could never scrape them; write an address or CIDR inside one of them, or a server's name`);
    }
  });
  if (!metrics.enabled) return;
  const clash =
    metrics.port === ports.http || metrics.port === ports.https ? "a public port"
    : stats.enabled && metrics.port === stats.port ? "the stats page's port"
    : metrics.port === 22 ? "SSH's port"
    : undefined;
  if (clash) report("ingress.metrics.port", `metrics port ${metrics.port} is ${clash}; choose another (8405 is the usual)`);
}

/** Sites with `tls.source: acme` need the account settings, and dns-01 needs the DNS token. */
function checkAcme(cfg: StackConfig, report: Report): void {
  const token = cfg.acme?.dnsTokenSecret;
  if (token === "hcloud:token" || token === "hcloudToken") {
    report("acme.dnsTokenSecret", "this is the token that runs the stack: every web server would hold it, and a Hetzner token cannot be limited to DNS; keep the zones in a Hetzner project of their own and give its token under another secret key");
  }
  cfg.sites.forEach((site, i) => {
    if (site.tls.source !== "acme") return;
    if (!cfg.acme) {
      report(`sites[${i}].tls`, 'tls.source is "acme" but the stack has no acme settings; add acme: { email: <your address> } (docs/config.md, "Certificates from ACME")');
      return;
    }
    if (site.tls.challenge === "dns-01" && cfg.acme.dnsTokenSecret === undefined) {
      report(`sites[${i}].tls.challenge`, "dns-01 needs a Hetzner DNS token; set acme.dnsTokenSecret to a secret config key (pulumi config set --secret hetznerDnsToken ...) or use challenge: http-01");
    }
  });
}

/**
 * What the LB lets each attached stack route (see topology/attached-routes.ts): its network
 * must be private and apart from this stack's and every other attached stack's networks, or
 * its "own" servers could be this stack's; its zones must be real DNS names, apart from other
 * attached stacks' zones. Zones are returned normalised.
 */
function checkAttachedStacks(owner: string, entries: readonly AttachedStackConfig[], networks: Map<string, ParsedNetwork>, report: Report): AttachedStackConfig[] {
  const ranges: Array<{ range: Ipv4Cidr; what: string }> = [...networks.values()].map((n) => ({ range: n.range, what: `this stack's network "${n.name}"` }));
  const zones: Array<{ zone: string; stack: string }> = [];
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const path = `ingress.attachedStacks[${i}]`;
    if (entry.stack === owner) report(`${path}.stack`, `"${owner}" is this stack; list the stacks that attach to it`);
    if (seen.has(entry.stack)) report(`${path}.stack`, `stack "${entry.stack}" is listed twice; list it once`);
    seen.add(entry.stack);
    const range = checkCidr(entry.network, `${path}.network`, report);
    if (range && (range.family !== 4 || !PRIVATE_RANGES.some((p) => p.prefix <= range.prefix && cidrContainsIpv4(p, range.base)))) {
      report(`${path}.network`, `${entry.network} is not a private IPv4 range; write the range of stack ${entry.stack}'s network, e.g. 172.20.0.0/16`);
    } else if (range) {
      const clash = ranges.find((r) => cidrsOverlap(r.range, range));
      if (clash) report(`${path}.network`, `${entry.network} overlaps ${clash.what} (${clash.range.text}); an attached stack's servers must lie in a network of its own`);
      ranges.push({ range, what: `the network of attached stack "${entry.stack}"` });
    }
    const normalised = entry.zones.map((zone, j) => {
      const h = normaliseHostname(zone);
      if (!h.ok) {
        report(`${path}.zones[${j}]`, `"${zone}" is not a DNS zone: ${h.reason}`);
        return zone;
      }
      if (h.hostname.split(".").length < 2) report(`${path}.zones[${j}]`, `"${zone}" is a top-level domain; delegate a zone you own, e.g. demo.example.com`);
      const other = zones.find((z) => z.stack !== entry.stack && (z.zone === h.hostname || h.hostname.endsWith(`.${z.zone}`) || z.zone.endsWith(`.${h.hostname}`)));
      if (other) report(`${path}.zones[${j}]`, `zone "${h.hostname}" overlaps zone "${other.zone}" of attached stack "${other.stack}"; give each stack zones of its own`);
      zones.push({ zone: h.hostname, stack: entry.stack });
      return h.hostname;
    });
    return { ...entry, zones: normalised };
  });
}

function checkCidr(text: string, path: string, report: Report): Cidr | undefined {
  const c = parseCidr(text);
  if (typeof c === "string") {
    report(path, c);
    return undefined;
  }
  return c;
}

function checkNetworks(cfg: StackConfig, report: Report): Map<string, ParsedNetwork> {
  const out = new Map<string, ParsedNetwork>();
  const ranges: Array<{ range: Ipv4Cidr; path: string; name: string }> = [];
  cfg.networks.forEach((net, i) => {
    const path = `networks[${i}]`;
    if (out.has(net.name)) report(`${path}.name`, `network name "${net.name}" is used twice; give each network its own name`);
    const range = checkCidr(net.ipRange, `${path}.ipRange`, report);
    if (!range) return;
    if (range.family !== 4) return report(`${path}.ipRange`, "Hetzner private networks are IPv4; use a range such as 172.24.0.0/16");
    if (!PRIVATE_RANGES.some((p) => p.prefix <= range.prefix && cidrContainsIpv4(p, range.base))) {
      return report(`${path}.ipRange`, `${net.ipRange} is not in a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`);
    }
    for (const other of ranges) {
      if (cidrsOverlap(range, other.range)) {
        report(`${path}.ipRange`, `${net.ipRange} overlaps network "${other.name}" (${other.range.text}); private networks must not overlap, or the LB cannot route to both`);
      }
    }
    ranges.push({ range, path, name: net.name });
    const subnets: Ipv4Cidr[] = [];
    net.subnets.forEach((s, j) => {
      const sp = `${path}.subnets[${j}].ipRange`;
      const sub = checkCidr(s.ipRange, sp, report);
      if (!sub) return;
      if (sub.family !== 4 || sub.prefix < range.prefix || !cidrContainsIpv4(range, sub.base)) {
        return report(sp, `subnet ${s.ipRange} is not inside network "${net.name}" (${net.ipRange}); pick a subnet of it`);
      }
      if (sub.prefix > 29) return report(sp, `subnet ${s.ipRange} is too small for servers; use /29 or larger`);
      for (const o of subnets) {
        if (cidrsOverlap(sub, o)) report(sp, `subnet ${s.ipRange} overlaps subnet ${o.text}; subnets of a network must not overlap`);
      }
      subnets.push(sub);
    });
    out.set(net.name, { name: net.name, range, subnets });
  });
  return out;
}

function checkServer(server: ServerConfig, path: string, networks: Map<string, ParsedNetwork>, declared: ReadonlySet<string>, ipOwners: Map<string, string>, report: Report): void {
  const removed = removedServerTypeMessage(server.serverType);
  if (removed) report(`${path}.serverType`, removed);
  const facts = KNOWN_IMAGES[server.image];
  if (!facts) {
    report(`${path}.image`, `unknown image "${server.image}"; use one whose podman has Quadlet: ${quadletImages().join(", ")}`);
  } else if (!facts.quadlet) {
    report(`${path}.image`, `image "${server.image}" ships podman ${facts.podman}, which lacks Quadlet (needs podman >= 4.4) so the rendered units cannot run; use one of ${quadletImages().join(", ")}`);
  }
  const nets = Object.entries(server.networks);
  if (nets.length === 0) report(`${path}.networks`, "a server needs a fixed private IP in at least one network");
  if (nets.length > MAX_NETWORKS_PER_SERVER) {
    report(`${path}.networks`, `server "${server.name}" is in ${nets.length} networks; Hetzner allows at most ${MAX_NETWORKS_PER_SERVER} per server`);
  }
  for (const [netName, ip] of nets) {
    const net = networks.get(netName);
    if (!net) {
      if (!declared.has(netName)) {
        report(`${path}.networks.${netName}`, `unknown network "${netName}"; declared networks are: ${[...declared].join(", ") || "(none)"}`);
      }
      continue; // a declared network with a bad range was reported already; its addresses cannot be checked
    }
    checkPrivateIp(ip, net, `${path}.networks.${netName}`, ipOwners, report);
  }
}

function checkPrivateIp(ip: string, net: ParsedNetwork, path: string, ipOwners: Map<string, string>, report: Report): void {
  const n = ipv4ToInt(ip);
  if (n === undefined) return report(path, `"${ip}" is not an IPv4 address`);
  if (!cidrContainsIpv4(net.range, n)) {
    return report(path, `${ip} is outside network "${net.name}" (${net.range.text}); choose an address inside it`);
  }
  const sub = net.subnets.find((s) => cidrContainsIpv4(s, n));
  if (!sub) {
    return report(path, `${ip} is not in any subnet of network "${net.name}" (${net.subnets.map((s) => s.text).join(", ")}); add a subnet that holds it or choose an address in one`);
  }
  // Hetzner reserves a subnet's network address and its first host (the gateway, .1).
  const offset = n - sub.base;
  if (offset === 0 || offset === 1 || offset === cidrSize(sub) - 1) {
    return report(path, `${ip} is reserved in subnet ${sub.text} (network, gateway or broadcast address); use ${intToIpv4(sub.base + 2)} or above`);
  }
  const key = `${net.name}/${ip}`;
  const owner = ipOwners.get(key);
  if (owner) return report(path, `${ip} in network "${net.name}" is already taken by ${owner}; give each server its own address`);
  ipOwners.set(key, path);
}

function checkSites(cfg: StackConfig, declared: ReadonlySet<string>, report: Report): StackConfig["sites"] {
  const servers = new Map(cfg.servers.map((s) => [s.name, s]));
  const lbNetworks = cfg.ingress.mode === "own" ? Object.keys(cfg.ingress.server.networks) : [cfg.ingress.network];
  const hostnames = new Map<string, string>();
  const listeners = new Map<string, { path: string; tls: string; protocols: string }>();
  const out: StackConfig["sites"] = [];
  cfg.sites.forEach((site, i) => {
    const path = `sites[${i}]`;
    const h = normaliseHostname(site.hostname);
    let hostname = site.hostname;
    if (!h.ok) report(`${path}.hostname`, `"${site.hostname}" is not a valid SNI hostname: ${h.reason}`);
    else {
      hostname = h.hostname;
      const earlier = hostnames.get(hostname);
      if (earlier) report(`${path}.hostname`, `hostname "${hostname}" is already routed by ${earlier}; each hostname goes to exactly one server:port`);
      else hostnames.set(hostname, path);
    }
    const server = servers.get(site.server);
    if (!server) {
      const isLb = cfg.ingress.mode === "own" && cfg.ingress.server.name === site.server;
      report(`${path}.server`, isLb
        ? `"${site.server}" is the load balancer; sites run on backend servers listed under servers`
        : `unknown server "${site.server}"; declared servers are: ${cfg.servers.map((s) => s.name).join(", ") || "(none)"}`);
    } else {
      const shared = Object.keys(server.networks).filter((n) => lbNetworks.includes(n) && declared.has(n));
      if (shared.length === 0) {
        report(`${path}.server`, `server "${site.server}" shares no network with the load balancer (${lbNetworks.join(", ")}); put it in one of them so the LB can reach it`);
      }
      if (site.port === ACME_CHALLENGE_PORT || site.port === 22) {
        report(`${path}.port`, `port ${site.port} is the server's ${site.port === 22 ? "SSH" : "ACME challenge responder (plain HTTP for the LB)"}; choose another port for the site`);
      }
      const key = `${site.server}:${site.port}`;
      const tls = JSON.stringify(site.tls);
      const protocols = [...site.tlsProtocols].sort().join(" ");
      const other = listeners.get(key);
      if (other && other.tls !== tls) {
        report(`${path}.tls`, `${key} is also served by ${other.path} with a different certificate; one listener has one certificate here, so give this site its own port or use one certificate (e.g. with both names as SANs) for both`);
      } else if (other && other.protocols !== protocols) {
        // nginx settles the TLS version before SNI picks a server block, so one listener has one set.
        report(`${path}.tlsProtocols`, `${key} is also served by ${other.path} with TLS protocols ${other.protocols}; sites on one listener share their TLS versions, so use the same list or another port`);
      } else if (!other) listeners.set(key, { path, tls, protocols });
    }
    out.push({ ...site, hostname });
  });
  return out;
}

function checkSsh(cfg: StackConfig, report: Report): void {
  const cidrs: Cidr[] = [];
  let whole = false;
  cfg.ssh.adminCidrs.forEach((text, i) => {
    const c = checkCidr(text, `ssh.adminCidrs[${i}]`, report);
    if (!c) return;
    cidrs.push(c);
    if (isWholeInternet(c) && !cfg.ssh.allowFromAnywhere) {
      whole = true;
      report(`ssh.adminCidrs[${i}]`, `${text} opens SSH to the whole internet; list your admin addresses instead, or set ssh.allowFromAnywhere: true to accept that risk explicitly`);
    }
  });
  // Measured, not matched: 0.0.0.0/1 + 128.0.0.0/1 is the whole internet too.
  if (whole || cfg.ssh.allowFromAnywhere) return;
  const wide = wideCoverage(cidrs);
  if (wide) report("ssh.adminCidrs", `together these cover ${wide}, not an operator's networks; list your admin addresses instead, or set ssh.allowFromAnywhere: true to accept that risk explicitly`);
}

