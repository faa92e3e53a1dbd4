// Small test bundles in the on-host overlay layout apply.sh expects (docs/apply.md):
// files at their canonical paths under the bundle root, apply.sh at the root, and a
// MANIFEST of "path mode sha256". The configs are written here, not by the renderers,
// and name the test's temp root instead of /srv/ingress.
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { buildScript } from "../../../components/program/program-files";
import type { RoutesPolicy } from "../../../topology/attached-routes";

export const APPLY_SH = join(__dirname, "..", "..", "..", "files", "apply.sh");

export type BundleFile = string | { readonly content: string; readonly mode: number };
/** Bundle-relative path (e.g. "srv/ingress/current/nginx/nginx.conf") -> content. */
export type BundleFiles = Readonly<Record<string, BundleFile>>;

export const CURRENT = "srv/ingress/current";
export const QUADLET = "etc/containers/systemd";

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function manifestOf(entries: readonly { path: string; mode: number; sha: string }[]): string {
  return [...entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => `${e.path} ${e.mode.toString(8).padStart(4, "0")} ${e.sha}\n`)
    .join("");
}

/**
 * Writes a bundle under `incomingDir/<hash>/` as the Pulumi side copies it, and returns
 * that directory. The hash is over MANIFEST, so equal content gives the same path.
 */
export async function writeBundle(incomingDir: string, files: BundleFiles, applySh = APPLY_SH): Promise<string> {
  const script = await readFile(applySh);
  const entries = [{ path: "apply.sh", mode: 0o755, sha: sha256(script) }];
  const resolved = Object.entries(files).map(([path, f]) => {
    const { content, mode } = typeof f === "string" ? { content: f, mode: 0o644 } : f;
    return { path, content, mode };
  });
  // As the Pulumi side ships it: apply.sh at the root (the deploy runs it) and in the
  // release (route pushes run <root>/current/apply.sh).
  entries.push({ path: `${CURRENT}/apply.sh`, mode: 0o755, sha: sha256(script) });
  for (const f of resolved) entries.push({ path: f.path, mode: f.mode, sha: sha256(f.content) });
  const manifest = manifestOf(entries);
  const dir = join(incomingDir, sha256(manifest).slice(0, 16));
  await mkdir(dir, { recursive: true });
  await copyFile(applySh, join(dir, "apply.sh"));
  await chmod(join(dir, "apply.sh"), 0o755);
  await mkdir(join(dir, CURRENT), { recursive: true });
  await copyFile(applySh, join(dir, CURRENT, "apply.sh"));
  await chmod(join(dir, CURRENT, "apply.sh"), 0o755);
  for (const f of resolved) {
    const p = join(dir, f.path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.content, { mode: f.mode });
  }
  await writeFile(join(dir, "MANIFEST"), manifest);
  return dir;
}

export interface NginxBundleOptions {
  /** The host's INGRESS_ROOT (stands for /srv/ingress). */
  readonly root: string;
  /** pid, logs and temp dirs: outside the release, as /run and /var are on a host. */
  readonly runDir: string;
  readonly port: number;
  readonly body: string;
  /** Extra `listen` lines for the site (e.g. an address the host does not have). */
  readonly extraListen?: readonly string[];
  /** Replaces the site file's text, e.g. with a broken one. */
  readonly siteText?: string;
  readonly unitText?: string;
  /** The check record's command, if not NGINX_CHECK. */
  readonly check?: readonly string[];
}

/**
 * apply.plan as render/apply-plan.ts writes it: records of tab-separated fields. Checks here
 * run this machine's binaries instead of podman, which is the only difference.
 */
export function applyPlan(records: readonly (readonly (string | number)[])[]): string {
  return records.map((r) => r.join("\t")).join("\n") + "\n";
}

export const NGINX_CHECK = ["/usr/sbin/nginx", "-t", "-e", "stderr", "-c", "{dir}/nginx/nginx.conf"];
export const HAPROXY_CHECK = ["/usr/sbin/haproxy", "-c", "-f", "{dir}/haproxy/haproxy.cfg", "-f", "{dir}/haproxy/routes.d"];

export function nginxUnit(image = "docker.io/library/nginx:1.27-alpine", extra = ""): string {
  return [
    "[Container]",
    `Image=${image}`,
    "Network=host",
    "Volume=/srv/ingress:/srv/ingress:ro,Z",
    "Exec=nginx -c /srv/ingress/current/nginx/nginx.conf -g \"daemon off;\"",
    extra,
    "[Service]",
    "ExecReload=/usr/bin/podman kill --signal HUP systemd-%N",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export function nginxBundle(o: NginxBundleOptions): BundleFiles {
  const tmp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `  ${k}_temp_path ${o.runDir}/tmp-${k};`);
  const conf = [
    "user root;",
    "worker_processes 1;",
    `pid ${o.runDir}/nginx.pid;`,
    `error_log ${o.runDir}/nginx-error.log info;`,
    "events { worker_connections 64; }",
    "http {",
    ...tmp,
    "  access_log off;",
    "  default_type text/plain;",
    `  include ${o.root}/current/nginx/sites/*.conf;`,
    "}",
    "",
  ].join("\n");
  const listens = [`listen ${o.port};`, ...(o.extraListen ?? []).map((l) => `listen ${l};`)];
  const site = o.siteText ?? ["server {", ...listens.map((l) => `  ${l}`), `  location / { return 200 "${o.body}\\n"; }`, "}", ""].join("\n");
  return {
    [`${CURRENT}/nginx/nginx.conf`]: conf,
    [`${CURRENT}/nginx/sites/site.conf`]: site,
    [`${QUADLET}/nginx.container`]: o.unitText ?? nginxUnit(),
    [`${CURRENT}/apply.plan`]: applyPlan([
      ["unit", "nginx", "nginx"],
      ["check", "nginx", "nginx/nginx.conf", ...(o.check ?? NGINX_CHECK)],
      ["probe", "127.0.0.1", o.port, "nginx", "site"],
      ...(o.extraListen ?? []).map((l) => ["probe", l.slice(0, l.lastIndexOf(":")), l.slice(l.lastIndexOf(":") + 1), "nginx", "site"]),
    ]),
  };
}

export interface HaproxyBundleOptions {
  readonly root: string;
  readonly stack: string;
  readonly port: number;
  /** Returned by GET /version, to see which config is live. */
  readonly version: string;
  /** hostname -> body of the stack's own backends. */
  readonly routes: Readonly<Record<string, string>>;
  readonly nftElement?: number;
  readonly nftText?: string;
  readonly haproxyText?: string;
  /** More [Container] lines of the haproxy unit, e.g. an EnvironmentFile=. */
  readonly unitLines?: readonly string[];
  /** The check record's command, if not HAPROXY_CHECK. */
  readonly check?: readonly string[];
  /** TLS passthrough by SNI through routes.map, as the real LB does: attached stacks' backends. */
  readonly tlsPort?: number;
  /** What attached stacks may route (attached/policy.json); none may attach without it. */
  readonly policy?: RoutesPolicy | undefined;
}

let renderer: string | undefined;
/** files/render-routes.ts built as the program builds it for the LB's release. */
export function routesRenderer(): string {
  renderer ??= buildScript(join(__dirname, "..", "..", "..", "files", "render-routes.ts"));
  return renderer;
}

/**
 * An attached stack's routes.json as the program sends it: each hostname to the one server
 * `address:port`, checked with the first hostname's SNI.
 */
export function routesData(stack: string, hostnames: readonly string[], address: string, port: number): string {
  const backend = `${stack}_web_${port}`;
  return JSON.stringify({
    stack,
    backends: [{ name: backend, servers: [{ name: "web", address, port }], check: { sni: hostnames[0], path: "/healthz" } }],
    routes: hostnames.map((hostname) => ({ hostname, backend })),
  });
}

/** Route fragment files of one stack: <stack>.cfg (backends) and <stack>.map (host -> backend). */
export function routeFragment(stack: string, routes: Readonly<Record<string, string>>): Record<string, string> {
  const cfg: string[] = [];
  const map: string[] = [];
  Object.entries(routes).forEach(([host, body], i) => {
    const backend = `${stack}_b${i}`;
    cfg.push(`backend ${backend}`, "    mode http", `    http-request return status 200 content-type text/plain string "${body}"`, "");
    map.push(`${host} ${backend}`);
  });
  return { [`${stack}.cfg`]: cfg.join("\n"), [`${stack}.map`]: map.join("\n") + "\n" };
}

export function nftRuleset(element: number): string {
  return [
    "table inet apply_test",
    "delete table inet apply_test",
    "table inet apply_test {",
    `  set marks { type inet_service; elements = { ${element} } }`,
    "  chain input { type filter hook input priority 0; policy accept; }",
    "}",
    "",
  ].join("\n");
}

export function haproxyBundle(o: HaproxyBundleOptions): BundleFiles {
  const map = `${o.root}/current/haproxy/routes.map`;
  const cfg = [
    "global",
    "    maxconn 256",
    // tcp, as the real LB's defaults: attached stacks' backends are rendered for it.
    "defaults",
    "    mode tcp",
    "    timeout connect 2s",
    "    timeout client 5s",
    "    timeout server 5s",
    ...(o.tlsPort === undefined
      ? []
      : [
          "frontend tls",
          `    bind *:${o.tlsPort}`,
          "    tcp-request inspect-delay 5s",
          "    tcp-request content accept if { req.ssl_hello_type 1 }",
          `    use_backend %[req.ssl_sni,lower,map(${map})]`,
        ]),
    "frontend web",
    "    mode http",
    `    bind *:${o.port}`,
    `    http-request return status 200 content-type text/plain string "${o.version}" if { path /version }`,
    `    use_backend %[req.hdr(host),lower,map(${map})]`,
    "    default_backend no_route",
    "backend no_route",
    "    mode http",
    '    http-request return status 404 content-type text/plain string "no route"',
    "",
  ].join("\n");
  const fragment = routeFragment(o.stack, o.routes);
  const files: Record<string, string> = {
    [`${CURRENT}/haproxy/haproxy.cfg`]: o.haproxyText ?? cfg,
    [`${QUADLET}/haproxy.container`]: [
      "[Container]",
      "Image=docker.io/library/haproxy:3.2-alpine",
      "Network=host",
      "Volume=/srv/ingress:/srv/ingress:ro,Z",
      "Exec=haproxy -W -db -f /srv/ingress/current/haproxy/haproxy.cfg -f /srv/ingress/current/haproxy/routes.d",
      ...(o.unitLines ?? []),
      "[Service]",
      "ExecReload=/usr/bin/podman kill --signal USR2 systemd-%N",
      "",
    ].join("\n"),
  };
  for (const [name, text] of Object.entries(fragment)) files[`${CURRENT}/haproxy/routes.d/${name}`] = text;
  const nft = o.nftElement !== undefined || o.nftText !== undefined;
  files[`${CURRENT}/apply.plan`] = applyPlan([
    ["unit", "haproxy", "haproxy"],
    ["check", "haproxy", "haproxy/haproxy.cfg", ...(o.check ?? HAPROXY_CHECK)],
    ["probe", "127.0.0.1", o.port, "haproxy", "http"],
    ...(o.tlsPort === undefined ? [] : [["probe", "127.0.0.1", o.tlsPort, "haproxy", "https"]]),
    ...(nft ? [["nft", "nftables/ingress.nft", "apply_test"]] : []),
    ["map", "haproxy/routes.map", "haproxy/routes.d"],
  ]);
  if (o.policy) {
    files[`${CURRENT}/attached/policy.json`] = JSON.stringify(o.policy, null, 2) + "\n";
    files[`${CURRENT}/attached/node-image`] = "docker.io/library/node:24-alpine\n";
    files[`${CURRENT}/attached/render-routes.js`] = routesRenderer();
  }
  if (o.nftElement !== undefined || o.nftText !== undefined) {
    files[`${CURRENT}/nftables/ingress.nft`] = o.nftText ?? nftRuleset(o.nftElement ?? 0);
  }
  return files;
}
