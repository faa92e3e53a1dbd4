// End to end: prod and demo attached together on one LB, every host a network namespace, the
// rendered configs running in real nginx behind either engine: HAProxy or the embedded ts proxy.
// The checks are sandbox/ingress-checks.ts, the same ones `npm run sandbox -- test` runs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { cleanupStale } from "../../lab";
import { sandboxEngines } from "../../sandbox/engines";
import { buildProxyScript } from "../../sandbox/proxy-script";
import { ingressChecks, SkipCheck } from "../../sandbox/ingress-checks";
import { planIngressSandbox } from "../../sandbox/ingress-plan";
import { IngressSandbox } from "../../sandbox/ingress-sandbox";
import { INGRESS_SANDBOX_PREFIX, otherLiveRuns, registeredMountPoints } from "../../sandbox/mount-points";
import { missingPrerequisites } from "../../sandbox/prerequisites";

const missing = missingPrerequisites();
const engines = sandboxEngines();

for (const engine of engines) {
  describe(`e2e, stacks prod + demo, engine ${engine}`, { skip: missing.length > 0 && `needs ${missing.join("; ")}`, timeout: 150_000 }, () => {
    let s: IngressSandbox | undefined;

    before(async () => {
      await cleanupStale(INGRESS_SANDBOX_PREFIX);
      // A fresh build of the proxy, so the suite tests this checkout's code, not a stale dist/.
      const proxyScript = engine === "ts" ? readFileSync(buildProxyScript(), "utf8") : undefined;
      s = await IngressSandbox.up({ stacks: "all", engine, ...(proxyScript !== undefined ? { proxyScript } : {}) });
    });

    after(async () => {
      if (!s) return;
      await s.teardown();
      assert.deepEqual(s.leftovers(), { namespaces: [], processes: [], files: [] });
      if (otherLiveRuns().length === 0) assert.deepEqual(registeredMountPoints(), [], "mount points the sandbox created are gone");
    });

    for (const check of ingressChecks(planIngressSandbox({ stacks: "all", engine }))) {
      it(check.name, async (t) => {
        if (!s) throw new Error("the sandbox did not come up");
        try {
          t.diagnostic(await check.run(s));
        } catch (e) {
          if (e instanceof SkipCheck) t.skip(e.message);
          else throw e;
        }
      });
    }
  });
}
