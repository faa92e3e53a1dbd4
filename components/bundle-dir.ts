// Writes what CopyToRemote uploads, in the layouts files/apply.sh reads (docs/apply.md):
//
//   host bundle  <hash>/apply.sh             the script the deploy command runs
//                <hash>/MANIFEST             "<path> <mode> <sha256>" per file, apply.sh included
//                <hash>/<on-host path>...    srv/ingress/current/..., etc/containers/systemd/...
//   routes       <hash>/<stack>.cfg|.map|.json   flat: what `apply.sh --routes <dir>` installs
//
// Directories are named after renderer's bundleHash and written once: same content, same
// bytes, same name. Older hashes of the same host are removed.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { bundleHash, modeText, type RenderedFile, type RenderedHost } from "../render/bundle";
import { APPLY_SCRIPT, INSTALLED_APPLY } from "./deploy-commands";

export const MANIFEST_FILE = "MANIFEST";

export interface LocalBundle {
  readonly host: string;
  readonly hash: string;
  readonly localDir: string;
}

function byPath(a: { readonly path: string }, b: { readonly path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * The host's files plus apply.sh inside the release (/srv/ingress/current/apply.sh), which
 * later route changes on an LB run. It is part of the hash: a new apply.sh redeploys.
 */
export function withApplyScript(rendered: RenderedHost, applyScript: string): RenderedHost {
  const files = [...rendered.files.filter((f) => f.path !== INSTALLED_APPLY), { path: INSTALLED_APPLY, mode: 0o755, content: applyScript }];
  return { ...rendered, files: files.sort(byPath) };
}

/** A file of the upload directory: path relative to it. */
interface UploadFile {
  readonly path: string;
  readonly mode: number;
  readonly content: string;
}

/** On-host absolute paths become paths inside the bundle; apply.sh sits at its root too. */
export function hostBundleFiles(rendered: RenderedHost): UploadFile[] {
  const files: UploadFile[] = rendered.files.map((f) => {
    if (!f.path.startsWith("/") || f.path.split("/").some((part) => part === ".." || part === ".")) throw new Error(`${rendered.host}: bad on-host path ${f.path}`);
    return { path: f.path.slice(1), mode: f.mode, content: f.content };
  });
  const script = rendered.files.find((f) => f.path === INSTALLED_APPLY);
  if (!script) throw new Error(`${rendered.host}: the bundle carries no ${INSTALLED_APPLY} (withApplyScript)`);
  files.push({ path: APPLY_SCRIPT, mode: 0o755, content: script.content });
  files.sort(byPath);
  const manifest = files.map((f) => `${f.path} ${modeText(f.mode)} ${sha256(f.content)}\n`).join("");
  return [...files, { path: MANIFEST_FILE, mode: 0o644, content: manifest }];
}

/** An attached stack's route files, flat: apply.sh accepts only <stack>.cfg, .map and .json there. */
export function routesBundleFiles(files: readonly RenderedFile[]): UploadFile[] {
  const flat = files.map((f) => ({ path: basename(f.path), mode: 0o644, content: f.content }));
  if (new Set(flat.map((f) => f.path)).size !== flat.length) throw new Error("two route files share a name");
  return flat.sort(byPath);
}

export function writeHostBundle(root: string, stack: string, rendered: RenderedHost): LocalBundle {
  return writeUpload(root, stack, rendered.host, bundleHash(rendered.files), hostBundleFiles(rendered));
}

export function writeRoutesBundle(root: string, stack: string, name: string, files: readonly RenderedFile[]): LocalBundle {
  return writeUpload(root, stack, name, bundleHash(files), routesBundleFiles(files));
}

/** Writes `<root>/<stack>/<name>/<hash>/` unless it is already complete. */
function writeUpload(root: string, stack: string, name: string, hash: string, files: readonly UploadFile[]): LocalBundle {
  const hostDir = join(root, stack, name);
  const dir = join(hostDir, hash);
  if (!isComplete(dir, files)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    for (const file of files) {
      const target = join(tmp, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content);
      chmodSync(target, file.mode);
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  for (const entry of readdirSync(hostDir)) {
    if (entry !== hash) rmSync(join(hostDir, entry), { recursive: true, force: true });
  }
  return { host: name, hash, localDir: dir };
}

/** Complete when every file is there with its content and nothing else is (a crash leaves a .tmp, not this). */
function isComplete(dir: string, files: readonly UploadFile[]): boolean {
  if (!existsSync(dir)) return false;
  try {
    const present = listFiles(dir);
    if (present.length !== files.length) return false;
    return files.every((f) => readFileSync(join(dir, f.path), "utf8") === f.content);
  } catch {
    return false;
  }
}

function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}
