// The layout that is copied to a host and that files/apply.sh reads (docs/apply.md):
//
//   host bundle  apply.sh                   the script the deploy runs
//                MANIFEST                   "<path> <mode> <sha256>" per file, apply.sh included
//                <on-host path>...          srv/ingress/current/..., etc/containers/systemd/...
//   routes       <stack>.cfg|.map|.json     flat: what `apply.sh --routes <dir>` installs
//
// `npm run render` writes exactly this, and the Pulumi deploy uploads exactly this. Pure.
import { createHash } from "node:crypto";
import { INGRESS_ROOT } from "../topology/paths";
import { modeText, type RenderedHost } from "./stack";

export const APPLY_SCRIPT = "apply.sh";
/** The copy of apply.sh that each release carries; route changes on an LB run it. */
export const INSTALLED_APPLY = `${INGRESS_ROOT}/current/${APPLY_SCRIPT}`;
export const MANIFEST_FILE = "MANIFEST";

/** A file of an upload directory: path relative to it. */
export interface UploadFile {
  readonly path: string;
  readonly mode: number;
  readonly content: string;
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

