/**
 * What the bench concludes from its samples: medians and spread over rounds, latency against the
 * direct path of the same round, the targets judged on those medians, flagged runs, and the
 * chart drawn from the same figures.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderChart } from "../../bench/chart";
import { parseWrk } from "../../bench/workloads";
import { judgeTargets, noisyRuns, renderTable, spread, summarise, type BenchRun, type LoadSample, type RoundSample } from "../../bench/results";

const load = (cpu: number, extra: Partial<LoadSample> = {}): LoadSample => ({
  requests: 1000,
  seconds: 5,
  errors: 0,
  mibPerSec: 10,
  coreUsPerRequest: cpu,
  processUsPerRequest: cpu * 0.8,
  otherShare: 0.01,
  ...extra,
});

const round = (cpu: number, p99: number, kib: number, rssMiB: number, mibs = 400): RoundSample => ({
  newConnection: load(cpu),
  keepAlive: load(cpu / 10),
  bulk: load(1, { mibPerSec: mibs }),
  latency: { requests: 1000, p50Ms: p99 / 4, p99Ms: p99, errors: 0 },
  idle: { connections: 1000, rssBeforeKiB: rssMiB * 1024, rssAfterKiB: rssMiB * 1024 + kib * 1000 },
});

function run(rounds: BenchRun["rounds"]): BenchRun {
  return {
    date: "2026-12-02T00:00:00.000Z",
    command: "npm run bench",
    machine: { cpus: 2, model: "test", kernel: "6.1" },
    versions: { node: "24.21.0", haproxy: "HAProxy version 2.6.12", nginx: "nginx version: nginx/1.22.1" },
    settings: { seconds: 5, rounds: 3, connections: 32, idleConnections: 1000, bulkMiB: 100, pacedRequestsPerSecond: 1000, smoke: false },
    rounds,
  };
}

describe("bench results", () => {
  it("spread: median of odd and even counts, min and max, NaN ignored", () => {
    assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.deepEqual(spread([NaN, 5]), { median: 5, min: 5, max: 5, n: 1 });
    assert.equal(spread([]), null);
  });

  it("latency is added against the direct path of the same round, not the median of all", () => {
    const r = run({
      direct: [round(0, 1.0, 0, 0), round(0, 5.0, 0, 0), round(0, 1.0, 0, 0)],
      ts: [round(300, 1.1, 5, 50), round(300, 5.2, 5, 50), round(300, 1.3, 5, 50)],
    });
    const added = summarise(r).ts!.addedP99Ms!;
    assert.ok(Math.abs(added.median - 0.2) < 1e-9, String(added.median));
    assert.ok(Math.abs(added.max - 0.3) < 1e-9);
    assert.equal(summarise(r).direct!.addedP99Ms, undefined, "direct has no added latency");
  });

  it("targets: met and missed, judged on medians over rounds", () => {
    const hap = [round(290, 1.2, 3.5, 24), round(280, 1.2, 3.5, 24), round(300, 1.2, 3.5, 24)];
    const direct = [round(0, 1.0, 0, 0), round(0, 1.0, 0, 0), round(0, 1.0, 0, 0)];
    const ts = [round(250, 1.1, 5.5, 50, 420), round(900, 1.15, 5.8, 50, 390), round(260, 1.2, 5.9, 50, 410)];
    const tsAll = [round(260, 1.1, 7, 70), round(260, 1.1, 7, 70), round(260, 1.1, 7, 70)];
    const verdicts = Object.fromEntries(judgeTargets(run({ direct, haproxy: hap, ts, "ts-all": tsAll })).map((v) => [v.target, v]));
    // One slow round (900) does not decide: the median is 260 / 290.
    assert.ok(Math.abs(verdicts["CPU per new connection, ts / HAProxy"]!.value! - 260 / 290) < 1e-9);
    assert.equal(verdicts["CPU per new connection, ts / HAProxy"]!.met, true);
    assert.equal(verdicts["KiB per idle connection, ts"]!.met, true);
    assert.equal(verdicts["MiB resident idle, ts all cores (rendered config)"]!.met, false);
    assert.equal(verdicts["bulk, ts / HAProxy"]!.met, true);
    assert.ok(Math.abs(verdicts["added p99 ms, ts"]!.value! - 0.15) < 1e-9);
    assert.equal(verdicts["added p99 ms, ts"]!.met, true);
    const table = renderTable(run({ direct, haproxy: hap, ts, "ts-all": tsAll }));
    assert.match(table, /\| CPU µs per new TLS connection \(a\) \| - \| 290 \(280-300\) \| 260 \(250-900\) \| 260 \| 0\.90 \|/);
    assert.match(table, /\| MiB resident idle, ts all cores \(rendered config\) \| 70\.00 \| <= 64 \| \*\*no\*\* \|/);
  });

  it("a run whose engine core was busy with something else is flagged by name", () => {
    const noisy = round(300, 1, 4, 30);
    const r = run({ haproxy: [round(300, 1, 4, 30), { ...noisy, keepAlive: load(30, { otherShare: 0.2 }) }] });
    assert.deepEqual(noisyRuns(r), ["haproxy round 2 keep-alive (other 20%)"]);
    assert.match(renderTable(r), /Flagged \(something else used the engine's core\): haproxy round 2 keep-alive/);
  });

  it("the chart draws each engine against HAProxy, longer meaning worse, throughput inverted", () => {
    const svg = renderChart(run({ haproxy: [round(300, 1, 4, 24, 400)], ts: [round(450, 1, 8, 48, 200)] }), "a <title>");
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /a &lt;title&gt;/);
    assert.match(svg, />1\.50x \(450 µs\)</, "CPU: 450 / 300");
    assert.match(svg, />2\.00x \(200 MiB\/s\)</, "bulk: HAProxy's 400 over the engine's 200");
    assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 2 * 5 + 4, "background, two engines x five metrics, legend");
  });

  it("parses wrk's summary, latency percentiles and errors", () => {
    const out = `Running 5s test @ https://fiscalismia.com/small
  1 threads and 32 connections
  Latency Distribution
     50%  412.00us
     75%  600.00us
     90%    1.10ms
     99%    2.50ms
  21000 requests in 5.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   4200.00
Transfer/sec:    635.00KB
`;
    const w = parseWrk(out);
    assert.equal(w.requests, 21000);
    assert.equal(w.seconds, 5);
    assert.ok(Math.abs(w.p50Ms - 0.412) < 1e-9);
    assert.equal(w.p99Ms, 2.5);
    assert.equal(w.errors, 7);
    assert.ok(Math.abs(w.mibPerSec - 635 / 1024) < 1e-9);
    assert.throws(() => parseWrk("unable to connect"), /wrk printed no summary/);
  });
});
