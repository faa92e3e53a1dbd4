// npm test's skip gate: a run in which a test was skipped without a declared reason fails,
// naming the test; a run without skips passes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const GATE = join(__dirname, "..", "support", "skip-gate.mts");

function run(body: string): { status: number | null; err: string } {
  const dir = mkdtempSync(join(tmpdir(), "skip-gate-"));
  try {
    writeFileSync(join(dir, "x.test.mjs"), `import { test } from "node:test";\n${body}\n`);
    const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", "--test-reporter-destination=stdout", `--test-reporter=${GATE}`, "--test-reporter-destination=stderr", join(dir, "x.test.mjs")], {
      encoding: "utf8",
      // Set for this file's own run: with it, a nested `node --test` reports to its parent and runs no reporter.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NODE_TEST_CONTEXT")),
    });
    return { status: r.status, err: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a test skipped without a declared reason fails the run, named; a run without skips passes", () => {
  const skipped = run('test("runs", () => {});\ntest("needs a thing", { skip: "no thing here" }, () => {});');
  assert.equal(skipped.status, 1);
  assert.match(skipped.err, /skip gate: 1 test\(s\) skipped without a declared reason/);
  assert.match(skipped.err, /"needs a thing" \(no thing here\)/);
  const clean = run('test("runs", () => {});');
  assert.equal(clean.status, 0, clean.err);
  assert.doesNotMatch(clean.err, /skip gate/);
});
