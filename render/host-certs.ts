// tls/host-certs: for each site whose certificate is kept on the host (tls.source host or
// acme), the link nginx reads through, the real certificate directory, the self-signed
// stand-in and the names of the two files in each, one line each.
// apply.sh (link_host_certs) is its only reader. Pure: no I/O.
import type { HostPlan } from "../topology";

export function renderHostCerts(host: HostPlan): string {
  const sites = (host.web?.sites ?? []).flatMap((s) => (s.hostCert ? [s.hostCert] : []));
  if (sites.length === 0) throw new Error(`host ${host.name} keeps no certificate on the host`);
  const lines = sites.map((c) => {
    const fields = [c.link, c.real, c.standin, c.certFile, c.keyFile, ...(c.attempts !== undefined ? [c.attempts] : [])];
    // apply.sh splits on spaces; the schema already refuses whitespace in paths.
    if (fields.some((f) => /\s/.test(f) || f === "")) throw new Error(`host ${host.name}: a certificate path is empty or holds a space: ${fields.join(" ")}`);
    return fields.join(" ");
  });
  return [
    "# <link> <real certificate dir> <self-signed stand-in dir> <cert file> <key file> [<acme attempts file>]:",
    "# nginx reads <link>/<cert file> and <link>/<key file>; apply.sh points <link> at the real dir once it",
    "# holds both, and turns the ACME job's attempts file into the health check's ACME header.",
    ...lines,
    "",
  ].join("\n");
}
