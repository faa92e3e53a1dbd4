// Hetzner Cloud OS images and what their podman can do. Quadlet (systemd units generated
// from .container files) arrived in podman 4.4; older podman cannot run the rendered units.

export interface ImageFacts {
  readonly podman: string;
  readonly quadlet: boolean;
  /** RHEL-like hosts enforce SELinux, so bind mounts need the :Z relabel. */
  readonly selinux: boolean;
}

export const KNOWN_IMAGES: Readonly<Record<string, ImageFacts>> = {
  "ubuntu-22.04": { podman: "3.4", quadlet: false, selinux: false },
  "ubuntu-24.04": { podman: "4.9", quadlet: true, selinux: false },
  "debian-12": { podman: "4.3", quadlet: false, selinux: false },
  "debian-13": { podman: "5.4", quadlet: true, selinux: false },
  "fedora-41": { podman: "5.2", quadlet: true, selinux: true },
  "fedora-42": { podman: "5.4", quadlet: true, selinux: true },
  "centos-stream-9": { podman: "5.2", quadlet: true, selinux: true },
  "centos-stream-10": { podman: "5.2", quadlet: true, selinux: true },
  "rocky-9": { podman: "5.2", quadlet: true, selinux: true },
  "rocky-10": { podman: "5.4", quadlet: true, selinux: true },
  "alma-9": { podman: "5.2", quadlet: true, selinux: true },
  "alma-10": { podman: "5.4", quadlet: true, selinux: true },
};

export function quadletImages(): string[] {
  return Object.entries(KNOWN_IMAGES)
    .filter(([, facts]) => facts.quadlet)
    .map(([name]) => name);
}
