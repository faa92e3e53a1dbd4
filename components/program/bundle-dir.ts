// Writes what CopyToRemote uploads, in the layout of render/host-bundle.ts, one directory per hash.
//
// Directories are named after renderer's bundleHash and written once: same content, same
// bytes, same name. Older hashes of the same host are removed.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { bundleHash, type RenderedHost } from "../../render/stack";
import { hostBundleFiles, type UploadFile } from "../../render/host-bundle";

export { hostBundleFiles, MANIFEST_FILE, withApplyScript } from "../../render/host-bundle";

export interface LocalBundle {
  readonly host: string;
  readonly hash: string;
  readonly localDir: string;
}

export function writeHostBundle(root: string, stack: string, rendered: RenderedHost): LocalBundle {
  return writeUpload(root, stack, rendered.host, bundleHash(rendered.files), hostBundleFiles(rendered));
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
