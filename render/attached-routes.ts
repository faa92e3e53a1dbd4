// Attached stacks' routes, as the owner's LB turns them into config: each stack's pushed data
// is checked against the owner's policy (topology/attached-routes.ts), claims between stacks are
// settled, and the accepted ones are rendered with the same renderers as the owner's own routes,
// for the engine the LB runs. Runs on the LB (files/render-routes.ts) and in the sandbox. Pure.
import { checkRoutesData, type RoutesPolicy } from "../topology/attached-routes";
import * as paths from "../topology/paths";
import type { RouteFragment } from "../topology";
import { renderHaproxyMap, renderHaproxyRoutes } from "./haproxy";
import { renderProxyRoutes } from "./proxy-config";

export interface PushedRoutes {
  readonly stack: string;
  /** routes.json as pushed, parsed as JSON and not yet checked. */
  readonly data: unknown;
}

export interface AttachedRoutesResult {
  /** Paths relative to the release root (haproxy/routes.d/demo.cfg), for the engine the LB runs. */
  readonly files: readonly { readonly path: string; readonly content: string }[];
  /** Stacks left out, with every reason; their routes are not served. */
  readonly refused: readonly { readonly stack: string; readonly errors: readonly string[] }[];
}

function releasePath(absolute: string): string {
  return absolute.slice(paths.CURRENT.length + 1);
}

function filesOf(fragment: RouteFragment, policy: RoutesPolicy): AttachedRoutesResult["files"] {
  const s = fragment.stack;
  if (policy.engine === "haproxy") {
    return [
      { path: releasePath(`${paths.HAPROXY_ROUTES_D}/${s}.cfg`), content: renderHaproxyRoutes(fragment, policy) },
      { path: releasePath(`${paths.HAPROXY_ROUTES_D}/${s}.map`), content: renderHaproxyMap(fragment) },
    ];
  }
  return [{ path: releasePath(`${paths.PROXY_ROUTES_D}/${s}.json`), content: renderProxyRoutes(fragment, policy) }];
}

/**
 * Every pushed stack, in name order, except `newcomer` (the stack being pushed now), which
 * comes last: a hostname or backend name already held by an accepted stack is never taken
 * from it by a later push, so a stack's routes keep working whatever another stack sends.
 */
export function renderAttachedStacks(policy: RoutesPolicy, pushed: readonly PushedRoutes[], newcomer?: string): AttachedRoutesResult {
  const order = [...pushed].sort((a, b) => {
    if ((a.stack === newcomer) !== (b.stack === newcomer)) return a.stack === newcomer ? 1 : -1;
    return a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0;
  });
  const hostOwner = new Map<string, string>();
  const backendOwner = new Map<string, string>();
  const files: AttachedRoutesResult["files"][number][] = [];
  const refused: AttachedRoutesResult["refused"][number][] = [];
  for (const { stack, data } of order) {
    const checked = checkRoutesData(policy, stack, data);
    if (!checked.ok) {
      refused.push({ stack, errors: checked.errors });
      continue;
    }
    const { fragment } = checked;
    const errors = [
      ...fragment.routes.flatMap((r) => {
        const holder = hostOwner.get(r.hostname);
        return holder ? [`hostname "${r.hostname}" is routed by stack ${holder}; remove it from one of them`] : [];
      }),
      ...fragment.backends.flatMap((b) => {
        const holder = backendOwner.get(b.name);
        return holder ? [`backend "${b.name}" is defined by stack ${holder}; rename it`] : [];
      }),
    ];
    if (errors.length > 0) {
      refused.push({ stack, errors });
      continue;
    }
    // The engine's own checks run as the files render; whatever they refuse is this stack's
    // refusal, never a failure of the LB's deploy.
    let rendered: AttachedRoutesResult["files"];
    try {
      rendered = filesOf(fragment, policy);
    } catch (e) {
      refused.push({ stack, errors: [`the ${policy.engine} engine refuses these routes: ${(e as Error).message}`] });
      continue;
    }
    for (const r of fragment.routes) hostOwner.set(r.hostname, stack);
    for (const b of fragment.backends) backendOwner.set(b.name, stack);
    files.push(...rendered);
  }
  return { files, refused };
}
