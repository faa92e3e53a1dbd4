// Test certificates for a web host, generated at up time and put where its plan says nginx
// opens them: certbot's layout for tls.source "host" (live/<name>/*.pem are relative symlinks
// into archive/, which is why the plan mounts the whole letsencrypt tree), and the deploy's
// secret paths for "self-signed" and "provided".
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { HostPlan } from "../topology";
import type { HostRoot } from "./host-root";
import { selfSignedCertificate } from "../lab/tls";

const LIVE = "/letsencrypt/live/";

async function makeCert(workDir: string, names: readonly string[], label: string): Promise<{ cert: string; key: string }> {
  const files = await selfSignedCertificate(workDir, names, label);
  return { cert: readFileSync(files.certPath, "utf8"), key: readFileSync(files.keyPath, "utf8") };
}

function writeCertbotLayout(root: HostRoot, certPath: string, keyPath: string, pem: { cert: string; key: string }): void {
  const liveDir = dirname(certPath);
  const name = liveDir.slice(liveDir.lastIndexOf("/") + 1);
  const archive = `${liveDir.slice(0, liveDir.indexOf(LIVE))}/letsencrypt/archive/${name}`;
  root.write(`${archive}/fullchain1.pem`, pem.cert, 0o644);
  root.write(`${archive}/privkey1.pem`, pem.key, 0o600);
  mkdirSync(root.path(liveDir), { recursive: true });
  symlinkSync(`../../archive/${name}/fullchain1.pem`, root.path(certPath));
  symlinkSync(`../../archive/${name}/privkey1.pem`, root.path(keyPath));
}

/** Writes every certificate and key the host's nginx opens; returns their on-host paths. */
export async function installSiteCertificates(root: HostRoot, host: HostPlan, workDir: string): Promise<string[]> {
  mkdirSync(workDir, { recursive: true });
  const written: string[] = [];
  const done = new Set<string>();
  for (const s of host.web?.sites ?? []) {
    if (s.certDelivery !== "host" || done.has(s.cert)) continue;
    done.add(s.cert);
    const pem = await makeCert(workDir, [s.site.hostname], s.site.hostname);
    // As on a host where the certificate exists: it sits in certbot's layout at the configured
    // path, and the link nginx reads through points there (what apply.sh's link_host_certs does).
    const real = s.hostCert?.real;
    if (!real) throw new Error(`host ${host.name}: site ${s.site.hostname} keeps its certificate on the host but has no hostCert plan`);
    const cert = `${real}/fullchain.pem`;
    const key = `${real}/privkey.pem`;
    if (cert.includes(LIVE)) writeCertbotLayout(root, cert, key, pem);
    else {
      root.write(cert, pem.cert, 0o644);
      root.write(key, pem.key, 0o600);
    }
    mkdirSync(root.path(dirname(s.hostCert!.link)), { recursive: true });
    symlinkSync(real, root.path(s.hostCert!.link));
    written.push(cert, key);
  }
  // Deploy-delivered certificates come as a cert/key pair per listener, naming every hostname.
  const certs = host.secretFiles.filter((f) => f.from.kind === "tls-cert");
  for (const [i, c] of certs.entries()) {
    if (c.from.kind !== "tls-cert") continue;
    const names = c.from.hostnames;
    const key = host.secretFiles.find((f) => f.from.kind === "tls-key" && f.from.hostnames.join(",") === names.join(","));
    if (!key) throw new Error(`host ${host.name}: no key planned for the certificate ${c.path}`);
    const pem = await makeCert(workDir, names, `deploy-${i}`);
    root.write(c.path, pem.cert, 0o644);
    root.write(key.path, pem.key, 0o600);
    written.push(c.path, key.path);
  }
  return written;
}
