import { test } from "node:test";
import assert from "node:assert/strict";
import { dnsRecords, sshCommand, statsEnv, statsUrl } from "../../components/deploy/outputs";

test("every hostname gets an A and an AAAA record to the LB, sorted by name", () => {
  assert.deepEqual(dnsRecords(["fiscalismia.com", "backend.fiscalismia.com"], "203.0.113.5", "2001:db8::1"), [
    { name: "backend.fiscalismia.com", type: "A", value: "203.0.113.5" },
    { name: "backend.fiscalismia.com", type: "AAAA", value: "2001:db8::1" },
    { name: "fiscalismia.com", type: "A", value: "203.0.113.5" },
    { name: "fiscalismia.com", type: "AAAA", value: "2001:db8::1" },
  ]);
});

test("stats URL and SSH command", () => {
  assert.equal(statsUrl("203.0.113.5", 8404), "http://203.0.113.5:8404/stats");
  assert.equal(sshCommand("203.0.113.5"), "ssh -i ./deploy-key root@203.0.113.5");
});

test("stats.env is an env file podman reads; a password that would break its framing is refused", () => {
  assert.equal(statsEnv("admin", "pa ss:w\"rd$x"), "STATS_USER=admin\nSTATS_PASSWORD=pa ss:w\"rd$x\n");
  assert.throws(() => statsEnv("admin", "a\nSTATS_USER=root"), /must not contain line breaks/);
  assert.throws(() => statsEnv("admin", ""), /empty/);
});
