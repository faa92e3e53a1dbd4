// Stack outputs: what an operator needs after `pulumi up` (DNS records, stats URL, SSH
// commands) and what an attached stack reads from the owning stack through a StackReference.
// Pure: no Pulumi import.
import { STATS_PASSWORD_ENV } from "../../render/proxy-config";
import { DEPLOY_USER } from "./deploy-commands";
import type { HostPlan } from "../../topology";

/**
 * Output names the owning stack exports and attached stacks read. One table for both
 * sides: a renamed output would otherwise break every attached stack at its next `up`.
 */
export const OWNER_OUTPUTS = {
  serverId: "lbServerId",
  ipv4: "lbIpv4",
  ipv6: "lbIpv6",
  engine: "engine",
  /** Secret: each attached stack's key for its own routes on the LB, by stack name. */
  routesKeys: "routesKeys",
  /** The LB's SSH host key, recorded at its first boot: attached stacks pin it. */
  hostKey: "lbHostKey",
  statsUrl: "statsUrl",
} as const;

/**
 * The StackReference name of the owning stack. A bare stack name ("prod") is completed with
 * this program's organization and project: Pulumi Cloud wants the real organization, and a
 * self-managed backend answers `organization`. A full "<org>/<project>/<stack>" is kept.
 */
export function stackReferenceName(configured: string, organization: string, project: string): string {
  if (configured.includes("/")) return configured;
  return `${organization}/${project}/${configured}`;
}

/** Where `sshCommand` expects the deploy key; docs/deploy.md shows how to put it there. */
export const DEPLOY_KEY_FILE = "./deploy-key";

export interface DnsRecord {
  readonly name: string;
  readonly type: "A" | "AAAA";
  readonly value: string;
}

/** Every hostname points at the LB, both families; the LB routes by SNI, not by address. */
export function dnsRecords(hostnames: readonly string[], ipv4: string, ipv6: string): DnsRecord[] {
  return [...hostnames].sort().flatMap((name): DnsRecord[] => [
    { name, type: "A", value: ipv4 },
    { name, type: "AAAA", value: ipv6 },
  ]);
}

export function statsUrl(ipv4: string, port: number): string {
  // Both engines serve the page at /stats, over plain HTTP on a port only the stats CIDRs reach.
  return `http://${ipv4}:${port}/stats`;
}

export function sshCommand(ipv4: string): string {
  return `ssh -i ${DEPLOY_KEY_FILE} ${DEPLOY_USER}@${ipv4}`;
}

/**
 * stats.env, read by podman as an env file (KEY=VALUE, no quoting), so a value cannot hold
 * a line break. The renderers name the variables; the password never reaches their output.
 */
export function statsEnv(user: string, password: string): string {
  if (/[\r\n\0]/.test(password)) throw new Error("the stats password must not contain line breaks or NUL bytes");
  if (password.length === 0) throw new Error("the stats password is empty");
  return `STATS_USER=${user}\n${STATS_PASSWORD_ENV}=${password}\n`;
}

/** What the stack knows of one site's certificate; the live one is on the LB's stats page. */
export interface CertificateOutput {
  readonly server: string;
  readonly source: string;
  /** Who signs it, as far as the stack decides that. */
  readonly issuer: string;
  /** How it is renewed before it expires. */
  readonly renewal: string;
}

const DIRECTORY_NAMES: Readonly<Record<string, string>> = {
  "https://acme-v02.api.letsencrypt.org/directory": "Let's Encrypt",
  "https://acme-staging-v02.api.letsencrypt.org/directory": "Let's Encrypt staging (untrusted)",
};

/**
 * The `certificates` output, by hostname. Not the live expiry: an ACME certificate is issued and
 * renewed on its server after `pulumi up` returns, where the stack cannot see it, and a read at
 * every `up` would put a diff in every preview. Both engines' stats pages show each served
 * certificate's issuer, names, expiry and days left (contract/certificate-info.ts).
 */
export function certificateOutputs(hosts: readonly HostPlan[]): Record<string, CertificateOutput> {
  const out: Record<string, CertificateOutput> = {};
  for (const host of hosts) {
    const acme = host.web?.acme;
    for (const s of host.web?.sites ?? []) {
      const tls = s.site.tls;
      let issuer: string;
      let renewal: string;
      if (tls.source === "acme") {
        if (!acme) throw new Error(`site ${s.site.hostname} takes its certificate from ACME but host ${host.name} has no acme plan`);
        issuer = `${DIRECTORY_NAMES[acme.directoryUrl] ?? acme.directoryUrl} (ACME, ${tls.challenge})`;
        renewal = `lego on ${host.name} (acme.timer), ${acme.renewBeforeDays} days before expiry; a self-signed stand-in until the first`;
      } else if (tls.source === "host") {
        issuer = `whatever issued the files in ${tls.path} (certbot, say)`;
        renewal = `by that tool on ${host.name}; apply.sh --switch-certs moves nginx to a renewed one`;
      } else if (tls.source === "provided") {
        issuer = `the certificate in secret config ${tls.certSecret}`;
        renewal = "by you: set a new one in the secret config and run pulumi up";
      } else {
        issuer = "self-signed (Pulumi's tls provider; browsers will not trust it)";
        renewal = "valid 2 years; the pulumi up in its last 30 days replaces it";
      }
      out[s.site.hostname] = { server: host.name, source: tls.source, issuer, renewal };
    }
  }
  return out;
}
