// The per-host plan: what runs where, which files go where, which ports listen and who
// may reach them. Renderers turn a HostPlan into file text; components turn it into resources.
import type { AttachedStackConfig } from "./schema";
import type { Engine, OwnIngress, SiteConfig } from "./types";

export type ContainerName = "haproxy" | "nginx" | "proxy" | "acme";

export interface ContainerPlan {
  readonly name: ContainerName;
  readonly image: string;
  /** Signal that makes the process re-read its config without dropping connections (daemons only). */
  readonly reloadSignal?: "USR2" | "HUP";
  /**
   * A oneshot job (systemd Type=oneshot) started by its timer, <name>.timer, and once by a
   * deploy that changes it; never restarted, reloaded or probed. Absent: a daemon.
   */
  readonly job?: { readonly timer: string };
  /** The program to run instead of the image's entrypoint; `command` are then its arguments. */
  readonly entrypoint?: string;
  readonly command: readonly string[];
  /** Its main config file; a change below that file's directory reloads the container. */
  readonly config: string;
  /** What checks a release's config before it goes live, run in the same image: argv. */
  readonly check: readonly string[];
  /** Read-only unless `writable`. */
  readonly mounts: readonly { readonly host: string; readonly container: string; readonly writable?: true }[];
  readonly envFile?: string;
}

export type FileKind =
  | "haproxy-config"
  | "haproxy-routes"
  | "haproxy-map"
  | "haproxy-errorfile"
  | "nginx-config"
  | "nginx-site"
  | "proxy-config"
  | "proxy-routes"
  | "quadlet"
  | "nftables"
  | "host-certs"
  | "apply-plan"
  | "attached-policy"
  | "attached-node-image"
  | "acme-script"
  | "acme-ca"
  | "systemd-timer";

export interface FilePlan {
  /** Absolute path on the host. */
  readonly path: string;
  readonly kind: FileKind;
  readonly mode: number;
}

/** A file written on deploy from a Pulumi secret, mode 0600, outside every rendered bundle. */
export interface SecretFilePlan {
  readonly path: string;
  readonly from:
    | { readonly kind: "stats-env"; readonly user: string; readonly secretKey: string }
    /** sshd's extra authorized_keys: each attached stack's key, bound to its forced command. */
    | { readonly kind: "attached-keys"; readonly stacks: readonly string[] }
    /** The ACME client's env file: EAB and DNS credentials, each from a secret config key or a plain value. */
    | { readonly kind: "acme-env"; readonly vars: readonly { readonly name: string; readonly secretKey?: string; readonly value?: string }[] }
    | {
        readonly kind: "tls-cert" | "tls-key";
        /** Every hostname of the listener: a self-signed certificate carries them all as SANs. */
        readonly hostnames: readonly string[];
        readonly source: "provided" | "self-signed";
        readonly secretKey?: string;
      };
}

export interface FirewallRule {
  readonly port: number;
  /** CIDRs allowed in; ["0.0.0.0/0", "::/0"] for the public. */
  readonly sources: readonly string[];
  readonly purpose: "http" | "https" | "stats" | "metrics" | "site" | "acme" | "ssh";
  /** Private rules are enforced only by nftables: Hetzner's cloud firewall does not filter private networks. */
  readonly scope: "public" | "private";
}

/**
 * Sources the stats page always admits besides its allowed CIDRs: the LB itself, so an SSH
 * tunnel (ssh -L <port>:127.0.0.1:<port> root@<lb>) reaches it from wherever SSH does.
 */
export const STATS_LOOPBACK_SOURCES = ["127.0.0.1/32", "::1/128"] as const;

export interface ListenPlan {
  readonly port: number;
  readonly purpose: FirewallRule["purpose"];
  readonly by: ContainerName | "sshd";
  /** Bound to this address only (the metrics endpoint, on a private address); absent: every address. */
  readonly address?: string;
}

export interface BackendServer {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Its ACME http-01 responder (plain HTTP), where the LB's port 80 sends challenge requests for the backend's hostnames. */
  readonly acmePort?: number;
}

export interface LbBackend {
  /** HAProxy backend name: stable, derived from stack, server and port. */
  readonly name: string;
  readonly servers: readonly BackendServer[];
  /** The L7 check talks TLS with this SNI and GETs this path on the server's nginx. */
  readonly check: { readonly sni: string; readonly path: string };
}

export interface Route {
  readonly hostname: string;
  readonly backend: string;
}

/** What one stack registers on the LB. Attached stacks push theirs to another stack's LB. */
export interface RouteFragment {
  readonly stack: string;
  readonly backends: readonly LbBackend[];
  readonly routes: readonly Route[];
}

export interface SitePlan {
  readonly site: SiteConfig;
  /** Certificate and key as nginx opens them (same path on host and in the container). */
  readonly cert: string;
  readonly key: string;
  /**
   * host: certificates already on the server; acme: issued on the server by its acme job;
   * deploy: written from Pulumi secrets on deploy.
   */
  readonly certDelivery: "host" | "acme" | "deploy";
  /**
   * certDelivery "host" and "acme": `cert` and `key` lie in `link`, which apply.sh points at a
   * checked copy of the pair in `real` (the configured directory, or the ACME client's) once it
   * holds a matching one, and at `standin` (self-signed, written on deploy) until then, so a
   * fresh server deploys before any certificate exists. The files are `certFile` and `keyFile`.
   */
  readonly hostCert?: {
    readonly link: string;
    readonly real: string;
    readonly standin: string;
    readonly certFile: string;
    readonly keyFile: string;
    /** acme: renew.sh's record of failed runs, which apply.sh turns into the health check's ACME header. */
    readonly attempts?: string;
  };
}

/** One certificate the web server's ACME job keeps: a site's hostname. */
export interface AcmeCertificatePlan {
  readonly hostname: string;
  readonly challenge: "http-01" | "dns-01";
  /** The ACME client's directory for it (account, certificates): one account per site. */
  readonly dir: string;
}

/** What the web server's ACME job does (render/acme.ts turns it into its script and timer). */
export interface AcmePlan {
  readonly directoryUrl: string;
  readonly email: string;
  readonly keyType: string;
  readonly renewBeforeDays: number;
  /** The CA bundle the client trusts for the ACME server's HTTPS (a private CA), in the release. */
  readonly caFile?: string;
  /** Its content (PEM), public. */
  readonly caPem?: string;
  /** The HMAC key (EAB) and the DNS token come from this env file (secret); absent when there are none. */
  readonly envFile?: string;
  /** External Account Binding: the key id (not secret; the HMAC key is in the env file). */
  readonly eab?: { readonly kid: string };
  readonly certificates: readonly AcmeCertificatePlan[];
}

export interface WebPlan {
  readonly sites: readonly SitePlan[];
  /** LB private IPs that may send PROXY headers to this host (nginx set_real_ip_from). */
  readonly realIpFrom: readonly string[];
  /** Present when a site's certificate comes from ACME. */
  readonly acme?: AcmePlan;
}

/** The LB's Prometheus endpoint: on its private addresses only, for the scrapers only. */
export interface MetricsPlan {
  readonly port: number;
  /** Where Prometheus looks by default. */
  readonly path: "/metrics";
  /** The LB's own private addresses, one per network of its stack: the endpoint binds these, never the public one. */
  readonly addresses: readonly string[];
  /** CIDRs allowed to scrape (servers named in the config resolved to their private addresses). */
  readonly scrapers: readonly string[];
}

export interface IngressPlan {
  readonly engine: Engine;
  readonly ports: OwnIngress["ports"];
  /** Concurrent connections in all (both engines' global maxconn). */
  readonly maxconn: number;
  /** The most of them port 80 may hold, so plain HTTP can never starve TLS. */
  readonly httpMaxconn: number;
  /**
   * Stacks whose own key may add or remove their routes on this LB, and nothing else: hostnames
   * in their zones, to servers in their network (topology/attached-routes.ts).
   */
  readonly attachedStacks: readonly AttachedStackConfig[];
  /** The node image the LB renders attached stacks' routes in (their data never runs as config). */
  readonly nodeImage: string;
  readonly stats: OwnIngress["stats"];
  /** Present when `ingress.metrics.enabled`. */
  readonly metrics?: MetricsPlan;
  readonly rateLimit: OwnIngress["rateLimit"];
  readonly timeouts: OwnIngress["timeouts"];
  readonly healthCheck: OwnIngress["healthCheck"];
  /** This stack's own routes; attached stacks add theirs as separate fragments on the host. */
  readonly fragment: RouteFragment;
}

/** What the owning LB's settings contribute to any stack's backends, in both engines. */
export type RouteSettings = Pick<IngressPlan, "healthCheck" | "timeouts">;

export interface HostPlan {
  readonly stack: string;
  readonly name: string;
  readonly role: "ingress" | "web";
  readonly serverType: string;
  readonly image: string;
  readonly selinux: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly privateIps: readonly { readonly network: string; readonly ip: string }[];
  readonly containers: readonly ContainerPlan[];
  readonly listens: readonly ListenPlan[];
  readonly firewall: readonly FirewallRule[];
  readonly files: readonly FilePlan[];
  readonly secretFiles: readonly SecretFilePlan[];
  readonly web?: WebPlan;
  readonly ingress?: IngressPlan;
}

export interface AttachPlan {
  /** StackReference name of the stack that owns the LB. */
  readonly stack: string;
  readonly network: string;
  readonly ip: string;
  readonly fragment: RouteFragment;
}

export interface StackPlan {
  readonly stack: string;
  readonly hosts: readonly HostPlan[];
  /** Present when this stack's routes go to another stack's LB. */
  readonly attach?: AttachPlan;
}
