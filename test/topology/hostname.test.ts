import { test } from "node:test";
import assert from "node:assert/strict";
import { normaliseHostname } from "../../topology";

test("normalises case and one trailing dot", () => {
  assert.deepEqual(normaliseHostname("Demo.Fiscalismia.COM."), { ok: true, hostname: "demo.fiscalismia.com" });
});

test("wildcards only where allowed", () => {
  assert.deepEqual(normaliseHostname("*.fiscalismia.com", { allowWildcard: true }), { ok: true, hostname: "*.fiscalismia.com" });
  assert.equal(normaliseHostname("*.fiscalismia.com").ok, false);
  assert.equal(normaliseHostname("*.com", { allowWildcard: true }).ok, false);
});

test("rejects control bytes, numeric TLDs and overlong labels", () => {
  assert.deepEqual(normaliseHostname("a\x00b.com"), { ok: false, reason: "it contains control characters" });
  assert.equal(normaliseHostname("host.123").ok, false);
  assert.equal(normaliseHostname(`${"a".repeat(64)}.com`).ok, false);
  assert.equal(normaliseHostname(`${"a".repeat(63)}.com`).ok, true);
  assert.equal(normaliseHostname("-a.com").ok, false);
});

test("accepts A-labels", () => {
  assert.deepEqual(normaliseHostname("xn--bcher-kva.example"), { ok: true, hostname: "xn--bcher-kva.example" });
});

test("non-ASCII that case-folds to ASCII is still rejected", () => {
  assert.equal("\u212Aa.example.com".toLowerCase(), "ka.example.com");
  assert.equal(normaliseHostname("\u212Aa.example.com").ok, false);
});
