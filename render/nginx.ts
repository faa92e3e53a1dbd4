// nginx on a web host: nginx.conf (main context, http defaults, a default server per port that
// rejects unknown names) and one server block per site. Every listener speaks PROXY protocol:
// only the LB reaches it (nftables), and its header carries the real client address.
// Pure: the same plan gives byte-identical text. Accepted by nginx 1.22 (Debian 12, the tests)
// and the 1.28 production image.
import * as paths from "../topology/paths";
import { ACME_HEADER, CERTIFICATE_INFO_FILE } from "../contract/certificate-info";
import { ACME_CHALLENGE_PORT, type HostPlan, type SitePlan, type WebPlan } from "../topology";

type TlsProtocol = SitePlan["site"]["tlsProtocols"][number];
const PROTOCOL_ORDER: readonly TlsProtocol[] = ["TLSv1.2", "TLSv1.3"];

function block(header: string, lines: readonly string[], indent = ""): string {
  const inner = lines.map((l) => (l === "" ? "" : `${indent}    ${l}`));
  return [`${indent}${header} {`, ...inner, `${indent}}`].join("\n") + "\n";
}

/** ACME http-01 tokens, from the webroot the ACME client writes to (the responder and every site). */
const ACME_LOCATION = [
  "location ^~ /.well-known/acme-challenge/ {",
  `    root ${paths.ACME_WEBROOT};`,
  "    default_type text/plain;",
  "    try_files $uri =404;",
  "}",
];

/**
 * An include of a file that may not exist yet: nginx takes a path with a wildcard as a pattern,
 * and a pattern that matches nothing includes nothing (a literal path must exist, or nginx -t fails).
 */
function optionalInclude(path: string): string {
  if (!path.endsWith(".conf")) throw new Error(`optional include ${path} must end in .conf`);
  return `include ${path.slice(0, -1)}[f];`;
}

/**
 * The health location's headers that tell both LB engines which certificate this site serves
 * (CERTIFICATE_INFO_FILE, which apply.sh writes beside each certificate nginx opens, so it is
 * read at the same reload as the certificate) and how its ACME job is faring.
 */
function certificateHeaders(site: SitePlan): string[] {
  const dir = site.cert.slice(0, site.cert.lastIndexOf("/"));
  const acme =
    site.certDelivery === "acme"
      ? [optionalInclude(paths.acmeStatusFile(site.site.hostname))]
      : [`add_header ${ACME_HEADER} ${quote(`not used (tls.source ${site.site.tls.source})`)} always;`];
  return [optionalInclude(`${dir}/${CERTIFICATE_INFO_FILE}`), ...acme];
}

function webOf(host: HostPlan): WebPlan {
  if (host.role !== "web" || !host.web) throw new Error(`host ${host.name} of stack ${host.stack} is not a web host`);
  return host.web;
}

function listens(port: number, extra = ""): string[] {
  return [`listen ${port} ssl proxy_protocol${extra};`, `listen [::]:${port} ssl proxy_protocol${extra};`];
}

/** A single-quoted nginx string. nginx turns \n, \' and \\ back into the characters. */
function quote(text: string): string {
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\r/g, "\\r").replace(/\n/g, "\\n")}'`;
}

function ports(web: WebPlan): number[] {
  return [...new Set(web.sites.map((s) => s.site.port))].sort((a, b) => a - b);
}

/** Fields of the access log; $remote_addr is the client after real_ip, $realip_remote_addr the LB. */
const LOG_FORMAT = [
  "'$remote_addr [$time_local] \"$request\" $status $body_bytes_sent '",
  "'sni=$ssl_server_name host=$host proxy=$proxy_protocol_addr:$proxy_protocol_port '",
  "'lb=$realip_remote_addr \"$http_user_agent\" rt=$request_time'",
];

export function renderNginxConfig(host: HostPlan): string {
  const web = webOf(host);
  const header = [
    `# nginx.conf for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "# Sites are in sites/, one server block each, all behind the LB's PROXY v2 header.",
    "",
  ].join("\n");

  const main = [
    "worker_processes auto;",
    "# The container runs nginx -g 'daemon off;' in the foreground; its pid file stays inside it.",
    "pid /tmp/nginx.pid;",
    "# stderr and stdout go to podman and journald.",
    "error_log stderr notice;",
    "",
  ].join("\n");

  const events = block("events", ["worker_connections 1024;"]);

  const defaults = ports(web).map((port) => {
    const onPort = web.sites.filter((s) => s.site.port === port);
    const protocols = PROTOCOL_ORDER.filter((p) => onPort.some((s) => s.site.tlsProtocols.includes(p)));
    return block(
      "server",
      [
        ...listens(port, " default_server"),
        "# A name this host does not serve fails the handshake instead of getting another site's certificate.",
        "ssl_reject_handshake on;",
        "# The TLS version is negotiated with this server's settings, before the SNI picks a",
        "# site, so a site's own ssl_protocols cannot narrow it: allow the union of this port's sites.",
        `ssl_protocols ${protocols.join(" ")};`,
      ],
      "    ",
    );
  });

  const http = [
    "http {",
    "    # The client's address, the SNI, the PROXY header's address and the LB's, per request.",
    `    log_format ingress ${LOG_FORMAT[0]}`,
    ...LOG_FORMAT.slice(1).map((l, i, all) => `                       ${l}${i === all.length - 1 ? ";" : ""}`),
    "    access_log /dev/stdout ingress;",
    "",
    "    server_tokens off;",
    "    default_type application/octet-stream;",
    "    sendfile on;",
    "    keepalive_timeout 65s;",
    "    ssl_session_cache shared:SSL:10m;",
    "    ssl_session_timeout 1h;",
    "",
    "    # WebSocket upgrades pass through proxied apps; other requests get a plain close.",
    "    map $http_upgrade $connection_upgrade {",
    "        default upgrade;",
    "        '' close;",
    "    }",
    "",
    ...defaults.map((b) => b.trimEnd()),
    "",
    block(
      "server",
      [
        "# ACME http-01 challenges, forwarded by the LB's port 80 for the names it routes here.",
        "# Plain HTTP and no PROXY header; only the LB reaches this port (nftables).",
        `listen ${ACME_CHALLENGE_PORT};`,
        ...ACME_LOCATION,
        "location / {",
        "    return 404;",
        "}",
      ],
      "    ",
    ).trimEnd(),
    "",
    `    include ${paths.NGINX_SITES_D}/*.conf;`,
    "}",
    "",
  ].join("\n");

  return [header, main, events, http].join("\n");
}

function appLocation(site: SitePlan["site"]): string[] {
  const app = site.app;
  if ("upstream" in app) {
    return [
      "location / {",
      `    proxy_pass ${app.upstream};`,
      "    proxy_http_version 1.1;",
      "    proxy_set_header Host $host;",
      "    # $remote_addr is already the real client: real_ip took it from the PROXY header.",
      "    proxy_set_header X-Real-IP $remote_addr;",
      "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "    proxy_set_header X-Forwarded-Proto https;",
      "    proxy_set_header Upgrade $http_upgrade;",
      "    proxy_set_header Connection $connection_upgrade;",
      ...(app.upstream.startsWith("https://") ? ["    proxy_ssl_server_name on;"] : []),
      "}",
    ];
  }
  // A trailing newline keeps a shell prompt off the reply line when someone curls it.
  return ["location / {", "    default_type text/plain;", `    return 200 ${quote(`${app.body}\n`)};`, "}"];
}

export function renderNginxSite(host: HostPlan, site: SitePlan): string {
  const web = webOf(host);
  const s = site.site;
  const lines = [
    ...listens(s.port),
    `server_name ${s.hostname};`,
    "",
    "# Only the LB reaches this listener (nftables); its PROXY header names the real client.",
    ...web.realIpFrom.map((ip) => `set_real_ip_from ${ip};`),
    "real_ip_header proxy_protocol;",
    "",
    `ssl_certificate ${site.cert};`,
    `ssl_certificate_key ${site.key};`,
    `ssl_protocols ${s.tlsProtocols.join(" ")};`,
    "",
    "# The LB's health check (TLS with this SNI, then GET). nginx answers it itself, so a",
    "# check proves the whole path LB -> PROXY -> TLS -> this server works. Its headers name the",
    "# certificate served and the ACME job's state, which the LB's stats page shows.",
    `location = ${s.healthPath} {`,
    "    access_log off;",
    "    default_type text/plain;",
    ...certificateHeaders(site).map((l) => `    ${l}`),
    "    return 200 'ok\\n';",
    "}",
    "",
    "# ACME http-01 over https (a challenge redirected here by an LB of an older release): the same webroot.",
    ...ACME_LOCATION,
    "",
    ...appLocation(s),
  ];
  const header = `# ${s.hostname} on port ${s.port} of ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml.\n`;
  return header + block("server", lines);
}
