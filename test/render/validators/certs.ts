// Self-signed test certificates, generated per run in a temp dir: no key material is committed.
import { join } from "node:path";
import { mustExec } from "./exec";

export interface TestCert {
  readonly cert: string;
  readonly key: string;
}

export function makeCert(dir: string, hostnames: readonly string[], name = "test"): TestCert {
  const cert = join(dir, `${name}-fullchain.pem`);
  const key = join(dir, `${name}-privkey.pem`);
  const san = hostnames.map((h) => `DNS:${h}`).join(",");
  mustExec([
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-days", "2", "-subj", `/CN=${hostnames[0] ?? "localhost"}`, "-addext", `subjectAltName=${san}`,
    "-keyout", key, "-out", cert,
  ]);
  return { cert, key };
}
