// The program loads the way the Pulumi CLI loads it (ts-node with type checking, not tsx), for
// both stacks, under the same mocks as the other component tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { stackFile } from "../../scripts/stack-files";
import { configFromYaml } from "./harness";
import { PROD_OUTPUTS, PROD_REF } from "./prod-reference";

function loadWithTsNode(stack: string, secrets: Record<string, string>): { result: unknown; loader: string } {
  const stackReferences = { [PROD_REF]: PROD_OUTPUTS };
  const run = spawnSync(process.execPath, [join(__dirname, "pulumi-ts-node.js"), "test/components/load-stack.ts"], {
    env: { ...process.env, LOAD_STACK: JSON.stringify({ stack, config: configFromYaml(stackFile(stack)), secrets, stackReferences }) },
    encoding: "utf8",
    timeout: 120_000,
  });
  const last = run.stdout.trim().split("\n").pop() ?? "";
  const loader = /loader: .*/.exec(run.stderr)?.[0] ?? "";
  try {
    return { result: JSON.parse(last) as unknown, loader };
  } catch {
    throw new Error(`no result (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
}

for (const [stack, secrets] of [["prod", { statsPassword: "pw" }], ["demo", {}]] as const) {
  test(`${stack}: index.ts type-checks and runs under Pulumi's ts-node loader`, () => {
    const { result, loader } = loadWithTsNode(stack, secrets);
    assert.match(loader, /^loader: ts-node 7\.\d+\.\d+, typescript 5\./);
    assert.deepEqual(result, { ok: true });
  });
}
