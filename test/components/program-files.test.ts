import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import { PROXY_SCRIPT_ENV, readProxyScript } from "../../components/program/program-files";

test("a ts-engine stack ships this checkout's proxy, bundled in memory and byte-identical each time", () => {
  delete process.env[PROXY_SCRIPT_ENV];
  const plan = planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml")));
  const first = readProxyScript(plan);
  assert.ok(first !== undefined && first.length > 100_000, "a whole bundle");
  assert.match(first, /--routes-dir/, "the proxy's own CLI is in it");
  assert.doesNotMatch(first, /require\("zod"\)|require\("pino"\)/, "dependencies are bundled, not required");
  assert.equal(readProxyScript(plan), first);
  // One non-ASCII character would make V8 hold the whole source as two bytes per character in every isolate.
  assert.doesNotMatch(first, /[^\x00-\x7f]/, "ASCII only");
});

test("a haproxy-engine stack ships no proxy", () => {
  assert.equal(readProxyScript(planStack(loadTopology("prod"))), undefined);
});
