// Quadlet .container units (podman-systemd.unit(5)): podman's systemd generator turns
// /etc/containers/systemd/<name>.container into <name>.service. Every key used here exists in
// podman 4.4, the first release with Quadlet; where 4.4 and later releases read a key
// differently, the unit states both keys so every version ends up with the same container.
// Pure: the same plan gives byte-identical text.
import * as paths from "../topology/paths";
import { ACME_SWITCH_MARKER } from "./acme";
import type { ContainerName, ContainerPlan, HostPlan } from "../topology";

/** The cloud-init unit that loads the host firewall; containers start after it. */
export const FIREWALL_UNIT = "ingress-firewall.service";

const PODMAN = "/usr/bin/podman";

interface Profile {
  readonly description: string;
  /** Capabilities it keeps (each profile's `why` says why it cannot drop them). */
  readonly capabilities: readonly string[];
  readonly why: readonly string[];
  /** Numeric uid:gid; podman 4.4's Quadlet accepts only numbers here. */
  readonly user?: { readonly uid: number; readonly gid: number; readonly why: string };
  /** Writable tmpfs mounts beyond /run, /tmp and /var/tmp. */
  readonly tmpfs: readonly string[];
}

function profileOf(name: ContainerName): Profile {
  switch (name) {
    case "haproxy":
      return {
        description: "HAProxy: TLS passthrough ingress with SNI routing and PROXY v2",
        capabilities: ["CAP_NET_BIND_SERVICE"],
        why: [
          "# The official image runs as user haproxy; -W -db is master-worker in the foreground, so it",
          "# never switches user and needs no capability but binding ports below 1024.",
        ],
        tmpfs: [],
      };
    case "nginx":
      return {
        description: "nginx: TLS sites behind the ingress, PROXY protocol listeners",
        capabilities: ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"],
        why: [
          "# nginx starts as root because the TLS keys (certbot's privkey.pem, secrets/tls) are 0600",
          "# root. Its root master then needs CHOWN for its temp directories and SETGID/SETUID to",
          "# start workers as user nginx: with only NET_BIND_SERVICE, nginx 1.22 stops with",
          '# chown(".../client_temp") failed and setgid(101) failed (checked with setpriv).',
        ],
        // Compiled-in temp paths (client bodies, proxy buffers); the image makes them on a read-only root.
        tmpfs: ["/var/cache/nginx:rw,nosuid,nodev,noexec,mode=0755"],
      };
    case "proxy":
      return {
        description: "Embedded TypeScript SNI proxy: TLS passthrough ingress with PROXY v2",
        capabilities: ["CAP_NET_BIND_SERVICE"],
        why: ["# The proxy runs as the image's unprivileged node user and needs only to bind ports below 1024."],
        user: { uid: 1000, gid: 1000, why: "# uid/gid 1000 is the node user of the official node image." },
        tmpfs: [],
      };
    case "acme":
      return {
        description: "ACME: obtain and renew this server's site certificates (lego), then switch nginx to them",
        capabilities: [],
        why: [
          "# lego runs as the image's root, writing only its own state and the challenge webroot (both",
          "# root's); it binds no port (http-01 answers come from nginx's responder), so it keeps no capability.",
          "# The host's secrets are hidden under an empty tmpfs: podman hands it its env file itself.",
        ],
        tmpfs: [`${paths.SECRETS_DIR}:ro,nosuid,nodev,noexec,mode=0700`],
      };
    default: {
      const never: never = name;
      throw new Error(`no container profile for ${String(never)}`);
    }
  }
}

/** The uid:gid the container runs as, when not the image's own user. */
export function containerUser(name: ContainerName): string | undefined {
  const user = profileOf(name).user;
  return user ? `${user.uid}:${user.gid}` : undefined;
}

/** One argument of a systemd command line (systemd.service(5) "Command lines"). */
export function quoteSystemdArg(arg: string): string {
  // % is a unit specifier and $ a variable to systemd; no command here needs either, so refuse
  // them rather than guess how each podman release escapes them into ExecStart.
  if (/[%$\n\r]/.test(arg)) throw new Error(`container argument ${JSON.stringify(arg)} contains %, $ or a line break`);
  if (arg !== "" && /^[A-Za-z0-9_@+=:,.\/-]+$/.test(arg)) return arg;
  return `"${arg.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * :Z relabels a tree for one container only; a tree two containers of the host mount (nginx
 * and the acme job share /srv/ingress, the webroot, the ACME state) gets the shared :z, or each
 * start of one would take it away from the other.
 */
function volume(mount: ContainerPlan["mounts"][number], host: HostPlan): string {
  const shared = host.containers.filter((c) => c.mounts.some((m) => m.host === mount.host)).length > 1;
  const options = [...(mount.writable ? [] : ["ro"]), ...(host.selinux ? [shared ? "z" : "Z"] : [])];
  return `Volume=${mount.host}:${mount.container}${options.length > 0 ? `:${options.join(",")}` : ""}`;
}

function containerOf(host: HostPlan, name: ContainerName): ContainerPlan {
  const container = host.containers.find((c) => c.name === name);
  if (!container) throw new Error(`host ${host.name} of stack ${host.stack} runs no ${name} container`);
  return container;
}

/** The unit for one of the host's containers, at /etc/containers/systemd/<name>.container. */
export function renderQuadletUnit(host: HostPlan, name: ContainerName): string {
  const c = containerOf(host, name);
  const profile = profileOf(c.name);
  const caps = profile.capabilities;

  const unit = [
    "[Unit]",
    `Description=${profile.description}`,
    "Wants=network-online.target",
    "# The host firewall is up before anything listens; if it failed, nothing listens.",
    `Requires=${FIREWALL_UNIT}`,
    `After=network-online.target ${FIREWALL_UNIT}${c.job ? " nginx.service" : ""}`,
  ];

  const container = [
    "[Container]",
    `ContainerName=${c.name}`,
    "# An official image pinned by tag (optionally @sha256 digest) in the stack config.",
    `Image=${c.image}`,
    "# Host networking: no port publishing, so no DNAT hop and no dependence on ip_forward. That",
    '# hop with forwarding off is what timed out the original setup\'s checks ("Layer4 timeout").',
    "Network=host",
    ...(c.job
      ? ["# The release (its script) read-only; writable: the client's state and the challenge webroot."]
      : ["# Configs are read through /srv/ingress/current, so a release swap plus a reload is seen", "# without a restart; nothing the container reads is writable by it."]),
    ...c.mounts.map((m) => volume(m, host)),
  ];
  if (c.envFile !== undefined) {
    container.push(
      "# Read by podman on the host (podman run --env-file) when the container starts: the",
      `# secrets (${c.job ? "the EAB HMAC key, the DNS token" : "the stats credentials"}) reach the process as variables and never appear in a rendered file.`,
      `EnvironmentFile=${c.envFile}`,
    );
  }
  container.push(
    `Exec=${c.command.map(quoteSystemdArg).join(" ")}`,
    ...profile.why,
    "DropCapability=ALL",
    ...caps.map((cap) => `AddCapability=${cap}`),
    "NoNewPrivileges=true",
  );
  if (profile.user) container.push(profile.user.why, `User=${profile.user.uid}`, `Group=${profile.user.gid}`);
  container.push(
    "# Read-only root with tmpfs on /run, /tmp and /var/tmp. Quadlet 4.4 mounts those tmpfs only",
    "# with VolatileTmp=true next to ReadOnly=true; later releases do so for ReadOnly=true alone.",
    "ReadOnly=true",
    "VolatileTmp=true",
  );
  // PodmanArgs rather than Tmpfs=/LogDriver=: those keys arrived after podman 4.4.
  const podmanArgs = [
    // --entrypoint: Quadlet 4.4 has no Entrypoint= key.
    ...(c.entrypoint !== undefined ? [`--entrypoint=${c.entrypoint}`] : []),
    ...profile.tmpfs.map((t) => `--tmpfs=${t}`),
    // Quadlet 4.4 passes the journal socket as stdout, which a process cannot reopen by path
    // (nginx's access_log /dev/stdout fails with ENXIO); later releases leave podman's default.
    // journald everywhere gives `journalctl -u <unit>` on every release.
    "--log-driver=journald",
  ];
  container.push(`PodmanArgs=${podmanArgs.join(" ")}`);

  const service = c.job ? jobService(c) : daemonService(c);

  // A job is started by its timer, not at boot.
  const install = c.job ? [] : ["[Install]", "WantedBy=multi-user.target"];

  const header = [
    `# ${c.name}.container for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    `# Quadlet (podman >= 4.4) turns it into ${c.name}.service on systemctl daemon-reload.`,
  ];
  return [header, unit, container, service, install].filter((lines) => lines.length > 0).map((lines) => lines.join("\n")).join("\n\n") + "\n";
}

function daemonService(c: ContainerPlan): string[] {
  if (c.reloadSignal === undefined) throw new Error(`container ${c.name} is a daemon without a reload signal`);
  return [
    "[Service]",
    "Restart=always",
    "# The first start pulls the image.",
    "TimeoutStartSec=900",
    `# ${c.reloadSignal} makes ${c.name} re-read its config and keep open connections.`,
    `ExecReload=${PODMAN} kill --signal ${c.reloadSignal} ${c.name}`,
  ];
}

/** Where the release's apply.sh is on the host: the job hands new certificates to it. */
const APPLY_SH = `${paths.CURRENT}/apply.sh`;

function jobService(c: ContainerPlan): string[] {
  // Only when renew.sh left word (a certificate changed, a run failed or recovered); the word stays until apply.sh took it.
  const switchCerts = `test ! -e ${ACME_SWITCH_MARKER} || { /bin/bash ${APPLY_SH} --switch-certs && rm -f ${ACME_SWITCH_MARKER}; }`;
  return [
    "[Service]",
    `# A job: runs to the end each time ${c.job!.timer}.timer (or a deploy) starts it; never restarted.`,
    "Type=oneshot",
    "# The first start pulls the image; an ACME order may wait on a slow CA.",
    "TimeoutStartSec=1800",
    "# A deploy holding apply.sh's lock is not waited for long: the next run, or that deploy, catches up.",
    "Environment=INGRESS_LOCK_TIMEOUT=10",
    "# Whether or not every certificate succeeded: when one changed, apply.sh checks the release with",
    "# nginx and reloads it (--switch-certs; a certificate nginx refuses is not switched to); after a",
    "# failure or a recovery too, so the LB's health check reports the ACME job's state.",
    `ExecStopPost=-/bin/sh -c ${quoteSystemdArg(switchCerts)}`,
  ];
}

/** The container a quadlet FilePlan path names: /etc/containers/systemd/<name>.container. */
export function quadletContainerOf(host: HostPlan, path: string): ContainerName {
  const match = new RegExp(`^${paths.QUADLET_DIR.replace(/\//g, "\\/")}\\/([a-z]+)\\.container$`).exec(path);
  const name = host.containers.find((c) => c.name === match?.[1])?.name;
  if (!name) throw new Error(`host ${host.name}: ${path} names none of its containers`);
  return name;
}
