// One sandboxed host's filesystem: a directory that stands for its "/", holding the rendered
// files where the deploy puts them (/srv/ingress/releases/<id>, `current` -> that release),
// its secrets and certificates. Daemons see it through bind mounts in a private mount
// namespace, so rendered configs run unchanged with their /srv/ingress/current/... paths.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { RenderedFile } from "../render";
import * as paths from "../topology/paths";

/** The release every sandboxed host runs; `current` points at it as on a real host. */
export const SANDBOX_RELEASE = "sandbox";

export interface BindMount {
  /** Directory inside the host root, as an absolute path on the real filesystem. */
  readonly source: string;
  /** Path the daemon sees. */
  readonly target: string;
}

export class HostRoot {
  constructor(
    readonly host: string,
    /** Real directory standing for the host's "/". */
    readonly dir: string,
  ) {
    mkdirSync(join(dir, "tmp"), { recursive: true, mode: 0o1777 });
  }

  /** The real path of an on-host path, e.g. /srv/ingress/secrets/stats.env. */
  path(onHost: string): string {
    if (!onHost.startsWith("/") || onHost.split("/").includes("..")) throw new Error(`not an absolute on-host path: ${onHost}`);
    return join(this.dir, onHost);
  }

  write(onHost: string, content: string, mode = 0o644): string {
    const p = this.path(onHost);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
    return p;
  }

  /**
   * Writes a rendered bundle: files under /srv/ingress/current go into the release directory
   * and `current` becomes a relative symlink to it; others (Quadlet units) go to their path.
   */
  writeRelease(files: readonly RenderedFile[]): void {
    const release = `${paths.INGRESS_ROOT}/releases/${SANDBOX_RELEASE}`;
    for (const f of files) {
      const onHost = f.path.startsWith(`${paths.CURRENT}/`) ? release + f.path.slice(paths.CURRENT.length) : f.path;
      this.write(onHost, f.content, f.mode);
    }
    mkdirSync(this.path(release), { recursive: true });
    symlinkSync(`releases/${SANDBOX_RELEASE}`, this.path(paths.CURRENT));
  }

  /**
   * Binds for a container's mounts, plus a private /tmp (the container's is a tmpfs) unless
   * `privateTmp` is false: a private /tmp also hides every binary under the real /tmp, such
   * as the Node of a checkout there, so a process that writes nothing to /tmp goes without.
   */
  binds(mounts: readonly { readonly host: string; readonly container: string }[], options: { readonly privateTmp?: boolean } = {}): BindMount[] {
    const list = mounts.map((m) => {
      mkdirSync(this.path(m.host), { recursive: true });
      return { source: this.path(m.host), target: m.container };
    });
    // Last: the sources above live under the real /tmp.
    if (options.privateTmp !== false) list.push({ source: join(this.dir, "tmp"), target: "/tmp" });
    return list;
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * argv that runs `argv` in a mount namespace of its own with `binds` in place. Nothing
 * propagates back: `unshare --propagation private`, and the namespace ends with the process.
 * `unshare` and `sh` exec in place, so the pid is the daemon's own.
 */
export function withBindMounts(binds: readonly BindMount[], argv: readonly string[]): string[] {
  const mounts = binds.map((b) => `mount --bind ${shellQuote(b.source)} ${shellQuote(b.target)}`);
  // cd / first: the private /tmp hides a working directory under /tmp (a checkout there, as in
  // CI), and a daemon that tries to return to it fails (haproxy's default-path does).
  const script = [...mounts, "cd /", 'exec "$@"'].join(" && ");
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", ...argv];
}

/** Mount targets the root filesystem must have for `binds`. */
export function mountTargets(binds: readonly BindMount[]): string[] {
  return [...new Set(binds.map((b) => b.target))];
}
