// HAProxy as a layer-4 SNI router: haproxy.cfg (global, defaults, frontends, stats), one
// routes.d/<stack>.cfg of backend sections per stack, and one routes.d/<stack>.map per stack.
// Pure: the same plan gives byte-identical text. Syntax is what both HAProxy 2.6 (Debian 12,
// the tests) and 3.2 (the production image) accept; see docs/haproxy.md.
import { formatDuration } from "../topology/duration";
import * as paths from "../topology/paths";
import { haproxyCheckInfoRules } from "../contract/certificate-info";
import { ingressOf, metricsAllowedSources, STATS_LOOPBACK_SOURCES, type HostPlan, type IngressPlan, type LbBackend, type MetricsPlan, type RouteFragment, type RouteSettings } from "../topology";

/** The original setup's log line, kept so operators' greps and dashboards still work. */
export const HAPROXY_LOG_FORMAT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

const STATS_URI = "/stats";
/** Names of the challenge backends: a colon, which no TLS backend name may hold, so none can clash. */
export const ACME_BACKEND_PREFIX = "acme:";

const d = formatDuration;

function section(header: string, lines: readonly string[]): string {
  return [header, ...lines.map((l) => (l === "" ? "" : `    ${l}`))].join("\n") + "\n";
}

/** Listen on IPv4 and IPv6 with separate sockets: a dual-stack socket would report IPv4
 * clients as ::ffff:a.b.c.d, and that form would travel on in the PROXY header to nginx. */
function binds(port: number): string[] {
  return [`bind :${port}`, `bind :::${port} v6only`];
}

/** Each frontend's per-source connection rate: its own table, IPv6 keyed by prefix, silent drop over it. */
function perSourceRateLimit(rateLimit: IngressPlan["rateLimit"]): string[] {
  return [
    `stick-table type ipv6 size ${rateLimit.tableSize} expire ${d(rateLimit.expire)} store conn_rate(${d(rateLimit.window)})`,
    `tcp-request connection track-sc0 src,ipmask(32,${rateLimit.ipv6Prefix})`,
    `tcp-request connection silent-drop if { sc0_conn_rate ge ${rateLimit.threshold} }`,
  ];
}

export function renderHaproxyConfig(host: HostPlan): string {
  const ingress = ingressOf(host, "haproxy");
  const { ports, rateLimit, timeouts } = ingress;
  const map = paths.HAPROXY_ROUTES_MAP;
  const sni = `req.ssl_sni,lower,map(${map})`;
  // The Host header without a port, looked up in the same map as the SNI.
  const acmeHost = `req.hdr(host),field(1,:),lower,map(${map})`;

  const header = [
    `# haproxy.cfg for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "#",
    "# Layer-4 TLS passthrough. HAProxy reads the SNI from the ClientHello, looks the lowercased",
    `# name up in ${map} and forwards the untouched TLS stream to the nginx`,
    "# that owns the name, prefixed with a PROXY v2 header that carries the client's address.",
    "# Backends and map lines come from routes.d/, one <stack>.cfg and <stack>.map per stack; the",
    "# deploy assembles the maps into routes.map, so an attached stack adds routes without",
    "# touching this file.",
    "",
  ].join("\n");

  const global = section("global", [
    "# No user/group lines: the official image already runs as user haproxy, and setting",
    '# them anyway is what printed "Failed to drop supplementary groups".',
    "# No daemon line either: the container runs haproxy -W -db (master-worker, foreground),",
    "# and USR2 to the master reloads without dropping established connections.",
    `maxconn ${ingress.maxconn}`,
    "# Logs to stdout, where podman and journald collect them.",
    "log stdout format raw local0 info",
    "# Old workers keep serving their connections after a reload; a tunnel older than this",
    "# is cut so that repeated deploys cannot pile up old processes forever.",
    `hard-stop-after ${d(timeouts.tunnel)}`,
  ]);

  const defaults = section("defaults", [
    "log global",
    "mode tcp",
    `log-format "${HAPROXY_LOG_FORMAT}"`,
    "retries 3",
    `timeout connect ${d(timeouts.connect)}`,
    `timeout client ${d(timeouts.client)}`,
    `timeout server ${d(timeouts.server)}`,
    "# Once both sides talk, the tunnel timeout replaces client/server for long-lived TLS streams.",
    `timeout tunnel ${d(timeouts.tunnel)}`,
  ]);

  const http = section("frontend http_ingress", [
    "mode http",
    ...binds(ports.http),
    "# Plain HTTP redirects, or fetches a small challenge token: a low session rate is plenty, and",
    "# a share of maxconn: port 80 can never hold the connections TLS needs. Sources are",
    "# rate-limited as on https.",
    `maxconn ${ingress.httpMaxconn}`,
    `rate-limit sessions ${rateLimit.httpSessionsPerSecond}`,
    ...perSourceRateLimit(rateLimit),
    `timeout http-request ${d(timeouts.inspect)}`,
    `errorfile 503 ${paths.HAPROXY_ERRORFILE_503}`,
    "",
    "# ACME http-01: a challenge for a routed hostname goes to backend acme:<its TLS backend>",
    "# (routes.d/): as plain HTTP over the private network to the challenge responder of the",
    "# server that owns the name, or, for a backend whose servers name none, the redirect below.",
    "# A challenge for any other name gets a 404.",
    "acl acme_challenge path_beg /.well-known/acme-challenge/",
    `acl acme_routed ${acmeHost} -m found`,
    "http-request deny deny_status 404 if acme_challenge !acme_routed",
    "",
    "# Everything else: the same host and path on https.",
    ...(ports.https === 443
      ? ["http-request redirect scheme https code 301 unless acme_challenge"]
      : [`http-request redirect location https://%[req.hdr(host),field(1,:)]:${ports.https}%[capture.req.uri] code 301 unless acme_challenge`]),
    // What a backend without responders redirects to (it cannot know the port itself).
    `http-request set-var(txn.https_port) int(${ports.https}) if acme_challenge`,
    `use_backend ${ACME_BACKEND_PREFIX}%[${acmeHost}] if acme_challenge`,
  ]);

  const https = section("frontend https_ingress", [
    "mode tcp",
    ...binds(ports.https),
    "",
    "# Per-source connection rate. Over the threshold the connection is dropped silently:",
    "# the attacker waits for timeouts instead of getting a fast refusal to retry on.",
    `# IPv6 sources count per /${rateLimit.ipv6Prefix} (one host usually holds a whole /64), IPv4 per address.`,
    ...perSourceRateLimit(rateLimit),
    "",
    "# Wait for a complete ClientHello, at most this long.",
    `tcp-request inspect-delay ${d(timeouts.inspect)}`,
    "acl client_hello req.ssl_hello_type 1",
    `acl known_sni ${sni} -m found`,
    "# Unknown or missing SNI: dropped silently, never sent to some default backend.",
    "tcp-request content silent-drop if client_hello !known_sni",
    "tcp-request content accept if client_hello",
    "# Not TLS, or no hello before the inspect delay ran out.",
    "tcp-request content silent-drop",
    "",
    "# The map names the backend, so routes of attached stacks need no edit here.",
    `use_backend %[${sni}]`,
  ]);

  const parts = [header, global, defaults, http, https];
  if (ingress.stats.enabled) parts.push(renderStats(ingress.stats));
  if (ingress.metrics) parts.push(renderMetrics(ingress.metrics));
  return parts.join("\n");
}

function renderMetrics(metrics: MetricsPlan): string {
  return section("frontend metrics", [
    "mode http",
    "# The LB's private address(es) only, never the public one. transparent lets the socket bind",
    "# before the address is up (a boot whose private network is slow to get it): without it HAProxy",
    "# would refuse to start, and take 80 and 443 down with it.",
    ...metrics.addresses.map((a) => `bind ${a}:${metrics.port} transparent`),
    "# A scrape every few seconds would be a log line each: only refused or failed requests are logged.",
    "option dontlog-normal",
    "# nftables already lets only the scrapers in; refuse anyone else here too, in case it is ever",
    "# misconfigured. The LB's own addresses: a curl on the LB itself.",
    `acl metrics_allowed src ${metricsAllowedSources(metrics).join(" ")}`,
    "http-request deny if !metrics_allowed",
    "# HAProxy's built-in exporter (USE_PROMEX: the official image and Debian's package have it).",
    `http-request use-service prometheus-exporter if { path ${metrics.path} }`,
    "http-request return status 404",
  ]);
}

function renderStats(stats: IngressPlan["stats"]): string {
  return section("listen stats", [
    "mode http",
    ...binds(stats.port),
    "# The cloud firewall and nftables already limit who reaches this port; refuse anyone",
    "# else here too, in case either is ever misconfigured. Loopback: an SSH tunnel.",
    `acl stats_allowed src ${[...stats.allowedCidrs, ...STATS_LOOPBACK_SOURCES].join(" ")}`,
    "http-request deny if !stats_allowed",
    "stats enable",
    `stats uri ${STATS_URI}`,
    "stats refresh 10s",
    "stats show-legends",
    "# Credentials come from the environment (stats.env, written on deploy from a Pulumi",
    "# secret): this file is in every PR diff and must never hold a password.",
    'stats auth "${STATS_USER}":"${STATS_PASSWORD}"',
  ]);
}

/** A passed check's text names the server's certificate and ACME state (contract/certificate-info). */
const certificateRules = haproxyCheckInfoRules(200);

function renderBackend(backend: LbBackend, settings: RouteSettings): string {
  const { healthCheck: hc, timeouts } = settings;
  const { sni, path } = backend.check;
  const servers = backend.servers.map(
    (s) =>
      `server ${s.name} ${s.address}:${s.port} send-proxy-v2 check check-send-proxy check-ssl verify none check-sni ${sni} ` +
      `inter ${d(hc.interval)} fall ${hc.fall} rise ${hc.rise}`,
  );
  const tls = section(`backend ${backend.name}`, [
    "mode tcp",
    "balance roundrobin",
    `timeout connect ${d(timeouts.connect)}`,
    `timeout server ${d(timeouts.server)}`,
    `timeout tunnel ${d(timeouts.tunnel)}`,
    `timeout check ${d(hc.timeout)}`,
    "option httpchk",
    ...certificateRules.beforeSend,
    `http-check send meth GET uri ${path} hdr Host ${sni}`,
    ...certificateRules.expect,
    ...servers,
  ]);
  const responders = backend.servers.filter((s) => s.acmePort !== undefined);
  const acme = section(
    `backend ${ACME_BACKEND_PREFIX}${backend.name}`,
    responders.length === 0
      ? [
          "mode http",
          "http-request redirect scheme https code 301 if { var(txn.https_port) -m int 443 }",
          "http-request redirect location https://%[req.hdr(host),field(1,:)]:%[var(txn.https_port)]%[pathq] code 301",
        ]
      : [
          "mode http",
          // No check: a challenge is rare and short, and the TLS backend's check already tells whether the server is up.
          `timeout connect ${d(timeouts.connect)}`,
          `timeout server ${d(timeouts.server)}`,
          "balance first",
          ...responders.map((s) => `server ${s.name} ${s.address}:${s.acmePort}`),
        ],
  );
  return `${tls}
${acme}`;
}

export function renderHaproxyRoutes(fragment: RouteFragment, ingress: RouteSettings): string {
  const header = [
    `# routes.d/${fragment.stack}.cfg: backends of stack ${fragment.stack}, generated from Pulumi.${fragment.stack}.yaml.`,
    `# Hostnames reach them through routes.d/${fragment.stack}.map. Timeouts are set per backend so this`,
    "# fragment does not depend on the defaults of whichever file HAProxy loaded before it.",
    "#",
    "# Every server line:",
    "# - send-proxy-v2: nginx learns the client's address from the PROXY v2 header.",
    "# - check ... check-ssl verify none check-sni <site> + option httpchk: a real check. It sends",
    "#   the PROXY header, does TLS with the site's SNI and GETs the health path that nginx answers",
    "#   itself; a bare TCP connect would call a listener healthy that cannot serve the site.",
    "#   verify none: the check proves the listener serves TLS, not whose certificate it holds.",
    "# - check-send-proxy: with send-proxy-v2 the checks already send PROXY v2 (command LOCAL),",
    '#   but only while no "port"/"addr" is set; stating it keeps the nginx PROXY listener',
    "#   answering checks if one is ever added.",
    "# - on-success: the stats page's last check of a passed check names the certificate the server",
    "#   serves for <site> (from its health response's headers), the days it has left, WARNING",
    "#   under 14, and its ACME job's state.",
    `# backend ${ACME_BACKEND_PREFIX}<name>: the same servers' ACME http-01 responders (plain HTTP), where`,
    "# port 80 sends /.well-known/acme-challenge/ requests for the backend's hostnames; the first",
    "# server (balance first, as the ts engine does): the token is where the ACME client ran. A",
    "# backend whose servers name no responder (an attached stack of an older release) redirects",
    "# the challenge to https instead, where the site's nginx serves the same webroot.",
    "",
  ].join("\n");
  return [header, ...fragment.backends.map((b) => renderBackend(b, ingress))].join("\n");
}

function byHostname(a: { readonly hostname: string }, b: { readonly hostname: string }): number {
  return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0;
}

export function renderHaproxyMap(fragment: RouteFragment): string {
  return [...fragment.routes].sort(byHostname).map((r) => `${r.hostname} ${r.backend}\n`).join("");
}

/**
 * What the on-host apply does with routes.d/*.map: one routes.map. A hostname in two maps is an
 * error naming it; HAProxy would silently use whichever line came first.
 */
export function assembleHaproxyMap(maps: readonly string[]): string {
  const seen = new Map<string, string>();
  const out: string[] = [];
  maps.forEach((text, index) => {
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const fields = line.split(/\s+/);
      if (fields.length !== 2) throw new Error(`route map #${index + 1} has a malformed line "${line}"; expected "<hostname> <backend>"`);
      const [hostname, backend] = fields as [string, string];
      const earlier = seen.get(hostname);
      if (earlier !== undefined) {
        throw new Error(`hostname "${hostname}" is routed twice (to backends "${earlier}" and "${backend}"); remove it from one stack`);
      }
      seen.set(hostname, backend);
      out.push(`${hostname} ${backend}\n`);
    }
  });
  return out.join("");
}
