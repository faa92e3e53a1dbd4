// `npm run sandbox -- up|test|down` as a user runs it: up prints how to reach the sandbox,
// test passes, and down leaves no namespace, process, mount point or file behind.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readState, STATE_FILE } from "../../sandbox/cli-state";
import { registeredMountPoints, SANDBOX_RUN_DIR, otherLiveRuns } from "../../sandbox/mount-points";
import { missingPrerequisites } from "../../sandbox/prerequisites";
import { isLive } from "../../lab/procfs";
import { listNetns } from "../../lab/sandbox";

const CLI = join(__dirname, "..", "..", "scripts", "sandbox.ts");
const missing = missingPrerequisites();
const before = readState();
const busy = before !== undefined && isLive(before.supervisorPid);

function sandbox(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], { encoding: "utf8", timeout: 90_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe(
  "npm run sandbox -- up | test | down (--stack demo)",
  { skip: (missing.length > 0 && `needs ${missing.join("; ")}`) || (busy && "a sandbox started by hand is up; not touching it"), timeout: 150_000 },
  () => {
    let namePrefix: string | undefined;
    let dir: string | undefined;
    let pids: number[] = [];

    after(() => {
      // Whatever happened above, leave the machine as it was.
      if (readState()) sandbox("down");
    });

    it("up builds the demo stack and its LB and prints how to reach it", () => {
      const r = sandbox("up", "--stack", "demo");
      assert.equal(r.code, 0, r.out);
      const state = readState();
      assert.equal(state?.status, "ready");
      namePrefix = state?.namePrefix;
      dir = state?.dir;
      pids = [state?.supervisorPid ?? -1, ...Object.values(state?.pids ?? {})];
      assert.match(r.out, /health checks: interval 1s, timeout 1s, fall 2, rise 1/);
      assert.match(r.out, new RegExp(`ip netns exec ${namePrefix}client curl --resolve demo\\.fiscalismia\\.com:443:203\\.0\\.113\\.10 -k https://demo\\.fiscalismia\\.com/`));
      assert.match(r.out, /not running here \(their backends stay DOWN\): monitoring, frontend, backend/);
      assert.match(r.out, /stats: user admin, password [0-9a-f]{24}/);
      assert.equal(sandbox("up").code, 1, "a second up is refused while one runs");
    });

    it("test runs the checks against it and they pass", () => {
      const r = sandbox("test");
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^PASS route demo\.fiscalismia\.com -> demo 172\.20\.0\.2:443/m);
      assert.match(r.out, /^PASS regression: demo behind podman-style DNAT/m);
      assert.match(r.out, /\d+ passed, 0 failed, 0 skipped/);
    });

    it("down leaves nothing behind", () => {
      const r = sandbox("down");
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /nothing left/);
      assert.ok(namePrefix !== undefined && namePrefix.length > 0);
      assert.deepEqual(listNetns().filter((n) => n.startsWith(namePrefix ?? "")), []);
      assert.deepEqual(pids.filter(isLive), []);
      assert.equal(existsSync(dir ?? "/nonexistent"), false, `temp dir ${dir}`);
      assert.equal(existsSync(STATE_FILE), false);
      if (otherLiveRuns().length === 0) {
        assert.deepEqual(registeredMountPoints(), []);
        assert.equal(existsSync(SANDBOX_RUN_DIR), false);
      }
      assert.equal(sandbox("test").code, 1, "test without a sandbox says so");
    });
  },
);
