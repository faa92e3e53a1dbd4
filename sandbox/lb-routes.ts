// What the LB's apply does with routes of attached stacks, done the same way on a host root:
// the pushed fragment lands flat in /srv/ingress/routes/<stack>/, is merged into the release
// (haproxy/routes.d or proxy/routes.d by extension), and haproxy's routes.map is assembled
// from routes.d/*.map in name order with render's assembleHaproxyMap.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { assembleHaproxyMap, type RenderedFile } from "../render";
import type { Engine } from "../topology";
import * as paths from "../topology/paths";
import type { HostRoot } from "./host-root";

function stackOf(file: RenderedFile): string {
  const rest = file.path.slice(`${paths.ROUTES_DIR}/`.length);
  const stack = rest.slice(0, rest.indexOf("/"));
  if (!file.path.startsWith(`${paths.ROUTES_DIR}/`) || stack === "") throw new Error(`not an attached route file: ${file.path}`);
  return stack;
}

/** Installs pushed route files and merges them into the live release; returns merged paths. */
export function mergeAttachedRoutes(root: HostRoot, files: readonly RenderedFile[], engine: Engine): string[] {
  const merged: string[] = [];
  for (const f of files) {
    const stack = stackOf(f);
    const name = basename(f.path);
    root.write(`${paths.ROUTES_DIR}/${stack}/${name}`, f.content, f.mode);
    const target = name.endsWith(".json") ? `${paths.PROXY_ROUTES_D}/${name}` : `${paths.HAPROXY_ROUTES_D}/${name}`;
    const wanted = name.endsWith(".json") ? "ts" : "haproxy";
    if (wanted !== engine) continue; // apply.sh: "not merged: needs proxy/ (or haproxy/), which this release does not run"
    if (existsSync(root.path(target))) throw new Error(`route file ${target} of attached stack ${stack} collides with the bundle's own`);
    root.write(target, f.content, f.mode);
    merged.push(target);
  }
  return merged;
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
