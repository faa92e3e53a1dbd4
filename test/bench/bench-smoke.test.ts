/**
 * The bench cannot rot: `npm run bench -- --smoke` runs every engine through every workload for
 * real (rendered HAProxy and ts configs, nginx stream, wrk, idle TLS clients, /proc readings) in
 * seconds, and its results file holds a sane sample of each. The numbers of a smoke run mean
 * nothing; that each figure exists and is plausible does.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ENGINES, renderTable, summarise, type BenchRun } from "../../bench/results";

const REPO = path.join(__dirname, "..", "..");

describe("npm run bench -- --smoke", { timeout: 240_000 }, () => {
  it("measures every engine on every workload, and writes the results file the table is made from", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-smoke-"));
    try {
      const json = path.join(dir, "run.json");
      const r = spawnSync(process.execPath, ["--import", "tsx", path.join(REPO, "bench", "cli.ts"), "--smoke", "--json", json], { cwd: REPO, encoding: "utf8", timeout: 220_000 });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const run = JSON.parse(readFileSync(json, "utf8")) as BenchRun;
      assert.equal(run.settings.smoke, true);
      assert.deepEqual(Object.keys(run.rounds).sort(), [...ENGINES].sort());
      for (const engine of ENGINES) {
        const [sample] = run.rounds[engine]!;
        assert.ok(sample, engine);
        for (const [name, load] of [["new connection", sample.newConnection], ["keep-alive", sample.keepAlive], ["bulk", sample.bulk]] as const) {
          assert.ok(load && load.requests > 0, `${engine} ${name}: ${JSON.stringify(load)}`);
          // A loaded machine may cost wrk a connection or two; more is a broken path.
          assert.ok(load.errors <= Math.max(2, load.requests * 0.01), `${engine} ${name}: ${load.errors} errors of ${load.requests}`);
          if (engine === "direct") continue;
          // Each engine did work of its own for the requests it forwarded.
          assert.ok(load.processUsPerRequest > 0, `${engine} ${name} process CPU`);
          if (engine === "ts-all") assert.equal(load.coreUsPerRequest, null, "all cores: no single core to read");
          else assert.ok(load.coreUsPerRequest !== null && load.coreUsPerRequest >= load.processUsPerRequest * 0.5, `${engine} ${name} core CPU ${JSON.stringify(load)}`);
        }
        assert.ok(sample.bulk!.mibPerSec > 0, `${engine} bulk rate`);
        assert.ok(sample.latency && sample.latency.requests > 0 && sample.latency.p99Ms >= sample.latency.p50Ms && sample.latency.p50Ms > 0, `${engine} latency ${JSON.stringify(sample.latency)}`);
        if (engine === "direct") {
          assert.equal(sample.idle, undefined);
          continue;
        }
        const idle = sample.idle!;
        assert.equal(idle.connections, run.settings.idleConnections, `${engine}: every idle connection opened`);
        assert.ok(idle.rssBeforeKiB > 1024, `${engine} resident memory ${idle.rssBeforeKiB} KiB`);
      }
      // The table the bench printed is the one made from this file.
      assert.ok(r.stdout.includes(renderTable(run)), r.stdout);
      assert.ok(summarise(run).ts?.newConnectionCpu !== undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
