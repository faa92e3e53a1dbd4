// One warning line per window with exact counts: the first event at once, the window's rest
// when it ends (not at some later event), nothing when nothing happened, and flush on drain.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WarningWindow } from "../../proxy/log/warning-window";
import { waitFor } from "./helpers/harness";

test("a burst of 903 reads 1 at once and 902 when the window ends; a quiet window writes nothing", async () => {
  const lines: { count: number; fields: Record<string, unknown>; at: number }[] = [];
  // A fresh turn of the loop: the window's timer counts from the loop's time, which a long
  // turn would leave behind Date.now().
  await new Promise((r) => setImmediate(r));
  const t0 = Date.now();
  const w = new WarningWindow(200, (count, fields) => lines.push({ count, fields, at: Date.now() - t0 }));
  for (let i = 0; i < 903; i++) w.add({ n: i });
  assert.deepEqual(lines.map((l) => [l.count, l.fields["n"]]), [[1, 0]]);
  await waitFor(() => lines.length === 2, 2000, "the window's line");
  assert.deepEqual(lines.map((l) => [l.count, l.fields["n"]]), [[1, 0], [902, 902]]);
  assert.ok(lines[1]!.at >= 150, `written after ${lines[1]!.at} ms, well before the 200 ms window ended`);
  // A window with no event in it writes nothing, and the next event opens a new one at once.
  await new Promise((r) => setTimeout(r, 450));
  assert.equal(lines.length, 2);
  w.add({ n: "late" });
  assert.deepEqual(lines.map((l) => l.count), [1, 902, 1]);
  w.add({ n: "later" });
  w.flush();
  assert.deepEqual(lines.map((l) => [l.count, l.fields["n"]]).slice(-1), [[1, "later"]], "flush writes what the window counted");
  w.flush();
  assert.equal(lines.length, 4, "and only once");
});
