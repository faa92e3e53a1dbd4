import assert from "node:assert/strict";
import { it } from "node:test";
import { runFuzz } from "../../proxy/fuzz/fuzz-parsers";

it("20k mutated inputs: no throw, consumed within bounds, chunking-invariant, bounded heap", () => {
  // A fresh seed each run widens coverage over time; it is printed so a failure replays with `npm run fuzz -- --seed`.
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const report = runFuzz({ count: 20_000, seed });
  assert.equal(report.inputs, 20_000, `seed ${seed}`);
  assert.ok(report.heapGrowthBytes < 64 * 1024 * 1024, `heap grew ${report.heapGrowthBytes} bytes (seed ${seed})`);
  // The mutator must reach deep states, not just fail at the first byte.
  const reached = Object.keys(report.outcomes);
  for (const outcome of ["hello:done", "hello:sni:ok", "proxy:done", "hello:extensions-length-mismatch", "proxy:v2-tlv-length-overflow"]) {
    assert.ok(reached.includes(outcome), `outcome ${outcome} never reached (seed ${seed}): ${reached.join(", ")}`);
  }
});
