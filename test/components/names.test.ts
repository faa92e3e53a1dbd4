import { test } from "node:test";
import assert from "node:assert/strict";
import { childName, displayName, keyOf, labelValue, MANAGED_BY, resourceLabels } from "../../components/deploy/names";

test("child names derive from the component name, with a stable key and never a position", () => {
  assert.equal(childName("deploy-loadbalancer", "apply"), "deploy-loadbalancer-apply");
  assert.equal(childName("network-prod", "subnet", keyOf("172.24.0.0/24")), "network-prod-subnet-172-24-0-0-24");
});

test("display names carry the stack and are valid host names", () => {
  const cases: [string, string, string][] = [
    ["prod", "loadbalancer", "prod-loadbalancer"],
    ["demo", "demo", "demo-demo"],
    ["Feature_X.1", "web", "feature-x-1-web"],
    ["a".repeat(70), "web", "a".repeat(63)],
    ["pr-", "-web", "pr-web"],
  ];
  for (const [stack, name, expected] of cases) assert.equal(displayName(stack, name), expected, `${stack}/${name}`);
});

test("label values keep to Hetzner's alphabet and length", () => {
  assert.equal(labelValue("prod"), "prod");
  assert.equal(labelValue("org/proj stack!"), "org-proj-stack");
  assert.equal(labelValue("-x-"), "x");
  assert.equal(labelValue("b".repeat(80)).length, 63);
});

test("every resource gets stack, role and managed-by; the stack's own labels are kept but cannot override them", () => {
  assert.deepEqual(resourceLabels("prod", "web", { team: "ops", stack: "forged" }), { team: "ops", stack: "prod", role: "web", "managed-by": MANAGED_BY });
});
