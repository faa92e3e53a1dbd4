// Directories on the root filesystem that a test's private mount namespaces bind over
// (/srv/ingress, /etc/letsencrypt, /var/www/acme): a bind mount needs an existing target.
// Those a test had to create are listed in a registry under /run, so that whichever run ends
// last removes them, and no run removes one while another live run may bind over it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { listNetns } from "../../../lab/sandbox";
import { isLive } from "../../../lab/procfs";

/** Where the registry of created mount points lives. */
const RUN_DIR = "/run/hetzner-ingress-test-mounts";
const REGISTRY = join(RUN_DIR, "mount-points.json");

/** Namespace prefix of the runs that bind over them. */
export const MOUNTING_PREFIX = "ingsb";

interface Registry {
  /** Directories a sandbox run created, parents before children. */
  readonly created: string[];
}

function readRegistry(): Registry {
  try {
    const parsed = JSON.parse(readFileSync(REGISTRY, "utf8")) as Partial<Registry>;
    return { created: Array.isArray(parsed.created) ? parsed.created.filter((d): d is string => typeof d === "string") : [] };
  } catch {
    return { created: [] };
  }
}

function writeRegistry(r: Registry): void {
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(REGISTRY, JSON.stringify(r, null, 2) + "\n", { mode: 0o600 });
}

/** Creates each directory (and missing parents) that does not exist yet, recording what it made. */
export function ensureMountPoints(dirs: readonly string[]): string[] {
  const registry = readRegistry();
  const made: string[] = [];
  for (const dir of dirs) {
    if (!dir.startsWith("/") || dir.split("/").includes("..")) throw new Error(`mount point must be an absolute path: ${dir}`);
    const missing: string[] = [];
    for (let d = dir; !existsSync(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      mkdirSync(d, { mode: 0o755 });
      made.push(d);
      if (!registry.created.includes(d)) registry.created.push(d);
    }
  }
  if (made.length > 0) writeRegistry(registry);
  return made;
}

/** Live runs other than the calling process, by owner pid. */
export function otherLiveRuns(prefix = MOUNTING_PREFIX): number[] {
  const owned = new RegExp(`^${prefix}-([0-9a-z]+)-[0-9a-f]{4}-`);
  const owners = new Set<number>();
  for (const name of listNetns()) {
    const m = owned.exec(name);
    if (m === null) continue;
    const pid = parseInt(m[1] ?? "", 36);
    if (pid !== process.pid && isLive(pid)) owners.add(pid);
  }
  return [...owners];
}

/**
 * Removes the registered mount points (children first, only while empty) unless another run
 * still lives, and the run dir itself once nothing is left in it. Synchronous: it also runs
 * from the exit hook.
 */
export function releaseMountPoints(prefix = MOUNTING_PREFIX): string[] {
  if (otherLiveRuns(prefix).length > 0) return [];
  const registry = readRegistry();
  const removed: string[] = [];
  const kept: string[] = [];
  for (const d of [...registry.created].sort((a, b) => b.length - a.length)) {
    try {
      if (existsSync(d)) rmdirSync(d);
      removed.push(d);
    } catch {
      kept.push(d); // not empty: someone else put something there, so it is not ours to remove
    }
  }
  if (kept.length > 0) writeRegistry({ created: kept.reverse() });
  else rmSync(REGISTRY, { force: true });
  removeRunDirIfEmpty();
  return removed;
}

export function removeRunDirIfEmpty(): void {
  try {
    if (readdirSync(RUN_DIR).length === 0) rmdirSync(RUN_DIR);
  } catch {
    // absent already
  }
}

/** Registered mount points that still exist (a check for tests). */
export function registeredMountPoints(): string[] {
  return readRegistry().created.filter((d) => existsSync(d));
}
