// From a stack's plan to every file each host receives: one bundle per server (its files at
// their on-host paths, plus its cloud-init user data), and for a stack attached to another
// stack's LB, the routes data that goes to that LB (which renders config from it itself).
// Pure: the CLI and the Pulumi deploy only write or copy what this returns.
import { renderHostCerts } from "./host-certs";
import { renderAcmeScript, renderAcmeTimer } from "./acme";
import { renderApplyPlan } from "./apply-plan";
import { createHash } from "node:crypto";
import * as paths from "../topology/paths";
import { routesPolicyOf } from "../topology/attached-routes";
import { ingressOf, type FilePlan, type HostPlan, type RouteFragment, type StackPlan } from "../topology";
import { renderCloudInit } from "./cloud-init";
import { renderErrorFile503 } from "./errorfile";
import { renderHaproxyConfig, renderHaproxyMap, renderHaproxyRoutes } from "./haproxy";
import { renderNftables } from "./nftables";
import { renderNginxConfig, renderNginxSite } from "./nginx";
import { renderProxyConfig, renderProxyRoutes } from "./proxy-config";
import { quadletContainerOf, renderQuadletUnit } from "./quadlet";

export interface RenderedFile {
  /** Absolute path on the host. */
  readonly path: string;
  readonly mode: number;
  readonly content: string;
}

export interface RenderedHost {
  /** The server's name, or `_routes-for-<stack>` for routes pushed to another stack's LB. */
  readonly host: string;
  /** Sorted by path. */
  readonly files: readonly RenderedFile[];
  /** cloud-init user data; only servers this stack creates have one. */
  readonly userData?: string;
}

export interface RenderOptions {
  /** The bundled proxy (dist/proxy.js) for ts-engine hosts; it runs from the release like any config. */
  readonly proxyScript?: string;
  /** The bundled files/render-routes.ts for LBs that let stacks attach (attached/render-routes.js). */
  readonly routesRenderer?: string;
}

/** The stack name at the end of a StackReference name ("organization/hetzner-ingress/prod"). */
export function stackOfReference(reference: string): string {
  return reference.slice(reference.lastIndexOf("/") + 1);
}

/** Where a stack's routes data lands on another stack's LB. */
function routesDataPath(stack: string): string {
  return `${paths.ROUTES_DIR}/${stack}/${paths.ROUTES_DATA_FILE}`;
}

function renderFile(host: HostPlan, file: FilePlan): string {
  switch (file.kind) {
    case "haproxy-config":
      return renderHaproxyConfig(host);
    case "haproxy-routes":
      return renderHaproxyRoutes(ingressOf(host).fragment, ingressOf(host));
    case "haproxy-map":
      return renderHaproxyMap(ingressOf(host).fragment);
    case "haproxy-errorfile":
      return renderErrorFile503();
    case "nginx-config":
      return renderNginxConfig(host);
    case "nginx-site": {
      const site = host.web?.sites.find((s) => file.path === `${paths.NGINX_SITES_D}/${s.site.hostname}.conf`);
      if (!site) throw new Error(`host ${host.name}: no site for ${file.path}`);
      return renderNginxSite(host, site);
    }
    case "proxy-config":
      return renderProxyConfig(host);
    case "proxy-routes":
      return renderProxyRoutes(ingressOf(host).fragment, ingressOf(host));
    case "quadlet":
      return renderQuadletUnit(host, quadletContainerOf(host, file.path));
    case "nftables":
      return renderNftables(host);
    case "host-certs":
      return renderHostCerts(host);
    case "apply-plan":
      return renderApplyPlan(host);
    case "attached-policy":
      return JSON.stringify(routesPolicyOf(host), null, 2) + "\n";
    case "attached-node-image":
      return `${ingressOf(host).nodeImage}\n`;
    case "acme-script":
      return renderAcmeScript(host);
    case "acme-ca": {
      const pem = host.web?.acme?.caPem;
      if (pem === undefined) throw new Error(`host ${host.name}: no ACME CA bundle to write to ${file.path}`);
      return pem.trim() + "\n";
    }
    case "systemd-timer":
      return renderAcmeTimer(host);
    default: {
      const never: never = file.kind;
      throw new Error(`no renderer for file kind ${String(never)}`);
    }
  }
}

function byPath(a: RenderedFile, b: RenderedFile): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function sorted(files: RenderedFile[]): RenderedFile[] {
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`two files for ${f.path}`);
    seen.add(f.path);
  }
  return files.sort(byPath);
}

function renderHost(host: HostPlan, opts: RenderOptions, userData: string): RenderedHost {
  const files: RenderedFile[] = host.files.map((file) => ({ path: file.path, mode: file.mode, content: renderFile(host, file) }));
  if (opts.proxyScript !== undefined && host.containers.some((c) => c.name === "proxy")) {
    files.push({ path: paths.PROXY_SCRIPT, mode: 0o644, content: opts.proxyScript });
  }
  if (opts.routesRenderer !== undefined && (host.ingress?.attachedStacks.length ?? 0) > 0) {
    files.push({ path: paths.ATTACHED_RENDERER, mode: 0o644, content: opts.routesRenderer });
  }
  return { host: host.name, files: sorted(files), userData };
}

/**
 * What an attached stack pushes to the owning stack's LB: its routes as data, whatever engine
 * the LB runs. The LB checks them against its owner's policy and renders the config itself.
 */
export function renderRoutesData(fragment: RouteFragment): RenderedFile {
  return { path: routesDataPath(fragment.stack), mode: 0o644, content: JSON.stringify(fragment, null, 2) + "\n" };
}

export function renderStack(plan: StackPlan, opts: RenderOptions = {}): RenderedHost[] {
  const userData = renderCloudInit();
  const hosts = plan.hosts.map((h) => renderHost(h, opts, userData));
  if (plan.attach) hosts.push({ host: `_routes-for-${stackOfReference(plan.attach.stack)}`, files: [renderRoutesData(plan.attach.fragment)] });
  return hosts;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Mode as the four octal digits chmod takes. */
export function modeText(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

/**
 * One hash over a host's bundle: the deploy runs again exactly when it changes. Each file adds
 * "<path>\0<mode>\0<sha256 of content>\n" in path order, so no two bundles share a preimage.
 */
export function bundleHash(files: readonly RenderedFile[]): string {
  const lines = [...files].sort(byPath).map((f) => `${f.path}\0${modeText(f.mode)}\0${sha256(f.content)}\n`);
  return sha256(lines.join(""));
}
