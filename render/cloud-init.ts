// cloud-init user data for every server. Hetzner replaces a server when its user data changes,
// so this holds only what never changes with sites or routes: packages, one sysctl, the
// directory layout and the unit that loads the host firewall at boot. Everything else arrives
// over SSH with each deploy. It does not even depend on the host: every server gets the same text.
import * as paths from "../topology/paths";
import { FIREWALL_UNIT } from "./quadlet";

/** Hetzner Cloud rejects user data above 32 KiB. */
export const USER_DATA_LIMIT = 32 * 1024;

/** The boot-time firewall entry point; it includes whatever the current release ships. */
export const FIREWALL_ENTRY = "/etc/ingress/firewall.nft";

function indent(text: string, by: string): string {
  // The block scalar (|) puts the one final newline back.
  return text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => (l === "" ? "" : by + l))
    .join("\n");
}

function writeFile(path: string, permissions: string, content: string): string {
  return [`  - path: ${path}`, `    permissions: "${permissions}"`, "    content: |", indent(content, "      ")].join("\n");
}

const SYSCTL = [
  "# Longer accept queues for bursts of new connections. Nothing here touches forwarding: the",
  "# containers use the host's network, so no packet of ours is ever forwarded.",
  "net.core.somaxconn = 4096",
  "",
].join("\n");

// Debian and Ubuntu: unattended-upgrades runs daily once these two are on (its default origins
// are the security archive). The file is harmless on RHEL-like images, which have no apt.
const APT_AUTO_UPGRADES = ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n");

// One command for every image family the schema allows; cloud-init's `packages:` cannot name
// packages per distribution. dnf-automatic's install timer applies security updates only with
// upgrade_type = security.
const SECURITY_UPDATES = [
  "if command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y unattended-upgrades;",
  "elif command -v dnf >/dev/null; then dnf install -y dnf-automatic &&",
  "sed -i 's/^upgrade_type *=.*/upgrade_type = security/' /etc/dnf/automatic.conf &&",
  "systemctl enable --now dnf-automatic-install.timer; fi",
].join(" ");

// Attached stacks' keys (written on deploy, root-only) besides root's own. Only the LB's file
// ever holds a key; each is bound to a forced command that handles that stack's routes only.
const SSHD_DROP_IN = "/etc/ssh/sshd_config.d/50-ingress.conf";
const SSHD_ATTACHED_KEYS = [`AuthorizedKeysFile .ssh/authorized_keys ${paths.ATTACHED_KEYS_FILE}`, ""].join("\n");

// A glob include that matches nothing is not an error to nft, while a missing plain include
// is: before the first deploy there is no release, and the boot must not fail for it.
const FIREWALL_NFT = [
  "#!/usr/sbin/nft -f",
  "# Loaded at boot by ingress-firewall.service; each deploy ships the rules in its release.",
  `include "${paths.CURRENT}/nftables/*.nft"`,
  "",
].join("\n");

// Our own unit rather than the distribution's nftables.service: Debian's /etc/nftables.conf
// starts with `flush ruleset`, which would also wipe podman's tables, and RHEL-like systems
// read another file. No ExecStop: stopping the unit must not open the host.
const FIREWALL_SERVICE = [
  "[Unit]",
  "Description=Host firewall of the ingress (nftables table inet ingress)",
  "DefaultDependencies=no",
  "After=local-fs.target",
  "Wants=network-pre.target",
  "Before=network-pre.target shutdown.target",
  "Conflicts=shutdown.target",
  "",
  "[Service]",
  "Type=oneshot",
  "RemainAfterExit=yes",
  `ExecStart=/usr/sbin/nft -f ${FIREWALL_ENTRY}`,
  `ExecReload=/usr/sbin/nft -f ${FIREWALL_ENTRY}`,
  "",
  "[Install]",
  "WantedBy=sysinit.target",
  "",
].join("\n");

export function renderCloudInit(): string {
  const dirs = [paths.INGRESS_ROOT, `${paths.INGRESS_ROOT}/releases`, paths.ROUTES_DIR, paths.ACME_WEBROOT, paths.QUADLET_DIR];
  return [
    "#cloud-config",
    "# Minimal and stable on purpose: changing this text replaces the server. Configs, units and",
    "# firewall rules arrive over SSH with each deploy, which waits for `cloud-init status --wait`.",
    "package_update: true",
    "packages:",
    "  - podman",
    "  - nftables",
    "write_files:",
    writeFile("/etc/sysctl.d/90-ingress.conf", "0644", SYSCTL),
    writeFile("/etc/apt/apt.conf.d/20auto-upgrades", "0644", APT_AUTO_UPGRADES),
    writeFile(SSHD_DROP_IN, "0644", SSHD_ATTACHED_KEYS),
    writeFile(FIREWALL_ENTRY, "0644", FIREWALL_NFT),
    writeFile(`/etc/systemd/system/${FIREWALL_UNIT}`, "0644", FIREWALL_SERVICE),
    "runcmd:",
    `  - [install, -d, -m, "0755", ${dirs.join(", ")}]`,
    "  # Secret files (stats.env, TLS keys) are written here on deploy, readable by root only.",
    `  - [install, -d, -m, "0700", ${paths.SECRETS_DIR}]`,
    "  - [sysctl, --system]",
    "  - [systemctl, daemon-reload]",
    `  - [systemctl, enable, --now, ${FIREWALL_UNIT}]`,
    "  # sshd reads the drop-in: Debian and Ubuntu call the unit ssh, RHEL-like images sshd.",
    '  - [sh, -c, "systemctl reload ssh || systemctl reload sshd"]',
    "  # Security updates install themselves: unattended-upgrades (Debian, Ubuntu) or dnf-automatic.",
    `  - [sh, -c, ${JSON.stringify(SECURITY_UPDATES)}]`,
    "",
  ].join("\n");
}
