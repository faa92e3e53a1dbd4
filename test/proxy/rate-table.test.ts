import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { allocateRateTable, capacityFor, RateTable, sourceKey } from "../../proxy/ratelimit/rate-table";
import { rateBuffersFor, rateBufferKey } from "../../proxy/ratelimit/rate-buffers";
import { validateProxyConfig } from "../../proxy/config/validate";

const table = (size = 64, windowMs = 3000, expireMs = 60_000, shared = false) => {
  const buffer = allocateRateTable(size, shared);
  return { buffer, t: new RateTable(buffer, windowMs, expireMs) };
};

describe("rate table", () => {
  it("counts per source in the current window, the estimate includes this connection", () => {
    const { t } = table();
    const now = Date.now();
    for (let i = 1; i <= 5; i++) assert.equal(Math.round(t.hit("198.51.100.7", now)), i);
    assert.equal(Math.round(t.hit("198.51.100.8", now)), 1);
    assert.equal(Math.round(t.peek("198.51.100.7", now)), 5);
  });

  it("slides in quarter windows: the oldest quarter counts in proportion to what is left of it", () => {
    const { t, buffer } = table(64, 1000);
    const epoch = new Float64Array(buffer, 8, 1)[0]!;
    const start = epoch + 10_000; // the start of quarter 40
    for (let i = 0; i < 10; i++) t.hit("203.0.113.1", start + 100);
    // Three quarters later all ten are still inside the window.
    assert.equal(t.hit("203.0.113.1", start + 900), 11);
    // 1100 ms: the window reaches 100 ms into quarter 40, 60 % of it left.
    assert.ok(Math.abs(t.hit("203.0.113.1", start + 1100) - (10 * 0.6 + 2)) < 1e-9);
    // 1300 ms: quarter 40 has left the window.
    assert.equal(t.hit("203.0.113.1", start + 1300), 3);
    // Much later only this one.
    assert.equal(t.hit("203.0.113.1", start + 9000), 1);
  });

  it("counts a burst across a window boundary exactly (HAProxy's two-window estimate undercounts it)", () => {
    const { t, buffer } = table(64, 3000);
    const epoch = new Float64Array(buffer, 8, 1)[0]!;
    const start = epoch + 3000 * 10 + 2500; // 500 ms before a window boundary
    let rate = 0;
    for (let i = 0; i < 60; i++) rate = t.hit("198.51.100.66", start + 20 * i);
    assert.equal(rate, 60);
  });

  it("folds IPv4-mapped IPv6 into IPv4", () => {
    const { t } = table();
    const now = Date.now();
    t.hit("192.0.2.1", now);
    t.hit("::ffff:192.0.2.1", now);
    assert.equal(Math.round(t.peek("192.0.2.1", now)), 2);
    assert.deepEqual(sourceKey("::ffff:192.0.2.1"), sourceKey("192.0.2.1"));
    assert.notDeepEqual(sourceKey("2001:db8::1"), sourceKey("192.0.2.1"));
  });

  it("never holds more than its capacity; expired entries are reused, the least recently seen evicted", () => {
    const { t } = table(16, 1000, 2000);
    assert.equal(t.capacity, capacityFor(16));
    const now = Date.now();
    for (let i = 0; i < 500; i++) t.hit(`10.0.${i >> 8}.${i & 255}`, now + i);
    assert.ok(t.size(now + 500) <= t.capacity);
    // A fresh source always gets a slot, even with the table full of live entries.
    assert.equal(t.hit("192.0.2.200", now + 600), 1);
    assert.equal(Math.round(t.peek("192.0.2.200", now + 600)), 1);
    // After expiry nothing is live.
    assert.equal(t.size(now + 10_000), 0);
  });

  it("one SharedArrayBuffer counts the connections of every worker thread", async () => {
    const { buffer, t } = table(1024, 60_000, 60_000, true);
    const script = `
      const { workerData, parentPort } = require("node:worker_threads");
      require("tsx/cjs");
      const { RateTable } = require(${JSON.stringify(require.resolve("../../proxy/ratelimit/rate-table"))});
      const t = new RateTable(workerData.buffer, 60000, 60000);
      for (let i = 0; i < 500; i++) t.hit("198.51.100.9");
      parentPort.postMessage("done");`;
    await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(script, { eval: true, workerData: { buffer } });
            w.once("message", () => resolve());
            w.once("error", reject);
          }),
      ),
    );
    // Races may lose a count only when a window rotates; within one window all 1500 are there.
    assert.equal(Math.round(t.peek("198.51.100.9")), 1500);
  });

  it("buffers are kept across reloads while the listener, size and window stay, replaced otherwise", () => {
    const cfg = (tableSize: number) => {
      const r = validateProxyConfig({
        listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: 1 }], rateLimit: { maxConnectionsPerWindow: 5, tableSize } }],
        routes: [],
        backends: [],
      });
      if (!r.ok) throw new Error(r.errors.join("\n"));
      return r.config;
    };
    const first = rateBuffersFor(cfg(100), new Map(), true);
    const same = rateBuffersFor(cfg(100), first, true);
    assert.equal(same.get(rateBufferKey("https", 100, 3000)), first.get(rateBufferKey("https", 100, 3000)));
    assert.ok(first.get(rateBufferKey("https", 100, 3000)) instanceof SharedArrayBuffer);
    const resized = rateBuffersFor(cfg(200), first, true);
    assert.equal(resized.size, 1);
    assert.ok(resized.get(rateBufferKey("https", 200, 3000)) !== undefined);
  });
});

describe("IPv6 sources by prefix", () => {
  it("counts every address of one /64 as one source, and other /64s apart (300 rotating addresses)", () => {
    const buffer = allocateRateTable(1024, false);
    const t = new RateTable(buffer, 3000, 60_000, 64);
    const now = Date.now();
    let rate = 0;
    for (let i = 1; i <= 300; i++) rate = t.hit(`2001:db8:1:2:${i.toString(16)}::${(i * 7).toString(16)}`, now);
    assert.equal(Math.round(rate), 300, "one /64, one rate");
    assert.equal(Math.round(t.hit("2001:db8:1:3::1", now)), 1, "the next /64 is another source");
    // IPv4, mapped or not, stays per address.
    t.hit("192.0.2.1", now);
    assert.equal(Math.round(t.hit("::ffff:192.0.2.2", now)), 1);
  });

  it("keys by exactly the prefix's bits, also inside a byte", () => {
    const key = (a: string, p: number) => Array.from(sourceKey(a, new Int32Array(4), p)!);
    assert.deepEqual(key("2001:db8:1:2:ffff::1", 64), key("2001:db8:1:2::", 128));
    assert.deepEqual(key("2001:db8:1:2f::1", 60), key("2001:db8:1:20::", 128));
    assert.notDeepEqual(key("2001:db8:1:2f::1", 64), key("2001:db8:1:20::", 128));
    assert.deepEqual(key("2001:db8:1:2:3:4:5:6", 128), key("2001:db8:1:2:3:4:5:6", 128));
    assert.deepEqual(key("::ffff:198.51.100.9", 64), key("198.51.100.9", 128));
  });

  it("the proxy config defaults to /64 and refuses a prefix outside 1..128", () => {
    const cfg = (prefix?: number) => ({
      version: 1,
      listeners: [
        {
          name: "https",
          mode: "tls-passthrough",
          binds: [{ address: "127.0.0.1", port: 8443 }],
          rateLimit: { maxConnectionsPerWindow: 5, ...(prefix === undefined ? {} : { ipv6PrefixLength: prefix }) },
        },
      ],
      backends: [],
      routes: [],
    });
    const ok = validateProxyConfig(cfg());
    assert.ok(ok.ok, JSON.stringify(ok));
    if (ok.ok) assert.equal(ok.config.listeners[0]!.rateLimit!.ipv6PrefixLength, 64);
    assert.equal(validateProxyConfig(cfg(0)).ok, false);
    assert.equal(validateProxyConfig(cfg(129)).ok, false);
  });
});
