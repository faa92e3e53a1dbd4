// tls/host-certs: for each site whose certificate is kept on the host, the link nginx reads
// through, the real certificate directory and the self-signed stand-in, one line each.
// apply.sh (link_host_certs) is its only reader. Pure: no I/O.
import type { HostPlan } from "../topology";

export function renderHostCerts(host: HostPlan): string {
  const lines = (host.web?.sites ?? []).flatMap((s) => (s.hostCert ? [`${s.hostCert.link} ${s.hostCert.real} ${s.hostCert.standin}`] : []));
  if (lines.length === 0) throw new Error(`host ${host.name} keeps no certificate on the host`);
  for (const line of lines) {
    // apply.sh splits on spaces; the schema already refuses whitespace in paths.
    if (line.split(" ").length !== 3) throw new Error(`host ${host.name}: a certificate path holds a space: ${line}`);
  }
  return [
    "# <link> <real certificate dir> <self-signed stand-in dir>: nginx reads <link>/fullchain.pem and",
    "# <link>/privkey.pem; apply.sh points <link> at the real dir once it holds both files.",
    ...lines,
    "",
  ].join("\n");
}
