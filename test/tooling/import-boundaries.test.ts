// The one-way pipeline, held by its imports: pure code (contract/, topology/, render/) imports no
// I/O and no Pulumi; the renderer and the proxy meet only in contract/; nothing pure reaches
// into components/ or the proxy's runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = join(__dirname, "..", "..");

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every import of a file: project imports as repo paths ("topology/ip", "topology"), others as written. */
function importsOf(file: string): { readonly path: string; readonly project: boolean }[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => {
    const spec = m[1]!;
    return spec.startsWith(".") ? { path: relative(ROOT, normalize(join(ROOT, dirname(file), spec))), project: true } : { path: spec, project: false };
  });
}

const PURE_EXTERNAL = new Set(["zod", "node:crypto", "node:net"]);

test("contract/, topology/ and render/ are pure: no I/O module, no Pulumi, no components/ or proxy runtime", () => {
  const bad: string[] = [];
  for (const dir of ["contract", "topology", "render"]) {
    for (const file of sources(dir)) {
      for (const imp of importsOf(file)) {
        if (imp.project ? /^(components|proxy|sandbox|lab|local|scripts|files|test|index)(\/|$)/.test(imp.path) : !PURE_EXTERNAL.has(imp.path)) bad.push(`${file} imports ${imp.path}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test("the renderer and the proxy meet only in contract/: the proxy imports neither topology/ nor render/, and contract/ only itself", () => {
  const bad: string[] = [];
  for (const file of sources("proxy")) for (const imp of importsOf(file)) if (imp.project && /^(topology|render|components)(\/|$)/.test(imp.path)) bad.push(`${file} imports ${imp.path}`);
  for (const file of sources("contract")) for (const imp of importsOf(file)) if (imp.project ? !imp.path.startsWith("contract/") : imp.path !== "zod") bad.push(`${file} imports ${imp.path}`);
  assert.deepEqual(bad, []);
});

test("the program never depends on the local engine, and the local cloud's readers and rulesets are pure", () => {
  const bad: string[] = [];
  for (const dir of ["components", "contract", "topology", "render", "proxy", "files"]) {
    for (const file of sources(dir)) for (const imp of importsOf(file)) if (imp.project && /^local(\/|$)/.test(imp.path)) bad.push(`${file} imports ${imp.path}`);
  }
  for (const file of ["index.ts"]) for (const imp of importsOf(file)) if (imp.project && /^local(\/|$)/.test(imp.path)) bad.push(`${file} imports ${imp.path}`);
  const pure = ["local/machine/unit-files.ts", "local/cloud/firewall-ruleset.ts", "local/engine/diff.ts", "local/engine/provider-schema.ts", "local/engine/secret-values.ts"];
  for (const file of pure) {
    for (const imp of importsOf(file)) if (imp.project ? !pure.includes(`${imp.path}.ts`) : !PURE_EXTERNAL.has(imp.path)) bad.push(`${file} imports ${imp.path}`);
  }
  assert.deepEqual(bad, []);
});

test("the namespace lab knows nothing of the ingress: lab/ imports only itself", () => {
  const bad: string[] = [];
  for (const file of sources("lab")) for (const imp of importsOf(file)) if (imp.project && !imp.path.startsWith("lab/") && imp.path !== "lab") bad.push(`${file} imports ${imp.path}`);
  assert.deepEqual(bad, []);
});
