// Redeploy only what changed: a host's deploy is keyed by its bundle hash, so these tables
// say exactly which hosts a config change pushes to.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readStackConfig, REPO_ROOT, stackFile } from "../../scripts/stack-files";
import { planStack, validateStackConfig } from "../../topology";
import { hostBundleHashes } from "../../components/deploy/host-bundles";

const APPLY_SH = readFileSync(join(REPO_ROOT, "files", "apply.sh"), "utf8");

type Raw = Record<string, unknown> & { sites: Array<Record<string, unknown>>; ingress: Record<string, unknown> };

function hashes(stack: string, edit: (raw: Raw) => void = () => {}): Record<string, string> {
  const raw = structuredClone(readStackConfig(stackFile(stack))) as Raw;
  edit(raw);
  return hostBundleHashes(planStack(validateStackConfig(stack, raw)), APPLY_SH);
}

function changedHosts(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys(after).filter((host) => before[host] !== after[host]);
}

const prod = hashes("prod");

test("the same config gives the same hashes", () => {
  assert.deepEqual(hashes("prod"), prod);
  assert.deepEqual(Object.keys(prod), ["loadbalancer", "monitoring", "frontend", "backend"]);
});

test("an LB-only setting re-pushes the LB only", () => {
  const after = hashes("prod", (raw) => {
    (raw.ingress["rateLimit"] as Record<string, unknown>)["threshold"] = 80;
  });
  assert.deepEqual(changedHosts(prod, after), ["loadbalancer"]);
});

test("a site's port re-pushes the LB (its backend) and that site's server (its listener), no other server", () => {
  const after = hashes("prod", (raw) => {
    raw.sites.find((s) => s["hostname"] === "backend.fiscalismia.com")!["port"] = 8443;
  });
  assert.deepEqual(changedHosts(prod, after), ["loadbalancer", "backend"]);
});

test("a site's health path re-pushes the LB (its check) and that site's server", () => {
  const after = hashes("prod", (raw) => {
    raw.sites.find((s) => s["hostname"] === "fiscalismia.com")!["healthPath"] = "/ready";
  });
  assert.deepEqual(changedHosts(prod, after), ["loadbalancer", "frontend"]);
});
