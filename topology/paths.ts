// Where things live on a host. Containers bind-mount INGRESS_ROOT as a whole and read
// configs through the `current` symlink, so an atomic symlink swap is seen by a reload:
// a bind mount of the release directory itself would pin the old release until restart.

export const INGRESS_ROOT = "/srv/ingress";
/** The live release, a relative symlink into releases/. Every rendered config lives below it. */
export const CURRENT = `${INGRESS_ROOT}/current`;
/** Secret files written on deploy from Pulumi secrets; never part of a rendered bundle. */
export const SECRETS_DIR = `${INGRESS_ROOT}/secrets`;
/** Route fragments pushed by attached stacks, one directory per stack. */
export const ROUTES_DIR = `${INGRESS_ROOT}/routes`;
export const QUADLET_DIR = "/etc/containers/systemd";
export const ACME_WEBROOT = "/var/www/acme";
/** The ACME client's state on a web server: one directory per site (account and certificates). */
export const ACME_STATE_DIR = "/var/lib/ingress-acme";
/** The acme job's script and the ACME server's CA bundle, in the release. */
export const ACME_SCRIPT = `${CURRENT}/acme/renew.sh`;
export const ACME_CA_FILE = `${CURRENT}/acme/ca.pem`;
/** systemd's own unit directory: timers are plain systemd units, not Quadlet. */
export const SYSTEMD_UNIT_DIR = "/etc/systemd/system";

export const HAPROXY_CFG = `${CURRENT}/haproxy/haproxy.cfg`;
export const HAPROXY_ROUTES_D = `${CURRENT}/haproxy/routes.d`;
export const HAPROXY_ROUTES_MAP = `${CURRENT}/haproxy/routes.map`;
export const HAPROXY_ERRORFILE_503 = `${CURRENT}/haproxy/errors/503.http`;
export const STATS_ENV = `${SECRETS_DIR}/stats.env`;
export const ACME_ENV = `${SECRETS_DIR}/acme.env`;
export const NGINX_CONF = `${CURRENT}/nginx/nginx.conf`;
export const NGINX_SITES_D = `${CURRENT}/nginx/sites`;
export const PROXY_CONFIG = `${CURRENT}/proxy/proxy.json`;
export const PROXY_ROUTES_D = `${CURRENT}/proxy/routes.d`;
export const PROXY_SCRIPT = `${CURRENT}/proxy/proxy.js`;
export const NFTABLES_FILE = `${CURRENT}/nftables/ingress.nft`;
export const TLS_DIR = `${SECRETS_DIR}/tls`;
/** sshd reads it besides root's own (cloud-init's drop-in): attached stacks' forced-command keys. */
export const ATTACHED_KEYS_FILE = `${SECRETS_DIR}/ssh/authorized_keys`;

/** One certificate per nginx listener (validation guarantees all its sites share one). */
export function tlsPaths(port: number): { readonly cert: string; readonly key: string } {
  return { cert: `${TLS_DIR}/port-${port}/fullchain.pem`, key: `${TLS_DIR}/port-${port}/privkey.pem` };
}

/** Which certificate each tls.source "host" site uses: apply.sh reads it (link real stand-in). */
export const HOST_CERTS_FILE = `${CURRENT}/tls/host-certs`;

/**
 * A site whose certificate is kept on the host (tls.source "host" or "acme"): nginx opens its
 * two files in `<link>`, which apply.sh points at a checked copy of the real directory's pair
 * once there is one, at the deploy's self-signed stand-in until then.
 */
export function hostCertPaths(hostname: string): { readonly link: string; readonly standin: string } {
  return { link: `${TLS_DIR}/live/${hostname}`, standin: `${TLS_DIR}/standin/${hostname}` };
}

/**
 * A site with tls.source "acme": lego keeps `<dir>/certificates/<hostname>.crt` (the chain) and
 * `.key` under its own directory per site, and nginx reads them through the site's link.
 */
export function acmeCertPaths(hostname: string): { readonly dir: string; readonly real: string; readonly certFile: string; readonly keyFile: string } {
  const dir = `${ACME_STATE_DIR}/${hostname}`;
  return { dir, real: `${dir}/certificates`, certFile: `${hostname}.crt`, keyFile: `${hostname}.key` };
}

/** Where renew.sh records a site's failed runs and next attempt ("<failures> <next epoch s> <settings>"). */
export function acmeAttemptsFile(hostname: string): string {
  return `${ACME_STATE_DIR}/${hostname}/attempts`;
}

/**
 * The nginx add_header line apply.sh writes from a site's ACME attempts (its health location
 * includes it): written by apply.sh, never by the ACME job, which must not reach nginx's config.
 */
export function acmeStatusFile(hostname: string): string {
  return `${TLS_DIR}/acme-status/${hostname}.conf`;
}

/**
 * What an LB that lets other stacks attach needs to turn their pushed routes (data, at
 * ROUTES_DIR/<stack>/routes.json) into config: the owner's policy, the owner's renderer (built
 * from render/attached-routes.ts) and the node image it runs in.
 */
export const ATTACHED_DIR = `${CURRENT}/attached`;
export const ATTACHED_POLICY = `${ATTACHED_DIR}/policy.json`;
export const ATTACHED_RENDERER = `${ATTACHED_DIR}/render-routes.js`;
export const ATTACHED_NODE_IMAGE = `${ATTACHED_DIR}/node-image`;
export const ROUTES_DATA_FILE = "routes.json";

/**
 * What apply.sh does with a release, from the plan (render/apply-plan.ts): which units it
 * reloads for which directory, how it checks each config, which ports it probes, which
 * firewall files it loads and which route maps it assembles. apply.sh parses no daemon config.
 */
export const APPLY_PLAN_FILE = `${CURRENT}/apply.plan`;
