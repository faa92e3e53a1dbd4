// Golden files: test/golden/<stack>/<host>/<path under /srv/ingress/current>.
// UPDATE_GOLDEN=1 rewrites them; review the diff like any other change.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const GOLDEN_DIR = join(__dirname, "..", "..", "golden");

export function assertGolden(rel: string, actual: string): void {
  const file = join(GOLDEN_DIR, rel);
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `golden file ${rel} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(file, "utf8"), `${rel} differs from its golden file; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff`);
}
