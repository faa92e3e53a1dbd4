// A test reporter that fails the run when a test was skipped without being declared here with
// its reason: a skip is a test that proved nothing, and CI must say so rather than go green.
// npm test runs it beside the spec reporter (package.json).
import type { TestEvent } from "node:test/reporters";

/** Test name -> why it may be skipped, and where. Empty: on the CI machine every test runs. */
export const DECLARED_SKIPS: Readonly<Record<string, string>> = {};

export default async function* skipGate(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const undeclared: string[] = [];
  for await (const event of source) {
    if (event.type !== "test:pass" || event.data.skip === undefined) continue;
    if (DECLARED_SKIPS[event.data.name] !== undefined) continue;
    undeclared.push(`  ${event.data.file ?? "?"}: "${event.data.name}" (${String(event.data.skip)})`);
  }
  if (undeclared.length === 0) return;
  yield `skip gate: ${undeclared.length} test(s) skipped without a declared reason (test/support/skip-gate.mts):\n${undeclared.join("\n")}\n`;
  process.exitCode = 1;
}
