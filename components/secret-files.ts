// The content of a host's secret files, as one secret Output: the stats env file from the
// stats password, provided certificates from secret config, self-signed ones generated here.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { HostPlan } from "../topology";
import type { SecretFileContent } from "./deploy/deploy-commands";
import { childName } from "./deploy/names";
import { attachedKeysFile } from "./deploy/deploy-commands";
import { statsEnv } from "./deploy/outputs";
import { selfSignedPairs } from "./deploy/secret-plan";

/** Reads one secret stack config value; index.ts has checked beforehand that each is set. */
export type SecretLookup = (key: string) => pulumi.Output<string>;

/** Two years, renewed by a `pulumi up` in the last 30 days (the tls provider replaces it then). */
const SELF_SIGNED_VALIDITY_HOURS = 2 * 365 * 24;
const SELF_SIGNED_EARLY_RENEWAL_HOURS = 30 * 24;

/** One NAME=value line of an env file podman reads (--env-file): no quoting there, so no line breaks. */
function envLine(host: HostPlan, name: string, value: string): string {
  if (/[\r\n]/.test(value) || value === "") throw new Error(`host ${host.name}: ${name} for the ACME client is empty or holds a line break`);
  return `${name}=${value}\n`;
}

/** Each attached stack's routes key (public half, OpenSSH), by stack name. */
export type AttachedKeys = ReadonlyMap<string, pulumi.Output<string>>;

export function secretFileContents(
  name: string,
  host: HostPlan,
  lookup: SecretLookup,
  parent: pulumi.Resource,
  attachedKeys: AttachedKeys = new Map(),
): pulumi.Output<SecretFileContent[]> | undefined {
  if (host.secretFiles.length === 0) return undefined;
  const generated = new Map<string, pulumi.Output<string>>();
  for (const pair of selfSignedPairs(host)) {
    const key = new tls.PrivateKey(childName(name, "tls-key", pair.key), { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] });
    const cert = new tls.SelfSignedCert(
      childName(name, "tls-cert", pair.key),
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: pair.hostnames[0]! },
        dnsNames: [...pair.hostnames],
        allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        validityPeriodHours: SELF_SIGNED_VALIDITY_HOURS,
        earlyRenewalHours: SELF_SIGNED_EARLY_RENEWAL_HOURS,
      },
      { parent },
    );
    generated.set(pair.keyPath, pulumi.secret(key.privateKeyPem));
    generated.set(pair.certPath, cert.certPem);
  }

  const contents = host.secretFiles.map((file): pulumi.Output<SecretFileContent> => {
    const from = file.from;
    let content: pulumi.Output<string>;
    if (from.kind === "stats-env") {
      content = lookup(from.secretKey).apply((password) => statsEnv(from.user, password));
    } else if (from.kind === "attached-keys") {
      const keys = from.stacks.map((stack) => {
        const key = attachedKeys.get(stack);
        if (!key) throw new Error(`host ${host.name}: no routes key for attached stack ${stack}`);
        return key.apply((publicKey) => ({ stack, publicKey }));
      });
      content = pulumi.all(keys).apply(attachedKeysFile);
    } else if (from.kind === "acme-env") {
      const lines = from.vars.map((v) => {
        const value = v.secretKey !== undefined ? lookup(v.secretKey) : pulumi.output(v.value ?? "");
        return value.apply((text) => envLine(host, v.name, text));
      });
      content = pulumi.all(lines).apply((l) => l.join(""));
    } else if (from.source === "provided") {
      if (from.secretKey === undefined) throw new Error(`host ${host.name}: ${file.path} is provided but names no secret key`);
      content = lookup(from.secretKey);
    } else {
      const g = generated.get(file.path);
      if (!g) throw new Error(`host ${host.name}: no self-signed material for ${file.path}`);
      content = g;
    }
    return content.apply((text) => ({ path: file.path, content: text }));
  });
  return pulumi.secret(pulumi.all(contents));
}
