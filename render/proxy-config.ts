// The ts engine's files: proxy/proxy.json (listeners, timeouts, stats) and one
// proxy/routes.d/<stack>.json per stack (its routes and backends), the counterpart of HAProxy's
// routes.d/<stack>.cfg + .map; the proxy merges them at start and on every reload
// (`--routes-dir`). Both are checked against the proxy's own schemas, so a file that renders is
// a file the proxy accepts. Pure: the same plan gives byte-identical text.
import { z } from "zod";
import { proxyConfigSchema, proxyRoutesFileSchema } from "../contract/proxy-config";
import type { ProxyConfigInput, ProxyRoutesFile, ProxyRoutesFileInput } from "../contract/proxy-config";
import { ingressOf, metricsAllowedSources, STATS_LOOPBACK_SOURCES, type HostPlan, type RouteFragment, type RouteSettings } from "../topology";

/** proxy/routes.d/<stack>.json: `{kind: "proxy-routes", stack, routes, backends}`, as the proxy validates it. */
export type { ProxyRoutesFile };

/** The variable of stats.env that holds the stats password (STATS_USER holds the user). */
export const STATS_PASSWORD_ENV = "STATS_PASSWORD";

/** Refused connections one worker holds open at most; past it they are closed at once. */
const HELD_PER_WORKER = 1024;

/** HAProxy's `retries 3` in the haproxy engine: the same connect attempts in both engines. */
const CONNECT_RETRIES = 3;

const ANY_V4 = "0.0.0.0";
const ANY_V6 = "::";

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

function check<S extends z.ZodType>(schema: S, input: z.input<S>, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new Error(`${what} does not satisfy the proxy's config schema:\n${z.prettifyError(result.error)}`);
  return result.data;
}

/** Both families on separate sockets, so an IPv4 client is never seen as ::ffff:a.b.c.d. */
function dualStack(port: number): { address: string; port: number }[] {
  return [
    { address: ANY_V4, port },
    { address: ANY_V6, port },
  ];
}

/** The proxy.json document before defaults, from the ingress host's plan. */
export function proxyConfigOf(host: HostPlan): ProxyConfigInput {
  const ingress = ingressOf(host, "ts");
  const { ports, rateLimit, timeouts, stats, metrics } = ingress;
  // The same per-source limit on both listeners (HAProxy's track-sc0 on both frontends).
  const perSource = {
    maxConnectionsPerWindow: rateLimit.threshold,
    windowMs: rateLimit.window,
    ipv6PrefixLength: rateLimit.ipv6Prefix,
    action: "drop" as const,
    tableSize: rateLimit.tableSize,
    expireMs: rateLimit.expire,
  };
  const config: ProxyConfigInput = {
    version: 1,
    global: { maxconn: ingress.maxconn },
    timeouts: { clientMs: timeouts.client, serverMs: timeouts.server, tunnelMs: timeouts.tunnel },
    listeners: [
      {
        name: "https",
        mode: "tls-passthrough",
        binds: dualStack(ports.https),
        inspectTimeoutMs: timeouts.inspect,
        // An unknown or missing SNI never falls through to a default backend. Held until the
        // inspect deadline, so the client waits as with HAProxy's silent-drop (bounded per worker).
        onNoMatch: { action: "drop", holdUntilInspectDeadline: true, maxHeld: HELD_PER_WORKER },
        rateLimit: perSource,
      },
      {
        name: "http",
        mode: "http-redirect",
        binds: dualStack(ports.http),
        code: 301,
        httpsPort: ports.https,
        // HAProxy's `timeout http-request` and `rate-limit sessions` on the same frontend.
        requestTimeoutMs: timeouts.inspect,
        sessionsPerSecond: rateLimit.httpSessionsPerSecond,
        // Port 80 may hold only its share of maxconn, so it can never starve TLS; per source
        // it is limited like https.
        maxconn: ingress.httpMaxconn,
        rateLimit: perSource,
      },
    ],
    // Every stack's routes, this one's included, come from routes.d/: one mechanism for all.
    routes: [],
    backends: [],
    ...(metrics
      ? {
          metrics: {
            // The LB's private addresses only, never the public one (HAProxy's frontend metrics).
            binds: metrics.addresses.map((address) => ({ address, port: metrics.port })),
            path: metrics.path,
            // HAProxy's `acl metrics_allowed src ...`: a second fence behind nftables.
            allowedSources: metricsAllowedSources(metrics),
          },
        }
      : {}),
  };
  if (stats.enabled) {
    return {
      ...config,
      stats: {
        bind: { address: ANY_V4, port: stats.port },
        path: "/stats",
        auth: { username: stats.user, passwordEnv: STATS_PASSWORD_ENV },
        // The same sources as HAProxy's `acl stats_allowed src ...`: a second fence behind nftables.
        allowedSources: [...stats.allowedCidrs, ...STATS_LOOPBACK_SOURCES],
      },
    };
  }
  return config;
}

/** proxy/proxy.json, validated and with every default written out. */
export function renderProxyConfig(host: HostPlan): string {
  return json(check(proxyConfigSchema, proxyConfigOf(host), `proxy.json for ${host.name}`));
}

/** The routes file of one stack, validated with the schema the proxy reads it with. */
export function proxyRoutesOf(fragment: RouteFragment, settings: RouteSettings): ProxyRoutesFile {
  const { healthCheck, timeouts } = settings;
  const input: ProxyRoutesFileInput = {
    kind: "proxy-routes",
    stack: fragment.stack,
    routes: fragment.routes.map((r) => ({ host: r.hostname, backend: r.backend })),
    backends: fragment.backends.map((b) => ({
      name: b.name,
      servers: b.servers.map((s) => ({ name: s.name, address: s.address, port: s.port, ...(s.acmePort !== undefined ? { acmePort: s.acmePort } : {}) })),
      connectTimeoutMs: timeouts.connect,
      retries: CONNECT_RETRIES,
      sendProxyV2: true,
      healthCheck: {
        type: "tls",
        intervalMs: healthCheck.interval,
        timeoutMs: healthCheck.timeout,
        fall: healthCheck.fall,
        rise: healthCheck.rise,
        sni: b.check.sni,
        // check-send-proxy + option httpchk GET <path> with Host: the same check as HAProxy's.
        sendProxyV2: true,
        http: { path: b.check.path, host: b.check.sni, expectStatus: 200 },
      },
    })),
  };
  return check(proxyRoutesFileSchema, input, `routes of stack ${fragment.stack}`);
}

/** proxy/routes.d/<stack>.json. */
export function renderProxyRoutes(fragment: RouteFragment, settings: RouteSettings): string {
  return json(proxyRoutesOf(fragment, settings));
}
