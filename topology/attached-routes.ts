// What an attached stack may put on another stack's LB. It pushes data (routesDataSchema:
// hostnames, backends, their servers), never config text; the LB checks that data here against
// the owner's policy and renders config from it with the owner's renderer
// (render/attached-routes.ts). The policy is written by the owner's plan into the LB's release.
// Pure: no I/O.
import { z } from "zod";
import { formatPath } from "./errors";
import { normaliseHostname } from "../contract/hostname";
import { cidrContainsIpv4, ipv4ToInt, parseCidr } from "./ip";
import { ingressOf } from "./ingress-of";
import type { HostPlan, LbBackend, Route, RouteFragment } from "./plan-types";
import { ENGINES } from "./schema";
import { ACME_CHALLENGE_PORT } from "./plan";

/** Bounds on one stack's push: enough for any real site list, small enough to render at once. */
export const ROUTES_DATA_LIMITS = { backends: 64, serversPerBackend: 16, routes: 256 } as const;

/** Backend and server names: what both engines accept (the proxy's schema allows 64). */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const HEALTH_PATH = /^\/[A-Za-z0-9._~/-]{0,255}$/;

/** routes/<stack>/routes.json as the attached stack sends it: its RouteFragment, nothing more. */
export const routesDataSchema = z.strictObject({
  stack: z.string(),
  backends: z
    .array(
      z.strictObject({
        name: z.string(),
        servers: z
          .array(
            z.strictObject({
              name: z.string(),
              address: z.string(),
              port: z.number().int().min(1).max(65535),
              // Its ACME http-01 responder, on the one port every web server uses (so it can never
              // aim the LB at another service, its own included); absent, challenges for its
              // names are redirected to https as before there were responders.
              acmePort: z.literal(ACME_CHALLENGE_PORT, { error: `must be ${ACME_CHALLENGE_PORT}, the web servers' ACME challenge responder, or left out` }).optional(),
            }),
          )
          .min(1)
          .max(ROUTES_DATA_LIMITS.serversPerBackend),
        check: z.strictObject({ sni: z.string(), path: z.string() }),
      }),
    )
    .max(ROUTES_DATA_LIMITS.backends),
  routes: z.array(z.strictObject({ hostname: z.string(), backend: z.string() })).max(ROUTES_DATA_LIMITS.routes),
});

const ms = z.number().int().nonnegative();

/** attached/policy.json: what the owner lets each attached stack route, and how the LB renders it. */
export const routesPolicySchema = z.strictObject({
  owner: z.string(),
  engine: z.enum(ENGINES),
  healthCheck: z.strictObject({ interval: ms, timeout: ms, fall: z.number().int().min(1), rise: z.number().int().min(1) }),
  timeouts: z.strictObject({ connect: ms, client: ms, server: ms, tunnel: ms, inspect: ms }),
  /** The owner's own hostnames and backend names: no attached stack may take them. */
  reserved: z.strictObject({ hostnames: z.array(z.string()), backends: z.array(z.string()) }),
  stacks: z.array(z.strictObject({ stack: z.string(), network: z.string(), zones: z.array(z.string()) })),
});

export type RoutesPolicy = z.output<typeof routesPolicySchema>;

export type RoutesCheck = { readonly ok: true; readonly fragment: RouteFragment } | { readonly ok: false; readonly errors: readonly string[] };

/** The policy of an LB, from its plan. */
export function routesPolicyOf(host: HostPlan): RoutesPolicy {
  const ingress = ingressOf(host);
  return {
    owner: host.stack,
    engine: ingress.engine,
    healthCheck: { ...ingress.healthCheck },
    timeouts: { ...ingress.timeouts },
    reserved: {
      hostnames: ingress.fragment.routes.map((r) => r.hostname).sort(),
      backends: ingress.fragment.backends.map((b) => b.name).sort(),
    },
    stacks: ingress.attachedStacks.map((a) => ({ stack: a.stack, network: a.network, zones: [...a.zones] })),
  };
}

/** A pushed value as it may appear in a message: one line, quoted, cut short. */
function q(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

function inZones(hostname: string, zones: readonly string[]): boolean {
  return zones.some((z) => hostname === z || hostname.endsWith(`.${z}`));
}

/**
 * Checks one stack's pushed data against the policy, on its own (claims between stacks are
 * render/attached-routes.ts's). Every problem is listed, each naming the field and the fix.
 */
export function checkRoutesData(policy: RoutesPolicy, stack: string, data: unknown): RoutesCheck {
  const allowed = policy.stacks.find((s) => s.stack === stack);
  if (!allowed) {
    return { ok: false, errors: [`stack ${stack} may not attach to this LB: stack ${policy.owner} does not list it in ingress.attachedStacks`] };
  }
  const parsed = routesDataSchema.safeParse(data);
  if (!parsed.success) {
    return { ok: false, errors: parsed.error.issues.map((i) => `${i.path.length > 0 ? formatPath(i.path) : "(document)"}: ${i.message}`) };
  }
  const input = parsed.data;
  const errors: string[] = [];
  const network = parseCidr(allowed.network);
  if (typeof network === "string" || network.family !== 4) throw new Error(`policy of stack ${stack}: network ${allowed.network} is not an IPv4 CIDR`);
  if (input.stack !== stack) errors.push(`stack: the data says ${q(input.stack)} but was pushed as stack ${stack}`);
  const zones = allowed.zones.join(", ");
  const reservedHosts = new Set(policy.reserved.hostnames);
  const reservedBackends = new Set(policy.reserved.backends);

  const hostnameIn = (raw: string, where: string): string | undefined => {
    const h = normaliseHostname(raw);
    if (!h.ok) {
      errors.push(`${where}: ${q(raw)} is not a hostname: ${h.reason}`);
      return undefined;
    }
    if (!inZones(h.hostname, allowed.zones)) {
      errors.push(`${where}: "${h.hostname}" is outside the zones stack ${policy.owner} delegates to stack ${stack} (${zones})`);
      return undefined;
    }
    return h.hostname;
  };

  const backends: LbBackend[] = [];
  const backendNames = new Set<string>();
  input.backends.forEach((b, i) => {
    const where = `backends[${i}]`;
    const longer = policy.stacks.find((o) => o.stack !== stack && o.stack.startsWith(`${stack}_`) && b.name.startsWith(`${o.stack}_`));
    if (!NAME.test(b.name)) errors.push(`${where}.name: ${q(b.name)} must be 1-64 letters, digits, ".", "-" or "_"`);
    else if (!b.name.startsWith(`${stack}_`)) errors.push(`${where}.name: "${b.name}" must start with "${stack}_", so no two stacks' backends share a name`);
    // "demo_x_web" starts with "demo_" but is stack demo_x's namespace.
    else if (longer) errors.push(`${where}.name: "${b.name}" lies in the names of stack ${longer.stack} ("${longer.stack}_"); choose another`);
    else if (reservedBackends.has(b.name)) errors.push(`${where}.name: backend "${b.name}" belongs to stack ${policy.owner}`);
    else if (backendNames.has(b.name)) errors.push(`${where}.name: backend "${b.name}" is defined twice`);
    backendNames.add(b.name);
    const serverNames = new Set<string>();
    b.servers.forEach((s, j) => {
      const sw = `${where}.servers[${j}]`;
      if (!NAME.test(s.name)) errors.push(`${sw}.name: ${q(s.name)} must be 1-64 letters, digits, ".", "-" or "_"`);
      else if (serverNames.has(s.name)) errors.push(`${sw}.name: server "${s.name}" is listed twice in backend ${b.name}`);
      serverNames.add(s.name);
      const ip = ipv4ToInt(s.address);
      if (ip === undefined || !cidrContainsIpv4(network, ip)) {
        errors.push(`${sw}.address: ${q(s.address)} is not an address in stack ${stack}'s network ${allowed.network}; its backends must be its own servers`);
      }
    });
    const sni = hostnameIn(b.check.sni, `${where}.check.sni`);
    if (!HEALTH_PATH.test(b.check.path)) errors.push(`${where}.check.path: ${q(b.check.path)} must be an absolute URL path of letters, digits and . _ ~ / -`);
    backends.push({ name: b.name, servers: b.servers.map(({ acmePort, ...s }) => (acmePort === undefined ? s : { ...s, acmePort })), check: { sni: sni ?? b.check.sni, path: b.check.path } });
  });

  const routes: Route[] = [];
  const hostnames = new Set<string>();
  input.routes.forEach((r, i) => {
    const where = `routes[${i}]`;
    const hostname = hostnameIn(r.hostname, `${where}.hostname`);
    if (hostname !== undefined) {
      if (reservedHosts.has(hostname)) errors.push(`${where}.hostname: "${hostname}" is routed by stack ${policy.owner}`);
      else if (hostnames.has(hostname)) errors.push(`${where}.hostname: "${hostname}" is routed twice`);
      hostnames.add(hostname);
    }
    if (!backendNames.has(r.backend)) errors.push(`${where}.backend: ${q(r.backend)} is not one of this stack's backends`);
    routes.push({ hostname: hostname ?? r.hostname, backend: r.backend });
  });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, fragment: { stack, backends, routes } };
}
