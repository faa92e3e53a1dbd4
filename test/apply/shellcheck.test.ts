// The on-host script is held to shellcheck (Debian's), every warning level, like the TypeScript
// is held to tsc --strict: it runs as root on every host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { APPLY_SH } from "./support/bundle";

test("files/apply.sh is shellcheck clean", () => {
  const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", APPLY_SH], { encoding: "utf8" });
  assert.equal(r.error, undefined, "shellcheck is not installed: scripts/setup.sh installs it");
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
