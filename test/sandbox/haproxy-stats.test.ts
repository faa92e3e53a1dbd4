import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { firstHost, ipv4InCidr, parseIpv4Cidr, parseShowStat, splitCsvLine } from "../../lab";

// Captured from haproxy 2.6.12 (Debian 12): backend b1, server s1 refused.
const CAPTURE = readFileSync(join(__dirname, "fixtures", "show-stat-haproxy-2.6.csv"), "utf8");

describe("parseShowStat", () => {
  it("reads the server row of a real haproxy 2.6 reply and skips the backend row", () => {
    assert.deepEqual(parseShowStat(CAPTURE), [
      {
        backend: "b1",
        server: "s1",
        status: "DOWN",
        checkStatus: "L4CON",
        checkRunning: false,
        checkDescription: "Layer4 connection problem",
        lastCheck: "Connection refused",
        checkDurationMs: 0,
      },
    ]);
  });

  it("finds columns by name, marks a running check, and reads quoted fields", () => {
    const csv = [
      "# svname,pxname,type,status,check_status,check_code,check_duration,last_chk,check_desc,",
      'web1,be_web,2,UP,* L7OK,200,3,"HTTP status check returned code <3C>200<3E>, with ""ok""",Layer7 check passed,',
      "",
    ].join("\n");
    assert.deepEqual(parseShowStat(csv), [
      {
        backend: "be_web",
        server: "web1",
        status: "UP",
        checkStatus: "L7OK",
        checkRunning: true,
        checkDescription: "Layer7 check passed",
        lastCheck: 'HTTP status check returned code <3C>200<3E>, with "ok"',
        checkCode: 200,
        checkDurationMs: 3,
      },
    ]);
  });

  it("rejects a reply that is not show stat, with the reply in the message", () => {
    assert.throws(() => parseShowStat("Unknown command\n"), /not a "show stat" reply: Unknown command/);
    assert.throws(() => parseShowStat("# pxname,svname\n"), /"show stat" has no column status/);
  });

  it("splits CSV lines as HAProxy writes them", () => {
    assert.deepEqual(splitCsvLine("a,,b,"), ["a", "", "b", ""]);
    assert.deepEqual(splitCsvLine('"x,y",z'), ["x,y", "z"]);
    assert.deepEqual(splitCsvLine('""""'), ['"']);
  });
});

describe("IPv4 ranges", () => {
  it("puts the gateway at .1 and checks membership", () => {
    const prod = parseIpv4Cidr("172.24.0.0/16");
    assert.equal(firstHost(prod), "172.24.0.1");
    assert.equal(ipv4InCidr("172.24.255.254", prod), true);
    assert.equal(ipv4InCidr("172.25.0.1", prod), false);
    assert.throws(() => parseIpv4Cidr("172.24.0.1/16"), /host bits set/);
    assert.throws(() => parseIpv4Cidr("172.24.0.0/33"), /not an IPv4 CIDR/);
    assert.throws(() => parseIpv4Cidr("172.24.0.256/32"), /not an IPv4 address/);
  });
});
