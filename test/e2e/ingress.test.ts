// End to end: prod and demo attached together on one LB, every host a network namespace, the
// rendered configs running in real haproxy and nginx (and the ts proxy when it can run them).
// The checks are sandbox/ingress-checks.ts, the same ones `npm run sandbox -- test` runs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { cleanupStale } from "../../sandbox";
import { PROXY_BUNDLE_PATH, sandboxEngines } from "../../sandbox/engines";
import { ingressChecks, SkipCheck } from "../../sandbox/ingress-checks";
import { planIngressSandbox } from "../../sandbox/ingress-plan";
import { IngressSandbox } from "../../sandbox/ingress-sandbox";
import { INGRESS_SANDBOX_PREFIX, otherLiveRuns, registeredMountPoints } from "../../sandbox/mount-points";
import { missingPrerequisites } from "../../sandbox/prerequisites";

const missing = missingPrerequisites();
const engines = missing.length === 0 ? sandboxEngines() : ["haproxy" as const];

for (const engine of engines) {
  describe(`e2e, stacks prod + demo, engine ${engine}`, { skip: missing.length > 0 && `needs ${missing.join("; ")}`, timeout: 150_000 }, () => {
    let s: IngressSandbox | undefined;

    before(async () => {
      await cleanupStale(INGRESS_SANDBOX_PREFIX);
      const proxyBundle = engine === "ts" ? readFileSync(PROXY_BUNDLE_PATH, "utf8") : undefined;
      s = await IngressSandbox.up({ stacks: "all", engine, ...(proxyBundle !== undefined ? { proxyBundle } : {}) });
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
