// tls/host-certs: for each site whose certificate is kept on the host (tls.source host or
// acme), the link nginx reads through, the real certificate directory, the self-signed
// stand-in and the names of the two files in each, one line each.
// apply.sh (link_host_certs) is its only reader. Pure: no I/O.
import type { HostPlan } from "../topology";

export function renderHostCerts(host: HostPlan): string {
  const lines = (host.web?.sites ?? []).flatMap((s) => {
    const c = s.hostCert;
    return c ? [`${c.link} ${c.real} ${c.standin} ${c.certFile} ${c.keyFile}`] : [];
  });
  if (lines.length === 0) throw new Error(`host ${host.name} keeps no certificate on the host`);
  for (const line of lines) {
    // apply.sh splits on spaces; the schema already refuses whitespace in paths.
    if (line.split(" ").length !== 5) throw new Error(`host ${host.name}: a certificate path holds a space: ${line}`);
  }
  return [
    "# <link> <real certificate dir> <self-signed stand-in dir> <cert file> <key file>: nginx reads",
    "# <link>/<cert file> and <link>/<key file>; apply.sh points <link> at the real dir once it holds both.",
    ...lines,
    "",
  ].join("\n");
}
