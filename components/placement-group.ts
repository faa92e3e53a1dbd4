// One spread placement group per stack: Hetzner puts each of its servers on another physical
// host, so one host failing takes down one server. Validation keeps a stack within the
// group's size (topology/validate.ts, SPREAD_GROUP_LIMIT).
import * as hcloud from "@pulumi/hcloud";
import type * as pulumi from "@pulumi/pulumi";
import { displayName, resourceLabels } from "./deploy/names";

export function spreadPlacementGroup(stack: string): { readonly group: hcloud.PlacementGroup; readonly id: pulumi.Output<number> } {
  const group = new hcloud.PlacementGroup("spread", { name: displayName(stack, "spread"), type: "spread", labels: resourceLabels(stack, "placement") });
  return { group, id: group.id.apply(Number) };
}
