// What the ingress sandbox needs from the machine, checked up front so a missing piece is
// named at once instead of surfacing as a daemon that never listens.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PROMETHEUS_PARSER_PYTHON } from "../lab/prometheus-text";

/** Binaries the ingress sandbox runs, and the Debian package that has each. */
export const REQUIRED_BINARIES: Readonly<Record<string, string>> = {
  ip: "iproute2",
  nft: "nftables",
  haproxy: "haproxy",
  nginx: "nginx",
  curl: "curl",
  openssl: "openssl",
  ping: "iputils-ping",
  // The local engine: sshd on every machine, ssh/scp from the operator, the machines' namespaces.
  sshd: "openssh-server",
  ssh: "openssh-client",
  scp: "openssh-client",
  "ssh-keygen": "openssh-client",
  unshare: "util-linux",
  nsenter: "util-linux",
  setpriv: "util-linux",
  mount: "mount",
  // The sandbox's ACME CA and its DNS; lego stands in for the image's on every web server.
  pebble: "pebble",
  "pebble-challtestsrv": "pebble",
  lego: "lego",
};

function onPath(name: string): boolean {
  const dirs = [...(process.env["PATH"] ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  return dirs.some((d) => d !== "" && existsSync(join(d, name)));
}

/** Every reason the sandbox cannot run here; empty when it can. */
export function missingPrerequisites(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("root: the sandbox creates network namespaces, mount namespaces and nftables rules (run with sudo)");
  const missing = Object.keys(REQUIRED_BINARIES).filter((b) => !onPath(b));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((b) => REQUIRED_BINARIES[b]))].join(" ");
    problems.push(`binaries ${missing.join(", ")} (apt-get install -y ${packages})`);
  }
  // The metrics check reads a scrape with Prometheus' own parser.
  if (spawnSync(PROMETHEUS_PARSER_PYTHON, ["-c", "import prometheus_client"], { stdio: "ignore" }).status !== 0) {
    problems.push(`Prometheus' Python client for ${PROMETHEUS_PARSER_PYTHON} (apt-get install -y python3-prometheus-client)`);
  }
  return problems;
}
