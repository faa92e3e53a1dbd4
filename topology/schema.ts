// The shape of a stack's config (Pulumi.<stack>.yaml, keys in the project namespace).
// zod checks shape and fills defaults; cross-field rules live in validate.ts so that every
// error is collected at once, with a message that names the field and the fix.
import { z } from "zod";
import { parseDuration } from "./duration";

const durationMs = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms === 0) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a duration; write e.g. 500ms, 5s, 1m or 1h` });
    return z.NEVER;
  }
  return ms;
});

const name = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,61}[a-z0-9]$/, "use 2-63 lowercase letters, digits and hyphens, starting with a letter");

const port = z
  .number({ error: "must be a port number" })
  .int("must be a whole number")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

const labels = z.record(z.string(), z.string()).default({});

// Values that end up inside rendered files (nginx, Quadlet) are held to plain characters: a
// newline or quote there would add directives to a unit or a server block.
const hostPath = z
  .string()
  .regex(/^(\/[A-Za-z0-9._-]+)+\/?$/, "must be an absolute path of letters, digits, '.', '_', '-' and '/'")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'");

const imageRef = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._\/:-]*(@sha256:[a-f0-9]{64})?$/, "must be an image reference such as docker.io/library/nginx:1.28-alpine, optionally @sha256:<digest>");

export const LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
export const NETWORK_ZONES = ["eu-central", "us-east", "us-west", "ap-southeast"] as const;
export const ENGINES = ["haproxy", "ts"] as const;

/** A stack name as apply.sh takes it (its NAME_RE): it names directories and forced commands on the LB. */
export const STACK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const subnetSchema = z.object({ ipRange: z.string() }).strict();

export const networkSchema = z
  .object({
    name,
    ipRange: z.string(),
    subnets: z.array(subnetSchema).min(1, "a network needs at least one subnet for its servers"),
    labels,
  })
  .strict();

export const serverSchema = z
  .object({
    name,
    serverType: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "must be a Hetzner server type such as cx23"),
    image: z.string().min(1),
    /** network name -> this server's fixed private IP in it */
    networks: z.record(z.string(), z.string()),
    labels,
  })
  .strict();

const tlsSchema = z.discriminatedUnion("source", [
  /** Certificates already on the server, e.g. certbot's /etc/letsencrypt/live/<domain>. */
  z.object({ source: z.literal("host"), path: hostPath }).strict(),
  /** PEM from secret stack config: the names of the two secret keys. */
  z.object({ source: z.literal("provided"), certSecret: z.string().min(1), keySecret: z.string().min(1) }).strict(),
  z.object({ source: z.literal("self-signed") }).strict(),
  /**
   * Issued and renewed on the web server by an ACME client (the stack's `acme` settings):
   * http-01 through the LB's port 80, or dns-01 through Hetzner DNS.
   */
  z.object({ source: z.literal("acme"), challenge: z.enum(["http-01", "dns-01"]).default("http-01") }).strict(),
]);

const appSchema = z.union([
  z.object({ upstream: z.string().regex(/^https?:\/\/[^\s;{}]+$/, "must be an http:// or https:// URL") }).strict(),
  z.object({ body: z.string().regex(/^[^'\\\n\r]*$/, "must be one line without quotes or backslashes") }).strict(),
]);

export const siteSchema = z
  .object({
    hostname: z.string(),
    server: z.string(),
    port,
    tls: tlsSchema,
    app: appSchema.default({ body: "Hello from nginx, real client IP is $remote_addr" }),
    healthPath: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, "must be an absolute URL path").default("/healthz"),
    tlsProtocols: z.array(z.enum(["TLSv1.2", "TLSv1.3"])).min(1).default(["TLSv1.2", "TLSv1.3"]),
  })
  .strict();

const statsSchema = z
  .object({
    enabled: z.boolean().default(false),
    port: port.default(8404),
    user: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, dot, dash, underscore").default("admin"),
    /** Name of the secret stack config key that holds the password. */
    passwordSecret: z.string().min(1).optional(),
    allowedCidrs: z.array(z.string()).default([]),
  })
  .strict();

/**
 * Prometheus metrics on the LB's private address(es) only. A scraper is a server of this stack
 * by name (its private address in a network it shares with the LB) or a CIDR inside one of the
 * LB's networks: the endpoint is never on the public address, so nothing else could reach it.
 */
const metricsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** 8405: HAProxy's documentation's port for its Prometheus exporter, next to stats' 8404. */
    port: port.default(8405),
    scrapers: z.array(z.string()).default([]),
  })
  .strict();

const rateLimitSchema = z
  .object({
    window: durationMs.default(3000),
    threshold: z.number().int().positive().default(50),
    tableSize: z.number().int().positive().max(10_000_000).default(500_000),
    expire: durationMs.default(60_000),
    httpSessionsPerSecond: z.number().int().positive().default(128),
    /**
     * IPv6 sources are counted per network of this prefix length: one host usually holds a
     * whole /64, so per-address counting would never limit it.
     */
    ipv6Prefix: z.number().int().min(1).max(128).default(64),
  })
  .strict();

const timeoutsSchema = z
  .object({
    connect: durationMs.default(5000),
    client: durationMs.default(30_000),
    server: durationMs.default(30_000),
    tunnel: durationMs.default(300_000),
    inspect: durationMs.default(5000),
  })
  .strict();

const healthCheckSchema = z
  .object({
    interval: durationMs.default(5000),
    timeout: durationMs.default(2000),
    fall: z.number().int().min(1).max(100).default(3),
    rise: z.number().int().min(1).max(100).default(2),
  })
  .strict();

/**
 * A stack that may attach to this LB, and what it may route there: only hostnames in its
 * zones, only to servers in its network. Everything else it pushes is refused on the LB.
 */
const attachedStackSchema = z
  .object(
    {
      stack: z.string().regex(STACK_NAME, 'a stack name: lowercase letters, digits, "-" and "_"'),
      /** Its private network's range (e.g. 172.20.0.0/16): its backends' addresses must lie inside. */
      network: z.string(),
      /** DNS zones it may route: each zone itself and every name under it (demo.example.com). */
      zones: z.array(z.string()).min(1, "name at least one DNS zone the stack may route, e.g. demo.example.com"),
    },
    { error: "write each attached stack as { stack: <name>, network: <its network's CIDR>, zones: [<DNS zones it may route>] }" },
  )
  .strict();

const ownIngressSchema = z
  .object({
    mode: z.literal("own"),
    server: serverSchema,
    engine: z.string().default("haproxy"),
    ports: z.object({ http: port.default(80), https: port.default(443) }).strict().prefault({}),
    /**
     * Stacks that may attach to this LB. Each gets an SSH key of its own that the LB accepts
     * for one thing only, adding or removing that stack's routes (a forced command).
     */
    attachedStacks: z.array(attachedStackSchema).default([]),
    /** Concurrent connections the LB holds in all; port 80 may take an eighth of them at most. */
    maxconn: z.number().int().min(8).max(1_000_000).default(4096),
    stats: statsSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    rateLimit: rateLimitSchema.prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    healthCheck: healthCheckSchema.prefault({}),
  })
  .strict();

const attachIngressSchema = z
  .object({
    mode: z.literal("attach"),
    /**
     * The owning stack: its name ("prod", in this program's organization and project) or a
     * full StackReference name "<org>/<project>/<stack>".
     */
    stack: z
      .string()
      .regex(/^(?:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/, 'write the owning stack\'s name, e.g. "prod", or "<org>/<project>/<stack>" for a stack of another organization or project'),
    /** This stack's network that the LB joins, and its fixed IP there. */
    network: z.string(),
    ip: z.string(),
  })
  .strict();

export const ingressSchema = z.discriminatedUnion("mode", [ownIngressSchema, attachIngressSchema], {
  error: 'ingress.mode must be "own" (this stack runs the LB) or "attach" (routes go to another stack\'s LB)',
});

/** Well-known ACME directories by name; any other is given as its https:// URL. */
export const ACME_DIRECTORIES = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
} as const;

/** Account and certificate settings shared by every site with `tls.source: acme`. */
const acmeSchema = z
  .object({
    /** The account's contact: the CA writes here about expiring certificates and policy changes. */
    email: z.string().regex(/^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, "must be an e-mail address such as ops@example.com"),
    directory: z
      .string()
      .regex(
        /^(letsencrypt|letsencrypt-staging|https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~\/-]*)?)$/,
        '"letsencrypt" (the default), "letsencrypt-staging" (for trying things out: its certificates are not trusted), or the https:// URL of another ACME directory',
      )
      .default("letsencrypt"),
    /** The certificate's key (lego makes the account key of this type too). rsa3072 is left out: lego before 4.10 lacks it. */
    keyType: z.enum(["ec256", "ec384", "rsa2048", "rsa4096"]).default("ec256"),
    /** Renew when fewer days than this are left (Let's Encrypt certificates last 90 days, or fewer under its newer profiles). */
    renewBeforeDays: z.number().int().min(1).max(365).default(30),
    /** External Account Binding, for CAs that require it (ZeroSSL, Google, step-ca): the key id, and the secret config key holding the HMAC key. */
    eab: z.object({ kid: z.string().regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '-' and '_'"), hmacSecret: z.string().min(1) }).strict().optional(),
    /** dns-01 only: the secret config key holding a Hetzner Cloud API token with DNS write access (lego's `hetzner` provider). */
    dnsTokenSecret: z.string().min(1).optional(),
    /**
     * PEM of the root that signs the ACME server's own HTTPS certificate, when it is not a
     * public one (a private CA such as step-ca, or Pebble in the sandbox). Public data.
     */
    caCertificate: z
      .string()
      .regex(/^\s*(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+\/=\r\n]+-----END CERTIFICATE-----\s*)+$/, "must be one or more PEM certificates (-----BEGIN CERTIFICATE----- ...)")
      .optional(),
  })
  .strict();

/**
 * The default images, pinned by digest: a tag can be moved under a running fleet, a digest
 * cannot. Each is the multi-platform index of the Docker official image as docker-library's
 * repo-info records it; docs/config.md ("Container images") says how to bump them.
 */
export const DEFAULT_IMAGES = {
  haproxy: "docker.io/library/haproxy:3.2.24-alpine@sha256:1aca32ee932b96d2a75f1882909325839dd23c138ba9c6fd26e4d88179f30f13",
  nginx: "docker.io/library/nginx:1.30.5-alpine@sha256:0985e772fb9f729e6fa0980da05fca5d9c468e870eed43071545afa9d2e27d94",
  node: "docker.io/library/node:24.21.0-alpine@sha256:ebfe2f90462722a7a4de65e91990e97fe0d401c70e0e762c5b53302f905ec1c1",
  /**
   * lego, the ACME client, in its official image (goacme/lego on Docker Hub; not a Docker
   * official image, so repo-info does not record it). The last 4.x release: 5.0 changed the
   * command line, and the 4.x line reads the same flags as Debian's lego 4.9 that the sandbox
   * runs. Its digest could not be pulled here (no registry access); it is the one a public
   * project's Pebble test pins for this tag. docs/config.md says how to check it.
   */
  lego: "docker.io/goacme/lego:v4.35.2@sha256:ae124a405844759b201b31efbd7a0ba302dbd16e86f2fb177c4b6db8bdc782c8",
} as const;

const imagesSchema = z
  .object({
    haproxy: imageRef.default(DEFAULT_IMAGES.haproxy),
    nginx: imageRef.default(DEFAULT_IMAGES.nginx),
    node: imageRef.default(DEFAULT_IMAGES.node),
    lego: imageRef.default(DEFAULT_IMAGES.lego),
  })
  .strict();

export const stackConfigSchema = z
  .object({
    location: z.enum(LOCATIONS),
    networkZone: z.enum(NETWORK_ZONES),
    networks: z.array(networkSchema).min(1),
    servers: z.array(serverSchema).default([]),
    sites: z.array(siteSchema).default([]),
    ingress: ingressSchema,
    ssh: z
      .object({
        adminCidrs: z.array(z.string()).min(1, "name at least one CIDR that may reach SSH, e.g. your office's /32"),
        /** Explicit override for SSH open to the whole internet. */
        allowFromAnywhere: z.boolean().default(false),
      })
      .strict(),
    /** Delete and rebuild protection on servers and networks (Hetzner and Pulumi `protect`). */
    protect: z.boolean().default(false),
    containerImages: imagesSchema.prefault({}),
    /** Required when a site has `tls.source: acme`. */
    acme: acmeSchema.optional(),
  })
  .strict();

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type StackConfig = z.output<typeof stackConfigSchema>;
export type ServerConfig = z.output<typeof serverSchema>;
export type SiteConfig = z.output<typeof siteSchema>;
export type NetworkConfig = z.output<typeof networkSchema>;
export type IngressConfig = z.output<typeof ingressSchema>;
export type OwnIngressConfig = z.output<typeof ownIngressSchema>;
export type AttachIngressConfig = z.output<typeof attachIngressSchema>;
export type AttachedStackConfig = z.output<typeof attachedStackSchema>;
export type TlsSource = z.output<typeof tlsSchema>;
export type AcmeConfig = z.output<typeof acmeSchema>;
