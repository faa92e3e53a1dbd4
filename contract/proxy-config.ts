/**
 * The ts engine's configuration: one JSON document, validated by this schema.
 * The renderer imports `proxyConfigSchema` to produce exactly this shape, so
 * every field is plain data with a documented default. All durations are
 * milliseconds and their names end in `Ms`. Pure: no I/O here.
 *
 * Objects are strict: an unknown key is an error, so a typo in a rendered
 * file fails `--check` instead of being silently ignored.
 *
 * The sections for health checks, rate limits, the http-redirect listener and
 * stats follow HAProxy's behaviour for the same settings; see docs/proxy.md.
 */
import { z } from "zod";
import { checkHostPattern, hostPatternKey, parseHostPattern } from "./hostname";

const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 _ . -")
  .describe("Identifier used in logs (HAProxy's %ft / %b / %s)");

const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: "must be an IPv4 or IPv6 address literal" });
const port = z.number().int().min(1).max(65535);
const durationMs = z.number().int().positive();
const cidr = z.union([z.cidrv4(), z.cidrv6()], { error: "must be a CIDR such as 10.0.0.0/8 or fd00::/8" });

export const bindSchema = z
  .strictObject({
    address: ipAddress.describe("Local address; IPv6 binds are v6-only so 0.0.0.0 and :: can share a port"),
    port,
  })
  .describe("One listening socket");

export const noMatchActionSchema = z
  .discriminatedUnion("action", [
    z.strictObject({
      action: z.literal("drop").describe("Close without sending a single byte"),
      holdUntilInspectDeadline: z
        .boolean()
        .default(false)
        .describe("Keep the connection open (discarding input) until the inspect deadline, then close; closer to HAProxy's silent-drop"),
      maxHeld: z
        .number()
        .int()
        .positive()
        .default(1024)
        .describe("Per worker: held connections beyond this are closed at once, so a flood cannot pin memory"),
    }),
    z.strictObject({ action: z.literal("reject").describe("Reset the connection (TCP RST)") }),
  ])
  .describe("What to do with no SNI, an unknown name, malformed or non-TLS input, or an SSLv2 hello");

export const acceptProxySchema = z
  .strictObject({
    trustedSources: z
      .array(cidr)
      .min(1)
      .describe("Peers that MUST send a PROXY v1/v2 header; peers outside these are treated as direct clients"),
  })
  .describe("Read an inbound PROXY header, e.g. behind Hetzner's managed load balancer");

export const rateLimitSchema = z
  .strictObject({
    maxConnectionsPerWindow: z
      .number()
      .int()
      .positive()
      .describe("A connection is refused when the source's rate, this one included, reaches this (HAProxy's `sc0_conn_rate ge N`)"),
    // At least 100 ms so window numbers fit the shared table's 32-bit cells for years.
    windowMs: z.number().int().min(100).default(3000),
    ipv6PrefixLength: z
      .number()
      .int()
      .min(1)
      .max(128)
      .default(64)
      .describe("IPv6 sources are counted per network of this length (HAProxy's ipmask(32,N)); IPv4 per address"),
    action: z.enum(["drop", "reject"]).default("drop"),
    tableSize: z.number().int().positive().max(10_000_000).default(500_000),
    expireMs: durationMs.default(60_000),
  })
  .describe("Per-source-IP connection rate over a sliding window, one table shared by all workers");

export const tlsPassthroughListenerSchema = z.strictObject({
  name,
  mode: z.literal("tls-passthrough"),
  binds: z.array(bindSchema).min(1),
  inspectTimeoutMs: durationMs.default(5000).describe("Total time (not idle) allowed for the PROXY header and ClientHello"),
  maxHelloBytes: z.number().int().min(512).max(65536).default(16384).describe("Bound on the bytes buffered while reading the hello"),
  onNoMatch: noMatchActionSchema.prefault({ action: "drop" }),
  acceptProxy: acceptProxySchema.optional(),
  maxconn: z.number().int().positive().optional().describe("Concurrent connections on this listener; new ones past it wait in the kernel's accept backlog while the listener is paused (docs/proxy.md, maxconn)"),
  rateLimit: rateLimitSchema.optional(),
});

export const httpRedirectListenerSchema = z
  .strictObject({
    name,
    mode: z.literal("http-redirect"),
    binds: z.array(bindSchema).min(1),
    code: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]).default(301),
    httpsPort: port.default(443).describe("Port written into the Location when it is not 443"),
    requestTimeoutMs: durationMs.default(5000).describe("Time allowed for the request head (HAProxy's timeout http-request)"),
    maxHeaderBytes: z.number().int().min(1024).max(65536).default(8192).describe("Larger request heads get 431"),
    sessionsPerSecond: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("New connections per second on this listener (HAProxy's rate-limit sessions); the excess waits"),
    maxconn: z.number().int().positive().optional(),
    rateLimit: rateLimitSchema.optional(),
  })
  .describe("Plain HTTP listener answering every request with a redirect to https on the same host and path");

export const listenerSchema = z.discriminatedUnion("mode", [tlsPassthroughListenerSchema, httpRedirectListenerSchema]);

export const routeSchema = z.strictObject({
  host: z
    .string()
    .superRefine((host, ctx) => {
      const result = checkHostPattern(host);
      if (!result.ok) ctx.addIssue({ code: "custom", message: `"${host}" cannot be routed: ${result.reason}` });
    })
    .describe("Exact name or *.suffix; exact names win over wildcards, longer suffixes over shorter"),
  backend: name,
  listeners: z.array(name).min(1).optional().describe("Listeners this route applies to; default all tls-passthrough listeners"),
});

export const serverSchema = z.strictObject({
  name,
  address: ipAddress,
  port,
  acmePort: port.optional().describe("The server's ACME http-01 responder (plain HTTP): where the http-redirect listener sends challenges for the backend's names"),
});

export const healthCheckSchema = z
  .strictObject({
    type: z.enum(["tcp", "tls"]).default("tcp").describe("tls: a TLS handshake (certificate not verified) after the connect"),
    intervalMs: durationMs.default(10_000),
    timeoutMs: durationMs.default(2000).describe("The whole check: connect, handshake and response"),
    fall: z.number().int().positive().default(3),
    rise: z.number().int().positive().default(2),
    sni: z.string().optional().describe("SNI of the tls check (HAProxy's check-sni)"),
    sendProxyV2: z.boolean().default(true).describe("Send a PROXY v2 LOCAL header first, as a PROXY-only listener requires"),
    http: z
      .strictObject({
        path: z.string().regex(/^\/[\x21-\x7e]*$/, "must be an absolute path without spaces").default("/healthz"),
        host: z.string().regex(/^[A-Za-z0-9.:\[\]-]+$/, "must be a host name").optional().describe("Default: the sni"),
        expectStatus: z.number().int().min(100).max(599).default(200),
      })
      .optional()
      .describe("GET this path (over TLS when type is tls) and expect this status, as HAProxy's option httpchk"),
  })
  .describe("Active checks; a server is DOWN after `fall` failures in a row and UP again after `rise` successes");

export const backendSchema = z.strictObject({
  name,
  servers: z.array(serverSchema).min(1).describe("Tried round-robin; a retry moves to the next server"),
  connectTimeoutMs: durationMs.default(10_000),
  retries: z.number().int().min(0).max(10).default(3).describe("Extra connect attempts after the first one fails"),
  sendProxyV2: z.boolean().default(true),
  authorityTlv: z.boolean().default(false).describe("Add PP2_TYPE_AUTHORITY (0x02) carrying the SNI"),
  healthCheck: healthCheckSchema.optional(),
});

export const timeoutsSchema = z.strictObject({
  clientMs: durationMs.default(30_000).describe("Client-side inactivity"),
  serverMs: durationMs.default(30_000).describe("Server-side inactivity"),
  tunnelMs: durationMs.optional().describe("Once connected, inactivity in both directions; supersedes client/server (HAProxy semantics)"),
  finMs: durationMs.default(10_000).describe("Inactivity once either side has half-closed"),
});

export const statsSchema = z
  .strictObject({
    bind: bindSchema,
    path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, "must be an absolute URL path").default("/stats"),
    auth: z.strictObject({ username: z.string().min(1), passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) }).optional(),
    allowedSources: z.array(cidr).optional().describe("Sources outside these get 403 (HAProxy's http-request deny); absent: any"),
  })
  .describe("Stats page (HTML, text, JSON); the password is read from an environment variable, never the file");

export const metricsSchema = z
  .strictObject({
    binds: z.array(bindSchema).min(1).describe("Where Prometheus scrapes; the renderer writes the LB's private addresses only"),
    path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, "must be an absolute URL path").default("/metrics"),
    allowedSources: z.array(cidr).optional().describe("Sources outside these get 403 (HAProxy's http-request deny); absent: any"),
  })
  .describe("Prometheus metrics in the text exposition format, without auth: keep it on a private address");

export const proxyConfigSchema = z
  .strictObject({
    version: z.literal(1).default(1),
    global: z
      .strictObject({
        maxconn: z.number().int().positive().default(4096).describe("Concurrent connections in total; split evenly across workers"),
        workers: z.number().int().min(1).max(256).optional().describe("Default: one per available CPU"),
        drainGraceMs: durationMs.default(30_000).describe("On SIGTERM, how long existing connections may finish"),
      })
      .prefault({}),
    log: z
      .strictObject({
        format: z.enum(["json", "text"]).default("json"),
        level: z.enum(["debug", "info", "warn", "error"]).default("info"),
      })
      .prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    listeners: z.array(listenerSchema).min(1),
    routes: z.array(routeSchema),
    backends: z.array(backendSchema),
    stats: statsSchema.optional(),
    metrics: metricsSchema.optional(),
  })
  .superRefine((config, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    const listeners = new Map(config.listeners.map((l) => [l.name, l]));
    const backends = new Set(config.backends.map((b) => b.name));
    const seen = (names: string[], path: (i: number) => (string | number)[], what: string) => {
      const set = new Set<string>();
      names.forEach((n, i) => (set.has(n) ? issue(path(i), `duplicate ${what} "${n}"`) : set.add(n)));
    };
    seen(config.listeners.map((l) => l.name), (i) => ["listeners", i, "name"], "listener name");
    seen(config.backends.map((b) => b.name), (i) => ["backends", i, "name"], "backend name");
    config.backends.forEach((b, bi) =>
      seen(b.servers.map((s) => s.name), (i) => ["backends", bi, "servers", i, "name"], "server name"),
    );
    const binds = [
      ...config.listeners.flatMap((l, li) => l.binds.map((b, bi) => ({ key: `${b.address}|${b.port}`, path: ["listeners", li, "binds", bi] }))),
      ...(config.metrics?.binds ?? []).map((b, bi) => ({ key: `${b.address}|${b.port}`, path: ["metrics", "binds", bi] })),
    ];
    const bindKeys = new Set<string>();
    for (const b of binds) (bindKeys.has(b.key) ? issue(b.path, "address and port already bound by another entry") : bindKeys.add(b.key));
    const hostsByListener = new Map<string, Set<string>>();
    config.routes.forEach((route, ri) => {
      if (!backends.has(route.backend)) issue(["routes", ri, "backend"], `no backend named "${route.backend}"`);
      const targets = route.listeners ?? config.listeners.filter((l) => l.mode === "tls-passthrough").map((l) => l.name);
      route.listeners?.forEach((ln, li) => {
        const l = listeners.get(ln);
        if (l === undefined) issue(["routes", ri, "listeners", li], `no listener named "${ln}"`);
        else if (l.mode !== "tls-passthrough") issue(["routes", ri, "listeners", li], `listener "${ln}" is not tls-passthrough`);
      });
      const pattern = parseHostPattern(route.host);
      if (pattern === null) return;
      const key = hostPatternKey(pattern);
      for (const ln of targets) {
        const hosts = hostsByListener.get(ln) ?? new Set<string>();
        if (hosts.has(key)) issue(["routes", ri, "host"], `host "${key}" is routed twice on listener "${ln}"`);
        hosts.add(key);
        hostsByListener.set(ln, hosts);
      }
    });
  });

/**
 * One routes.d/<stack>.json: what one stack adds to the running config. A stack's routes
 * name only its own backends, so removing the file removes exactly what it added. Whether
 * its hosts and backend names clash with other files is checked when they are merged
 * (config/assemble.ts), where both files can be named.
 */
export const proxyRoutesFileSchema = z
  .strictObject({
    kind: z.literal("proxy-routes"),
    stack: name.describe("The stack these routes belong to; the file is named <stack>.json"),
    routes: z.array(routeSchema),
    backends: z.array(backendSchema),
  })
  .superRefine((file, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    const backends = new Set<string>();
    file.backends.forEach((b, bi) => {
      if (backends.has(b.name)) issue(["backends", bi, "name"], `duplicate backend name "${b.name}"`);
      backends.add(b.name);
      const servers = new Set<string>();
      b.servers.forEach((s, si) => (servers.has(s.name) ? issue(["backends", bi, "servers", si, "name"], `duplicate server name "${s.name}"`) : servers.add(s.name)));
    });
    file.routes.forEach((r, ri) => {
      if (!backends.has(r.backend)) issue(["routes", ri, "backend"], `stack "${file.stack}" defines no backend named "${r.backend}" (a stack's routes use its own backends)`);
    });
  });

/** The validated config, defaults filled in. */
export type ProxyConfig = z.output<typeof proxyConfigSchema>;
/** What a config file may contain (defaults optional): the renderer's target type. */
export type ProxyConfigInput = z.input<typeof proxyConfigSchema>;
export type ListenerConfig = ProxyConfig["listeners"][number];
export type TlsPassthroughListenerConfig = Extract<ListenerConfig, { mode: "tls-passthrough" }>;
export type BackendConfig = ProxyConfig["backends"][number];
export type ServerConfig = BackendConfig["servers"][number];
export type TimeoutsConfig = ProxyConfig["timeouts"];
export type NoMatchAction = TlsPassthroughListenerConfig["onNoMatch"];
/** A validated routes.d fragment, defaults filled in. */
export type ProxyRoutesFile = z.output<typeof proxyRoutesFileSchema>;
/** What a routes.d file may contain: the renderer's target type. */
export type ProxyRoutesFileInput = z.input<typeof proxyRoutesFileSchema>;
export type HttpRedirectListenerConfig = Extract<ListenerConfig, { mode: "http-redirect" }>;
export type HealthCheckConfig = NonNullable<BackendConfig["healthCheck"]>;
export type RateLimitConfig = NonNullable<ListenerConfig["rateLimit"]>;
export type StatsConfig = NonNullable<ProxyConfig["stats"]>;
export type MetricsConfig = NonNullable<ProxyConfig["metrics"]>;
