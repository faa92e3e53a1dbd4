// npm run render -- --stack <name> --diff <git-ref> [--format text|md]
//
// What a `pulumi up` of this stack would push, as a reviewer reads it: the stack rendered at
// <git-ref> (that commit's code and config, taken with `git archive`, never touching the work
// tree) and in the work tree, compared host by host and file by file. Per host: its bundle hash
// old -> new (the hash the program redeploys on), and a unified diff of every file that changed.
// Built scripts (the proxy, the routes renderer) are named, not printed. No secret is rendered.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createTwoFilesPatch } from "diff";
import { bundleHash, type RenderedFile } from "../render";

/** One host's rendered tree as the deploy hashes it: on-host path -> file. */
export type HostTree = ReadonlyMap<string, RenderedFile>;

export interface HostChange {
  readonly host: string;
  readonly before?: string;
  readonly after?: string;
  readonly files: readonly { readonly path: string; readonly patch: string }[];
}

const BUILT = /\/(proxy\.js|render-routes\.js)$/;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Reads `npm run render` output: each host's bundle (without MANIFEST and the root apply.sh copy) and its user data. */
export function readRenderedTree(out: string): Map<string, HostTree> {
  const hosts = new Map<string, HostTree>();
  for (const entry of readdirSync(out, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(out, entry.name);
    const files = new Map<string, RenderedFile>();
    for (const file of walk(dir)) {
      const rel = relative(dir, file);
      if (rel === "MANIFEST" || rel === "apply.sh") continue;
      files.set(`/${rel}`, { path: `/${rel}`, mode: statSync(file).mode & 0o7777, content: readFileSync(file, "utf8") });
    }
    const userData = join(out, `${entry.name}.user-data.yaml`);
    if (existsSync(userData)) files.set("user-data", { path: "user-data", mode: 0o644, content: readFileSync(userData, "utf8") });
    hosts.set(entry.name, files);
  }
  return hosts;
}

function hashOf(tree: HostTree | undefined): string | undefined {
  return tree ? bundleHash([...tree.values()].filter((f) => f.path !== "user-data")) : undefined;
}

/** Every host whose files differ, with a unified diff per changed file. Pure. */
export function diffTrees(before: ReadonlyMap<string, HostTree>, after: ReadonlyMap<string, HostTree>): HostChange[] {
  const hosts = [...new Set([...before.keys(), ...after.keys()])].sort();
  const changes: HostChange[] = [];
  for (const host of hosts) {
    const [a, b] = [before.get(host), after.get(host)];
    const paths = [...new Set([...(a?.keys() ?? []), ...(b?.keys() ?? [])])].sort();
    const files: { path: string; patch: string }[] = [];
    for (const path of paths) {
      const [fa, fb] = [a?.get(path), b?.get(path)];
      if (fa && fb && fa.content === fb.content && fa.mode === fb.mode) continue;
      if (BUILT.test(path)) {
        files.push({ path, patch: `${fa ? "" : "added "}${fb ? "" : "removed "}built script ${path} changed (${fa?.content.length ?? 0} -> ${fb?.content.length ?? 0} bytes)\n` });
        continue;
      }
      const mode = fa && fb && fa.mode !== fb.mode ? `mode ${fa.mode.toString(8)} -> ${fb.mode.toString(8)}\n` : "";
      const patch = createTwoFilesPatch(fa ? `a${path}` : "/dev/null", fb ? `b${path}` : "/dev/null", fa?.content ?? "", fb?.content ?? "", undefined, undefined, { context: 3 });
      // jsdiff's first line is an "Index"-less "===" banner; keep from the --- line on.
      files.push({ path, patch: mode + patch.slice(patch.indexOf("---")) });
    }
    if (files.length > 0) {
      const before_ = hashOf(a);
      const after_ = hashOf(b);
      changes.push({ host, ...(before_ === undefined ? {} : { before: before_ }), ...(after_ === undefined ? {} : { after: after_ }), files });
    }
  }
  return changes;
}

const short = (hash: string | undefined) => (hash === undefined ? "(none)" : hash.slice(0, 12));

function pushed(c: HostChange): string {
  if (c.host.startsWith("_routes-for-")) return `routes pushed to the LB of ${c.host.slice("_routes-for-".length)}`;
  if (c.after === undefined) return "host removed";
  if (c.before === undefined) return "new host";
  return c.before === c.after ? "user data only (not pushed: servers ignore user data changes)" : "pushed by `pulumi up`";
}

export function formatText(stack: string, ref: string, changes: readonly HostChange[]): string {
  // Text is for a terminal: every diff, in full.
  if (changes.length === 0) return `stack ${stack}: no host changes against ${ref}\n`;
  const out = [`stack ${stack} against ${ref}: ${changes.length} host(s) change`];
  for (const c of changes) {
    out.push("", `== ${c.host}: bundle ${short(c.before)} -> ${short(c.after)}, ${pushed(c)}`);
    for (const f of c.files) out.push(f.patch.trimEnd());
  }
  return out.join("\n") + "\n";
}

/** GitHub refuses a comment over 65536 characters; the table always fits, the diffs as far as they go. */
export const COMMENT_LIMIT = 60_000;

export function formatMarkdown(stack: string, ref: string, changes: readonly HostChange[], limit = COMMENT_LIMIT): string {
  if (changes.length === 0) return `### Rendered files: stack \`${stack}\`\n\nNo host changes against \`${ref}\`.\n`;
  const out = [
    `### Rendered files: stack \`${stack}\``,
    "",
    `Against \`${ref}\`. ${changes.length} host(s) change:`,
    "",
    "| host | bundle | |",
    "|---|---|---|",
    ...changes.map((c) => `| \`${c.host}\` | \`${short(c.before)}\` -> \`${short(c.after)}\` | ${pushed(c)} |`),
  ];
  // The same change on several hosts (apply.sh, say) is shown once.
  const shown = new Map<string, string>();
  let length = out.join("\n").length;
  const left: string[] = [];
  for (const c of changes) {
    const body = c.files.map((f) => {
      const first = shown.get(f.patch);
      if (first !== undefined) return `# ${f.path}: the same change as on ${first}`;
      shown.set(f.patch, c.host);
      return f.patch.trimEnd();
    });
    const section = ["", `<details><summary><code>${c.host}</code>: ${c.files.length} file(s)</summary>`, "", "```diff", ...body, "```", "", "</details>"].join("\n");
    if (length + section.length > limit) {
      left.push(c.host);
      continue;
    }
    out.push(section);
    length += section.length;
  }
  if (left.length > 0) out.push("", `Diffs of ${left.map((h) => `\`${h}\``).join(", ")} left out: the comment would be too long. \`npm run render -- --stack ${stack} --diff ${ref}\` prints them.`);
  return out.join("\n") + "\n";
}

/** Renders `stack` with the checkout in `dir` into `out`, as `npm run render` does there. */
function renderIn(dir: string, stack: string, out: string, config: string | undefined): void {
  const tsx = join(__dirname, "..", "node_modules", "tsx", "dist", "cli.mjs");
  execFileSync(process.execPath, [tsx, join(dir, "scripts", "render.ts"), "--stack", stack, "--out", out, ...(config ? ["--config", join(dir, config)] : [])], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** The whole comparison: renders `ref` from git and the work tree of `repo`, and diffs them. */
export function renderDiff(o: { readonly repo: string; readonly stack: string; readonly ref: string; readonly config?: string | undefined }): HostChange[] {
  const tmp = mkdtempSync(join(tmpdir(), "render-diff-"));
  try {
    const base = join(tmp, "base");
    mkdirSync(base);
    execFileSync("bash", ["-c", 'set -o pipefail; git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', "bash", o.repo, o.ref, base], { stdio: ["ignore", "ignore", "pipe"] });
    // The same dependencies: a ref's own package-lock is not installed here.
    symlinkSync(join(o.repo, "node_modules"), join(base, "node_modules"));
    // A stack that did not exist at the ref: every host is new.
    const before = existsSync(join(base, o.config ?? `Pulumi.${o.stack}.yaml`)) ? (renderIn(base, o.stack, join(tmp, "a"), o.config), readRenderedTree(join(tmp, "a"))) : new Map<string, HostTree>();
    renderIn(o.repo, o.stack, join(tmp, "b"), o.config);
    return diffTrees(before, readRenderedTree(join(tmp, "b")));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
