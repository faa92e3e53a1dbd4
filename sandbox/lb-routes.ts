// What the LB's apply does with routes of attached stacks, done the same way on a host root:
// the pushed data lands in /srv/ingress/routes/<stack>/routes.json, the owner's policy in the
// release decides what of it is accepted, and the accepted routes are rendered into the release
// by render/attached-routes.ts, the function the LB's own renderer (files/render-routes.ts) runs.
// haproxy's routes.map is assembled from routes.d/*.map in name order with assembleHaproxyMap.
import { readdirSync, readFileSync } from "node:fs";
import { assembleHaproxyMap, renderAttachedStacks, type RenderedFile } from "../render";
import { routesPolicySchema } from "../topology/attached-routes";
import * as paths from "../topology/paths";
import type { HostRoot } from "./host-root";

function stackOf(file: RenderedFile): string {
  const m = new RegExp(`^${paths.ROUTES_DIR}/([^/]+)/${paths.ROUTES_DATA_FILE}$`).exec(file.path);
  if (!m) throw new Error(`not an attached stack's routes data: ${file.path}`);
  return m[1]!;
}

/** Installs pushed routes data and renders it into the live release; returns the written paths. */
export function mergeAttachedRoutes(root: HostRoot, files: readonly RenderedFile[]): string[] {
  if (files.length === 0) return [];
  const policy = routesPolicySchema.parse(JSON.parse(readFileSync(root.path(paths.ATTACHED_POLICY), "utf8")));
  const pushed = files.map((f) => {
    root.write(f.path, f.content, f.mode);
    return { stack: stackOf(f), data: JSON.parse(f.content) as unknown };
  });
  const result = renderAttachedStacks(policy, pushed);
  if (result.refused.length > 0) {
    throw new Error(`the LB refuses routes: ${result.refused.map((r) => `stack ${r.stack}: ${r.errors.join("; ")}`).join("\n")}`);
  }
  return result.files.map((f) => {
    const target = `${paths.CURRENT}/${f.path}`;
    root.write(target, f.content, 0o644);
    return target;
  });
}

/** Writes haproxy/routes.map of the live release from its routes.d/*.map. */
export function assembleHaproxyMapFiles(root: HostRoot): string {
  const dir = root.path(paths.HAPROXY_ROUTES_D);
  const maps = readdirSync(dir)
    .filter((n) => n.endsWith(".map"))
    .sort()
    .map((n) => readFileSync(`${dir}/${n}`, "utf8"));
  const text = assembleHaproxyMap(maps);
  root.write(paths.HAPROXY_ROUTES_MAP, text, 0o644);
  return text;
}
