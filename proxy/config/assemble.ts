/**
 * proxy.json plus every routes.d/<stack>.json, joined into the one config the
 * engine runs: the counterpart of HAProxy's routes.d/*.cfg + routes.map. Pure:
 * the caller reads the files (config/load.ts).
 *
 * Every error line starts with the file it is about, then the field inside
 * that file (`.../routes.d/demo.json: routes[1].host: ...`), also for checks
 * that only the merged config can make. A hostname or backend name claimed by
 * two files is refused naming both: a silent override would send one stack's
 * users to another stack's servers.
 */
import { basename } from "node:path";
import { z } from "zod";
import { hostPatternKey, parseHostPattern } from "../../contract/hostname";
import { ProxyConfig, proxyConfigSchema, ProxyRoutesFile, proxyRoutesFileSchema } from "../../contract/proxy-config";
import { formatPath } from "./validate";

export interface SourceFile {
  /** As the operator knows it; error lines start with it. */
  readonly path: string;
  readonly text: string;
}

export type AssembleResult =
  | { readonly ok: true; readonly config: ProxyConfig; readonly fragments: readonly ProxyRoutesFile[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Where an entry of the merged routes/backends came from, to name it in errors. */
interface Origin {
  readonly path: string;
  readonly index: number;
  /** `stack "demo" (demo.json)`, or the config file for its own routes. */
  readonly owner: string;
}

function parseJson(file: SourceFile, errors: string[]): unknown {
  try {
    return JSON.parse(file.text);
  } catch (error) {
    errors.push(`${file.path}: (root): not valid JSON: ${(error as Error).message}`);
    return undefined;
  }
}

function issuesOf(path: string, error: z.ZodError): string[] {
  return error.issues.map((issue) => `${path}: ${formatPath(issue.path)}: ${issue.message}`);
}

function parseFragment(file: SourceFile, errors: string[]): ProxyRoutesFile | null {
  const json = parseJson(file, errors);
  if (json === undefined) return null;
  const result = proxyRoutesFileSchema.safeParse(json);
  if (!result.success) {
    errors.push(...issuesOf(file.path, result.error));
    return null;
  }
  // The on-host apply adds and removes a stack's routes by file name; a file speaking for
  // another stack would survive that stack's removal.
  const expected = basename(file.path).replace(/\.json$/, "");
  if (result.data.stack !== expected) {
    errors.push(`${file.path}: stack: is "${result.data.stack}", but the file is named ${basename(file.path)}; a stack's routes live in <stack>.json`);
    return null;
  }
  return result.data;
}

/**
 * `base` is proxy.json; `fragments` are the routes.d files in the order they are merged
 * (the caller sorts them by name, so the merged config does not depend on directory order).
 */
export function assembleProxyConfig(base: SourceFile, fragments: readonly SourceFile[]): AssembleResult {
  const errors: string[] = [];
  const baseJson = parseJson(base, errors);
  let baseConfig: ProxyConfig | null = null;
  if (baseJson !== undefined) {
    const result = proxyConfigSchema.safeParse(baseJson);
    if (result.success) baseConfig = result.data;
    else errors.push(...issuesOf(base.path, result.error));
  }
  const parsed = fragments.map((file) => ({ file, routes: parseFragment(file, errors) }));
  if (baseConfig === null || errors.length > 0) return { ok: false, errors };

  const routes: ProxyConfig["routes"] = [...baseConfig.routes];
  const backends: ProxyConfig["backends"] = [...baseConfig.backends];
  const routeOrigins: Origin[] = baseConfig.routes.map((_, index) => ({ path: base.path, index, owner: base.path }));
  const backendOrigins: Origin[] = baseConfig.backends.map((_, index) => ({ path: base.path, index, owner: base.path }));
  const hostOwners = new Map<string, string>();
  const backendOwners = new Map<string, string>();
  baseConfig.routes.forEach((r) => hostOwners.set(hostKey(r.host), base.path));
  baseConfig.backends.forEach((b) => backendOwners.set(b.name, base.path));

  const loaded: ProxyRoutesFile[] = [];
  for (const { file, routes: fragment } of parsed) {
    if (fragment === null) continue;
    loaded.push(fragment);
    const owner = `stack "${fragment.stack}" (${basename(file.path)})`;
    fragment.backends.forEach((backend, index) => {
      const earlier = backendOwners.get(backend.name);
      if (earlier !== undefined) errors.push(`${file.path}: backends[${index}].name: backend "${backend.name}" is defined by ${earlier} and ${owner}`);
      else backendOwners.set(backend.name, owner);
      backends.push(backend);
      backendOrigins.push({ path: file.path, index, owner });
    });
    const ownHosts = new Set<string>();
    fragment.routes.forEach((route, index) => {
      const key = hostKey(route.host);
      const earlier = hostOwners.get(key);
      // Within one file the schema's per-listener rule applies; across files a name has one owner.
      if (earlier !== undefined && !ownHosts.has(key)) {
        errors.push(`${file.path}: routes[${index}].host: host "${key}" is claimed by ${earlier} and ${owner}; remove it from one of them`);
      } else {
        hostOwners.set(key, owner);
        ownHosts.add(key);
      }
      routes.push(route);
      routeOrigins.push({ path: file.path, index, owner });
    });
  }
  if (errors.length > 0) return { ok: false, errors };

  // The cross-field rules (listeners a route names, hosts per listener) need the whole config.
  const merged = proxyConfigSchema.safeParse({ ...baseConfig, routes, backends });
  if (!merged.success) {
    return {
      ok: false,
      errors: merged.error.issues.map((issue) => {
        const [section, index, ...rest] = issue.path;
        const origins = section === "routes" ? routeOrigins : section === "backends" ? backendOrigins : null;
        const origin = origins !== null && typeof index === "number" ? origins[index] : undefined;
        if (origin === undefined) return `${base.path}: ${formatPath(issue.path)}: ${issue.message}`;
        return `${origin.path}: ${formatPath([section!, origin.index, ...rest])}: ${issue.message}`;
      }),
    };
  }
  return { ok: true, config: merged.data, fragments: loaded };
}

function hostKey(host: string): string {
  const pattern = parseHostPattern(host);
  // Validated by the schema before this is called.
  if (pattern === null) throw new Error(`unreachable: unvalidated route host ${host}`);
  return hostPatternKey(pattern);
}
