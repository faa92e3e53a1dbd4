// Redeploy only what changed, through the real program: prod with one site moved to another
// port. The LB (its backend) and the backend server (its listener) get new triggers; the
// other servers keep exactly the trigger the unchanged config gives them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readStackConfig, REPO_ROOT, stackFile } from "../../scripts/stack-files";
import { planStack, validateStackConfig } from "../../topology";
import { hostBundleHashes } from "../../components/deploy/host-bundles";
import { programBundles } from "../../components/program/program-files";
import { configFromYaml, loadProgram, one, type Loaded } from "./harness";

const APPLY_SH = readFileSync(join(REPO_ROOT, "files", "apply.sh"), "utf8");
type Site = { hostname: string; port: number };

function withBackendPort(raw: Record<string, unknown>, port: number): Record<string, unknown> {
  const copy = structuredClone(raw) as { sites: Site[] };
  copy.sites.find((s) => s.hostname === "backend.fiscalismia.com")!.port = port;
  return copy;
}

const hashesOf = (raw: Record<string, unknown>) => {
  const plan = planStack(validateStackConfig("prod", raw));
  return hostBundleHashes(plan, APPLY_SH, programBundles(plan));
};
const original = hashesOf(readStackConfig(stackFile("prod")));
const changed = hashesOf(withBackendPort(readStackConfig(stackFile("prod")), 8443));

let loaded: Loaded;
test.before(async () => {
  const config = configFromYaml(stackFile("prod"));
  const sites = JSON.parse(config["hetzner-ingress:sites"]!) as Site[];
  sites.find((s) => s.hostname === "backend.fiscalismia.com")!.port = 8443;
  config["hetzner-ingress:sites"] = JSON.stringify(sites);
  loaded = await loadProgram({ stack: "prod", config, secrets: { statsPassword: "pw" } });
});
test.after(() => rmSync(loaded.bundleDir, { recursive: true, force: true }));

test("the changed route re-triggers the LB and the backend server only", () => {
  const trigger = (host: string) => (one(loaded, "command:remote:Command", `deploy-${host}-apply`).inputs["triggers"] as string[])[0];
  assert.deepEqual(
    Object.fromEntries(["loadbalancer", "monitoring", "frontend", "backend"].map((h) => [h, trigger(h)])),
    { loadbalancer: changed["loadbalancer"], monitoring: original["monitoring"], frontend: original["frontend"], backend: changed["backend"] },
  );
  assert.notEqual(changed["loadbalancer"], original["loadbalancer"]);
  assert.notEqual(changed["backend"], original["backend"]);
  for (const host of ["monitoring", "frontend"]) {
    const copy = one(loaded, "command:remote:CopyToRemote", `deploy-${host}-bundle`);
    const serverId = one(loaded, "hcloud:index/server:Server", `server-${host}`).id;
    assert.deepEqual(copy.inputs["triggers"], [original[host], serverId], `${host}: its copy is untouched too`);
  }
});

test("servers themselves see no change: user data is the same for every config", () => {
  const userData = new Set(loaded.resources.filter((r) => r.type === "hcloud:index/server:Server").map((r) => r.inputs["userData"]));
  assert.equal(userData.size, 1);
});
