import { join } from "node:path";
import { run } from "./command";

export interface CertificateFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * A throwaway self-signed certificate (P-256, valid two days) made at test
 * time in `dir`, so no key is ever committed. The first name is the CN; all
 * are subjectAltNames.
 */
export async function selfSignedCertificate(dir: string, names: readonly string[], basename = "tls"): Promise<CertificateFiles> {
  const [cn] = names;
  if (cn === undefined) throw new Error("selfSignedCertificate: at least one name");
  for (const n of names) if (!/^[A-Za-z0-9.*-]+$/.test(n)) throw new Error(`invalid certificate name "${n}"`);
  const certPath = join(dir, `${basename}.crt`);
  const keyPath = join(dir, `${basename}.key`);
  await run([
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-days", "2", "-subj", `/CN=${cn}`,
    "-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
    "-keyout", keyPath, "-out", certPath,
  ]);
  return { certPath, keyPath };
}
