// Files the program reads from the project besides stack config: the on-host apply script,
// the bundled ts-engine proxy, and where local bundles go. Kept apart so index.ts reads top
// to bottom as config -> plan -> render -> resources.
import { buildSync } from "esbuild";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { RenderOptions } from "../../render/stack";
import type { StackPlan } from "../../topology";

export const PROJECT_ROOT = join(__dirname, "..", "..");

/** Overrides for development and tests: another apply.sh, bundle directory or proxy build. */
export const APPLY_SCRIPT_ENV = "HETZNER_INGRESS_APPLY_SH";
export const BUNDLE_DIR_ENV = "HETZNER_INGRESS_BUNDLE_DIR";
export const PROXY_SCRIPT_ENV = "HETZNER_INGRESS_PROXY_JS";

export function bundleRoot(): string {
  return process.env[BUNDLE_DIR_ENV] ?? join(PROJECT_ROOT, ".pulumi-bundles");
}

export function readApplyScript(): string {
  const file = process.env[APPLY_SCRIPT_ENV] ?? join(PROJECT_ROOT, "files", "apply.sh");
  if (!existsSync(file)) throw new Error(`the on-host apply script ${file} is missing; every deploy ships it`);
  return readFileSync(file, "utf8");
}

/**
 * The ts engine runs the proxy bundle from the release. It is built here from this checkout's
 * proxy/ (esbuild, in memory, deterministic, so the bundle hash only moves when the code does),
 * never taken from a dist/ that may be stale; PROXY_SCRIPT_ENV names a prebuilt file instead.
 */
export function readProxyScript(plan: StackPlan): string | undefined {
  if (!plan.hosts.some((h) => h.ingress?.engine === "ts")) return undefined;
  const file = process.env[PROXY_SCRIPT_ENV];
  if (file !== undefined) {
    if (!existsSync(file)) throw new Error(`${PROXY_SCRIPT_ENV}=${file}: no such file`);
    return readFileSync(file, "utf8");
  }
  return buildScript(join(PROJECT_ROOT, "proxy", "main.ts"));
}

/**
 * An LB that lets stacks attach renders their routes data itself, with this checkout's
 * renderer (files/render-routes.ts), built like the proxy.
 */
export function readRoutesRenderer(plan: StackPlan): string | undefined {
  if (!plan.hosts.some((h) => (h.ingress?.attachedStacks.length ?? 0) > 0)) return undefined;
  return buildScript(join(PROJECT_ROOT, "files", "render-routes.ts"));
}

/** The programs a stack's hosts run from their releases, as renderStack takes them. */
export function programBundles(plan: StackPlan): RenderOptions {
  const proxyScript = readProxyScript(plan);
  const routesRenderer = readRoutesRenderer(plan);
  return { ...(proxyScript === undefined ? {} : { proxyScript }), ...(routesRenderer === undefined ? {} : { routesRenderer }) };
}

/** One self-contained node script from a TypeScript entry point: in memory and deterministic. */
export function buildScript(entry: string): string {
  // Paths in the output (esbuild's module comments) relative to this checkout, through a
  // symlinked node_modules as well: the same code gives the same bytes wherever it is checked out.
  const out = buildSync({ entryPoints: [entry], bundle: true, platform: "node", target: "node20", write: false, logLevel: "error", absWorkingDir: PROJECT_ROOT, preserveSymlinks: true });
  const bundle = out.outputFiles[0];
  if (!bundle) throw new Error(`esbuild produced no bundle of ${entry}`);
  return asciiOnly(bundle.text);
}

/**
 * esbuild escapes non-ASCII in code but copies comments as they are, and one such character
 * (a dependency's comment) makes V8 hold the whole source as a two-byte string: twice the
 * memory in every isolate that loads the bundle (the primary and each worker thread). Escaped
 * only after a `//` on its line: in a line comment, or in a string holding a URL, where the
 * escape means the same character. Anywhere else (a regex or a raw template could change
 * meaning) the build stops and says where.
 */
function asciiOnly(text: string): string {
  return text.replace(/[^\x00-\x7f]/gu, (c, offset: number) => {
    const lineStart = text.lastIndexOf("\n", offset) + 1;
    const comment = text.slice(lineStart, offset).indexOf("//");
    if (comment < 0) {
      const line = text.slice(0, offset).split("\n").length;
      throw new Error(`the bundle has a non-ASCII character outside a line comment (line ${line}: ${JSON.stringify(text.slice(lineStart, offset + 20))}); it cannot be escaped safely`);
    }
    return `\\u{${c.codePointAt(0)!.toString(16)}}`;
  });
}
