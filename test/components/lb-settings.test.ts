import { test } from "node:test";
import assert from "node:assert/strict";
import { loadTopology } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import { lbSettingsOf } from "../../render/bundle";
import { exportedLbSettings, parseLbSettings } from "../../components/lb-settings";

test("what the owner exports is what the renderer would derive from its config, and reads back unchanged", () => {
  const topo = loadTopology("prod");
  const lb = planStack(topo).hosts.find((h) => h.role === "ingress")!;
  const exported = exportedLbSettings(lb);
  assert.deepEqual(exported, lbSettingsOf(topo));
  assert.deepEqual(parseLbSettings("prod", JSON.parse(JSON.stringify(exported))), exported);
});

test("an owner without usable settings is named, with what to do", () => {
  assert.throws(() => parseLbSettings("organization/hetzner-ingress/prod", undefined), /stack organization\/hetzner-ingress\/prod does not export usable LB settings .*run `pulumi up` on it first/s);
  assert.throws(() => parseLbSettings("p", { engine: "nginx", healthCheck: {}, timeouts: {} }), /engine/);
});
