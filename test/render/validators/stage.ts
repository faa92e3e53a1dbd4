// Writes a host's rendered files under a temp root, the way the deploy lays them out under
// /srv/ingress/current. The renderers take no root parameter: here the only changes are the
// /srv/ingress/current prefix and, for nginx, the certificate paths.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { paths, type HostPlan, type RouteFragment } from "../../../topology";
import { assembleHaproxyMap, renderHaproxyConfig, renderHaproxyMap, renderHaproxyRoutes } from "../../../render/haproxy";
import { renderErrorFile503 } from "../../../render/errorfile";
import { renderNginxConfig, renderNginxSite } from "../../../render/nginx";
import type { CertificateFiles } from "../../../lab/tls";

export function rebase(text: string, root: string): string {
  return text.split(paths.CURRENT).join(root);
}

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** Path of a rendered file relative to /srv/ingress/current, e.g. "haproxy/routes.d/prod.cfg". */
export function relative(path: string): string {
  const prefix = `${paths.CURRENT}/`;
  if (!path.startsWith(prefix)) throw new Error(`${path} is not under ${paths.CURRENT}`);
  return path.slice(prefix.length);
}

/** Every file of an haproxy ingress host, by path relative to /srv/ingress/current (unrebased). */
export function haproxyFiles(lb: HostPlan, attached: readonly RouteFragment[] = []): Map<string, string> {
  const ingress = lb.ingress!;
  const files = new Map<string, string>();
  files.set(relative(paths.HAPROXY_CFG), renderHaproxyConfig(lb));
  files.set(relative(paths.HAPROXY_ERRORFILE_503), renderErrorFile503());
  const maps: string[] = [];
  for (const fragment of [ingress.fragment, ...attached]) {
    files.set(`${relative(paths.HAPROXY_ROUTES_D)}/${fragment.stack}.cfg`, renderHaproxyRoutes(fragment, ingress));
    const map = renderHaproxyMap(fragment);
    files.set(`${relative(paths.HAPROXY_ROUTES_D)}/${fragment.stack}.map`, map);
    maps.push(map);
  }
  files.set(relative(paths.HAPROXY_ROUTES_MAP), assembleHaproxyMap(maps));
  return files;
}

export interface StagedHaproxy {
  readonly cfg: string;
  readonly routesDir: string;
}

export function stageHaproxy(root: string, lb: HostPlan, attached: readonly RouteFragment[] = []): StagedHaproxy {
  for (const [rel, text] of haproxyFiles(lb, attached)) write(join(root, rel), rebase(text, root));
  return { cfg: rebase(paths.HAPROXY_CFG, root), routesDir: rebase(paths.HAPROXY_ROUTES_D, root) };
}

/** nginx.conf and every site of a web host, by path relative to /srv/ingress/current (unrebased). */
export function nginxFiles(host: HostPlan): Map<string, string> {
  const files = new Map<string, string>();
  files.set(relative(paths.NGINX_CONF), renderNginxConfig(host));
  for (const site of host.web!.sites) {
    files.set(`${relative(paths.NGINX_SITES_D)}/${site.site.hostname}.conf`, renderNginxSite(host, site));
  }
  return files;
}

/** Stages nginx with every certificate path swapped for `cert`; returns the nginx.conf path. */
export function stageNginx(root: string, host: HostPlan, cert: CertificateFiles): string {
  for (const [rel, original] of nginxFiles(host)) {
    let text = rebase(original, root);
    for (const site of host.web!.sites) {
      text = text.split(`ssl_certificate ${site.cert};`).join(`ssl_certificate ${cert.certPath};`);
      text = text.split(`ssl_certificate_key ${site.key};`).join(`ssl_certificate_key ${cert.keyPath};`);
    }
    write(join(root, rel), text);
  }
  return rebase(paths.NGINX_CONF, root);
}
