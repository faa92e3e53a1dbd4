// The tls provider's resources as the local engine makes them: real keys and certificates from
// ssh-keygen and openssl, in the provider's output shapes (PEM, OpenSSH, trailing newlines).
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../lab/command";
import { withScratch } from "./scratch";

export interface KeyMaterial {
  readonly privateKeyPem: string;
  readonly privateKeyPemPkcs8: string;
  readonly privateKeyOpenssh: string;
  readonly publicKeyPem: string;
  readonly publicKeyOpenssh: string;
}

const inTemp = withScratch;

/** One SSH wire-format string: uint32 length, then the bytes. */
function sshString(b: Buffer | string): Buffer {
  const body = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Base64 lines between PEM's BEGIN and END lines for `label`. */
function pemArmor(label: string, lines: readonly string[]): string {
  const dashes = "-----";
  return `${dashes}BEGIN ${label}${dashes}\n${lines.join("\n")}\n${dashes}END ${label}${dashes}\n`;
}

/** An unencrypted ed25519 key in OpenSSH's own format (PROTOCOL.key), as the tls provider writes it. */
function opensshEd25519(seed: Buffer, pub: Buffer): string {
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString("ssh-ed25519"), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString("")]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), count, sshString(publicBlob), sshString(priv)]);
  const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
  return pemArmor("OPENSSH PRIVATE KEY", lines);
}

export async function privateKey(inputs: Record<string, unknown>): Promise<KeyMaterial> {
  const algorithm = String(inputs["algorithm"] ?? "RSA");
  if (algorithm === "ED25519") {
    const { privateKey: key, publicKey: pubKey } = generateKeyPairSync("ed25519");
    const jwk = key.export({ format: "jwk" });
    const seed = Buffer.from(String(jwk.d), "base64url");
    const pub = Buffer.from(String(jwk.x), "base64url");
    const pkcs8 = key.export({ format: "pem", type: "pkcs8" }).toString();
    return {
      privateKeyPem: pkcs8,
      privateKeyPemPkcs8: pkcs8,
      privateKeyOpenssh: opensshEd25519(seed, pub),
      publicKeyPem: pubKey.export({ format: "pem", type: "spki" }).toString(),
      publicKeyOpenssh: `ssh-ed25519 ${Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]).toString("base64")}\n`,
    };
  }
  if (algorithm !== "ECDSA") throw new Error(`tls.PrivateKey: algorithm ${algorithm} is not modelled (ED25519, ECDSA)`);
  const curve = String(inputs["ecdsaCurve"] ?? "P224");
  const named = { P256: "prime256v1", P384: "secp384r1" }[curve];
  if (!named) throw new Error(`tls.PrivateKey: ECDSA curve ${curve} is not modelled (P256, P384)`);
  const { privateKey: key, publicKey: pubKey } = generateKeyPairSync("ec", { namedCurve: named });
  const sec1 = key.export({ format: "pem", type: "sec1" }).toString();
  const publicKeyOpenssh = await inTemp(async (dir) => {
    const file = join(dir, "key");
    writeFileSync(file, sec1, { mode: 0o600 });
    return `${(await run(["ssh-keygen", "-y", "-f", file])).stdout.trim()}\n`;
  });
  return {
    privateKeyPem: sec1,
    privateKeyPemPkcs8: key.export({ format: "pem", type: "pkcs8" }).toString(),
    privateKeyOpenssh: sec1,
    publicKeyPem: pubKey.export({ format: "pem", type: "spki" }).toString(),
    publicKeyOpenssh,
  };
}

export function selfSignedCert(inputs: Record<string, unknown>): Promise<{ certPem: string; validityStartTime: string; validityEndTime: string }> {
  return inTemp(async (dir) => {
    const key = join(dir, "key.pem");
    writeFileSync(key, String(inputs["privateKeyPem"]), { mode: 0o600 });
    const subject = (inputs["subject"] ?? {}) as Record<string, unknown>;
    const cn = String(subject["commonName"] ?? "");
    const names = ((inputs["dnsNames"] ?? []) as unknown[]).map(String);
    const hours = Number(inputs["validityPeriodHours"] ?? 24);
    const days = Math.max(1, Math.ceil(hours / 24));
    const argv = ["openssl", "req", "-x509", "-new", "-key", key, "-days", String(days), "-subj", `/CN=${cn}${subject["organization"] ? `/O=${String(subject["organization"])}` : ""}`];
    if (names.length > 0) argv.push("-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`);
    const certPem = (await run(argv)).stdout;
    const now = new Date();
    return { certPem, validityStartTime: now.toISOString(), validityEndTime: new Date(now.getTime() + hours * 3600_000).toISOString() };
  });
}
