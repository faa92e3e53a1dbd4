// What each of this stack's servers receives: the renderer's bundle plus apply.sh. Pure, so
// the redeploy rule (a host is pushed again exactly when its hash changes) is tested directly.
import { bundleHash, renderStack, type RenderedHost, type RenderOptions } from "../../render/stack";
import type { StackPlan } from "../../topology";
import { withApplyScript } from "../program/bundle-dir";

/** Servers only: an attached stack's routes go to the owner's LB (ingress-attachment.ts). */
export function renderHostBundles(plan: StackPlan, applyScript: string, programs: RenderOptions = {}): RenderedHost[] {
  const { attach: _routesGoElsewhere, ...own } = plan;
  return renderStack(own, programs).map((r) => withApplyScript(r, applyScript));
}

export function hostBundleHashes(plan: StackPlan, applyScript: string, programs: RenderOptions = {}): Record<string, string> {
  return Object.fromEntries(renderHostBundles(plan, applyScript, programs).map((r) => [r.host, bundleHash(r.files)]));
}
