import { test } from "node:test";
import assert from "node:assert/strict";
import { certificateOutputs, dnsRecords, sshCommand, statsEnv, statsUrl } from "../../components/deploy/outputs";
import { planStack } from "../../topology";
import { demoWithCertbotPlan, exampleOnHaproxy } from "../render/validators/plans";
import { loadTopology } from "../../scripts/stack-files";

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

test("the certificates output says per name who issues it and how it renews, for every source", () => {
  const acme = certificateOutputs(planStack(loadTopology("demo")).hosts);
  assert.deepEqual(Object.keys(acme).sort(), ["backend.demo.fiscalismia.com", "demo.fiscalismia.com"]);
  assert.deepEqual(acme["demo.fiscalismia.com"], {
    server: "demo",
    source: "acme",
    issuer: "Let's Encrypt (ACME, http-01)",
    renewal: "lego on demo (acme.timer), 30 days before expiry; a self-signed stand-in until the first",
  });
  const certbot = certificateOutputs(demoWithCertbotPlan().hosts)["demo.fiscalismia.com"]!;
  assert.equal(certbot.source, "host");
  assert.match(certbot.issuer, /^whatever issued the files in \/etc\/letsencrypt\/live\/demo\.fiscalismia\.com/);
  const selfSigned = Object.values(certificateOutputs(exampleOnHaproxy().hosts));
  assert.ok(selfSigned.length > 0 && selfSigned.every((c) => c.source === "self-signed" && /browsers will not trust it/.test(c.issuer)));
});
