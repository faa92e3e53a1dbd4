// What each of this stack's servers receives: the renderer's bundle plus apply.sh. Pure, so
// the redeploy rule (a host is pushed again exactly when its hash changes) is tested directly.
import { bundleHash, renderStack, type RenderedHost } from "../render/bundle";
import type { StackPlan } from "../topology";
import { withApplyScript } from "./bundle-dir";

/** Servers only: an attached stack's routes wait for the owner's LB settings (ingress-attachment.ts). */
export function renderHostBundles(plan: StackPlan, applyScript: string, proxyBundle?: string): RenderedHost[] {
  const { attach: _routesGoElsewhere, ...own } = plan;
  return renderStack(own, proxyBundle === undefined ? {} : { proxyBundle }).map((r) => withApplyScript(r, applyScript));
}

export function hostBundleHashes(plan: StackPlan, applyScript: string, proxyBundle?: string): Record<string, string> {
  return Object.fromEntries(renderHostBundles(plan, applyScript, proxyBundle).map((r) => [r.host, bundleHash(r.files)]));
}
