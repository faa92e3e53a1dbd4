// The doctor's verdicts from what the probes print, case by case: each failure named at its
// hop with its reason and fix, and the cases a live sandbox cannot stage (DNS, clock skew,
// rp_filter). The probes themselves run for real in test/e2e/ingress.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { diagnoseRoute, ipv4In, readCurl, readListeners, type LbFacts, type OutsideFacts, type RouteFacts, type ServerFacts } from "../../doctor/verdicts";
import { parseProbe } from "../../doctor/probe-scripts";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const NOW = 1_800_000_000;
/** A date as curl -v prints a certificate's: "Feb  1 00:00:00 2024 GMT". */
function curlDate(epochS: number): string {
  const d = new Date(epochS * 1000);
  const month = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  return `${month} ${String(d.getUTCDate()).padStart(2, " ")} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()} GMT`;
}

const route: RouteFacts = { hostname: "a.example", stack: "prod", backend: "prod_web_443", server: "web", address: "10.0.0.2", port: 443, healthPath: "/healthz", lbPrivateIp: "10.0.1.3", engine: "haproxy" };
const outside = (over: Partial<OutsideFacts> = {}): OutsideFacts => ({ lbIpv4: "203.0.113.5", dns: { addresses: ["203.0.113.5"] }, lb443: "ok", lb80: "ok", nowS: NOW, ...over });

const GOOD_CURL = [
  "*   Trying 10.0.0.2:443...",
  "* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384",
  "* Server certificate:",
  "*  subject: CN=a.example",
  `*  expire date: ${curlDate(NOW + 60 * 86400)}`,
  "*  issuer: C=US; O=Let's Encrypt; CN=R11",
  "HTTP/1.1 200 OK\r",
  "x-ingress-certificate: issuer R11; names a.example\r",
  "HTTPCODE=200",
].join("\n");

function lbProbe(over: Record<string, string> = {}): string {
  const lines = { clock: String(NOW), unit: "active", "tcp.0": "0 ", "proxy.0": b64(GOOD_CURL), "plain.0": b64("curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL\nHTTPCODE=000"), ...over };
  return Object.entries(lines).map(([k, v]) => `${k}\t${v}`).join("\n");
}
const lb = (probe = lbProbe(), view: LbFacts["view"] = { status: "UP", checkStatus: "L7OK", checkDescription: "Layer7 check passed", lastCheck: "", checkCode: 200 }): LbFacts => ({ index: 0, unit: "haproxy", probe: parseProbe(probe), ...(view ? { view } : {}) });

const SITE = "server {\n    listen 443 ssl proxy_protocol;\n    server_name a.example;\n    set_real_ip_from 10.0.1.3;\n    real_ip_header proxy_protocol;\n}\n";
const NFT = "table inet ingress {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 443 ip saddr 10.0.1.3 accept comment \"site\"\n\t}\n}\n";
function serverProbe(over: Record<string, string> = {}): ServerFacts {
  const lines = {
    clock: String(NOW),
    ip_forward: "0",
    rp_filter: "all=0 default=2 eth0=2 ",
    listen: b64('LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:(("nginx",pid=10,fd=6),("nginx",pid=9,fd=6))\n'),
    nft: b64(NFT),
    iptables: b64(""),
    nginx: "active",
    sites: b64(SITE),
    ...over,
  };
  return { probe: parseProbe(Object.entries(lines).map(([k, v]) => `${k}\t${v}`).join("\n")) };
}
const hop = (r: ReturnType<typeof diagnoseRoute>, name: string) => r.hops.find((h) => h.hop === name)!;

test("a healthy route: every hop ok, not broken", () => {
  const r = diagnoseRoute(route, outside(), lb(), serverProbe());
  assert.deepEqual(r.hops.filter((h) => h.status !== "ok").map((h) => `${h.hop}: ${h.detail}`), []);
  assert.equal(r.broken, false);
  assert.match(hop(r, "TLS (SNI)").detail, /CN=a\.example, issuer C=US; O=Let's Encrypt; CN=R11, expires .* \(issuer R11; names a\.example\)/);
});

test("DNS: no record, or a record that is not the LB's address, is a broken route with the record to create", () => {
  const none = diagnoseRoute(route, outside({ dns: { error: "no A record" } }), lb(), serverProbe());
  assert.equal(hop(none, "dns").status, "fail");
  assert.match(hop(none, "dns").fix!, /a\.example -> 203\.0\.113\.5/);
  const wrong = diagnoseRoute(route, outside({ dns: { addresses: ["198.51.100.9"] } }), lb(), serverProbe());
  assert.match(hop(wrong, "dns").detail, /resolves to 198\.51\.100\.9, not the LB \(203\.0\.113\.5\)/);
  assert.equal(wrong.broken, true);
  const extra = diagnoseRoute(route, outside({ dns: { addresses: ["203.0.113.5", "198.51.100.9"] } }), lb(), serverProbe());
  assert.equal(hop(extra, "dns").status, "warn");
  const aaaa = diagnoseRoute(route, outside({ lbIpv6: "2001:db8::1", dns6: { addresses: ["2001:db8::9"] } }), lb(), serverProbe());
  assert.match(hop(aaaa, "dns (AAAA)").detail, /has AAAA 2001:db8::9, not the LB's 2001:db8::1/);
  assert.equal(aaaa.broken, true);
  const noAaaa = diagnoseRoute(route, outside({ lbIpv6: "2001:db8::1", dns6: { addresses: [] } }), lb(), serverProbe());
  assert.equal(hop(noAaaa, "dns (AAAA)").status, "warn");
  assert.equal(noAaaa.broken, false);
});

test("the original failure: a DNAT hop with forwarding off, named with its rule and the fix", () => {
  const r = diagnoseRoute(
    route,
    outside(),
    lb(lbProbe({ "tcp.0": "124 " }), { status: "DOWN", checkStatus: "L4TOUT", checkDescription: "Layer4 timeout", lastCheck: "" }),
    serverProbe({ listen: b64(""), nft: b64(`${NFT}table ip nat {\n\tchain prerouting {\n\t\ttcp dport 443 dnat to 10.88.0.2:443\n\t}\n}\n`) }),
  );
  assert.match(hop(r, "engine view").detail, /DOWN, last check L4TOUT "Layer4 timeout" \(the LB's connection got no answer: a firewall drops it, or a DNAT hop with forwarding off\)/);
  assert.match(hop(r, "tcp LB -> server").detail, /timeout \(L4TOUT\): port 443 is DNATed \(nftables: tcp dport 443 dnat to 10\.88\.0\.2:443\) and net\.ipv4\.ip_forward is 0/);
  assert.match(hop(r, "tcp LB -> server").fix!, /Network=host/);
  assert.equal(hop(r, "forwarding").status, "fail");
  assert.equal(hop(r, "PROXY header").status, "skip");
});

test("iptables too: a DROP for the port, and DNAT rules written by docker or podman's iptables backend", () => {
  const r = diagnoseRoute(route, outside(), lb(lbProbe({ "tcp.0": "124 " })), serverProbe({ iptables: b64("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 443 -j DROP\nCOMMIT\n") }));
  assert.match(hop(r, "tcp LB -> server").detail, /iptables: -A INPUT -p tcp -m tcp --dport 443 -j DROP/);
  const d = diagnoseRoute(route, outside(), lb(lbProbe({ "tcp.0": "124 " })), serverProbe({ iptables: b64("*nat\n-A DOCKER -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.17.0.2:443\nCOMMIT\n") }));
  assert.match(hop(d, "tcp LB -> server").detail, /port 443 is DNATed \(iptables: /);
});

test("refused: nothing listens, with nginx's unit state; the engine's L4CON explained", () => {
  const r = diagnoseRoute(route, outside(), lb(lbProbe({ "tcp.0": "1 bash: line 1: connect: Connection refused" }), { status: "DOWN", checkStatus: "L4CON", checkDescription: "Layer4 connection problem", lastCheck: "Connection refused" }), serverProbe({ listen: b64(""), nginx: "failed" }));
  assert.match(hop(r, "tcp LB -> server").detail, /refused \(L4CON\): nothing listens on port 443 of web; nginx\.service is failed/);
  assert.match(hop(r, "server listener").fix!, /systemctl start nginx\.service/);
});

test("TLS: an expired certificate fails, one in its last 14 days warns", () => {
  const at = (days: number) => GOOD_CURL.replace(/expire date: .*/, `expire date: ${curlDate(NOW + days * 86400)}`);
  const expired = diagnoseRoute(route, outside(), lb(lbProbe({ "proxy.0": b64(at(-3)) })), serverProbe());
  assert.match(hop(expired, "TLS (SNI)").detail, /expired 3 days ago/);
  assert.equal(expired.broken, true);
  const soon = diagnoseRoute(route, outside(), lb(lbProbe({ "proxy.0": b64(at(5)) })), serverProbe());
  assert.equal(hop(soon, "TLS (SNI)").status, "warn");
  assert.equal(soon.broken, false);
});

test("a listener without proxy_protocol: TLS without the header works, after it fails", () => {
  const r = diagnoseRoute(
    route,
    outside(),
    lb(lbProbe({ "proxy.0": b64("* OpenSSL/3.0.11: error:0A00010B:SSL routines::wrong version number\ncurl: (35) OpenSSL/3.0.11: error:0A00010B:SSL routines::wrong version number\nHTTPCODE=000"), "plain.0": b64(GOOD_CURL) })),
    serverProbe({ sites: b64(SITE.replace(" proxy_protocol;", ";")) }),
  );
  assert.match(hop(r, "PROXY header").detail, /does not expect PROXY \("listen 443 ssl;"\) \(L6RSP\)/);
  assert.match(hop(r, "real client address").detail, /no proxy_protocol/);
});

test("the real client address: set_real_ip_from must cover the LB's private address (CIDRs count)", () => {
  const cidr = diagnoseRoute(route, outside(), lb(), serverProbe({ sites: b64(SITE.replace("set_real_ip_from 10.0.1.3;", "set_real_ip_from 10.0.0.0/16;")) }));
  assert.equal(hop(cidr, "real client address").status, "ok");
  const other = diagnoseRoute(route, outside(), lb(), serverProbe({ sites: b64(SITE.replace("set_real_ip_from 10.0.1.3;", "set_real_ip_from 10.9.0.1;")) }));
  assert.match(hop(other, "real client address").detail, /from 10\.9\.0\.1, not from the LB \(10\.0\.1\.3\)/);
  assert.ok(ipv4In("10.0.1.3", "10.0.0.0/16") && !ipv4In("10.1.0.1", "10.0.0.0/16") && ipv4In("1.2.3.4", "0.0.0.0/0"));
});

test("the LB's engine stopped: the route breaks at the LB, naming the unit; a clock off and strict rp_filter are said", () => {
  const down = diagnoseRoute(route, outside({ lb443: "refused" }), lb(lbProbe({ unit: "inactive" }), undefined), serverProbe({ clock: String(NOW + 300), rp_filter: "all=1 eth0=1 " }));
  assert.match(hop(down, "lb listens").detail, /:443 refused; haproxy\.service is inactive/);
  assert.match(hop(down, "lb listens").fix!, /systemctl start haproxy\.service on the LB/);
  assert.equal(hop(down, "engine view").status, "fail");
  assert.match(hop(down, "clock").detail, /300 s off/);
  assert.match(hop(down, "rp_filter").detail, /strict reverse-path filtering on all, eth0/);
});

test("curl's and ss's output read as they print it", () => {
  const c = readCurl(GOOD_CURL);
  assert.equal(c.code, 200);
  assert.equal(c.headers.get("x-ingress-certificate"), "issuer R11; names a.example");
  assert.deepEqual(readListeners('LISTEN 0 4096 [::]:8443 [::]:* users:(("conmon",pid=3,fd=5))\n'), [{ address: "[::]", port: 8443, processes: ["conmon"] }]);
});

test("a drop rule for other sources is not blamed, a policy-drop chain is only a warning once the LB got through; an unprobed LB is a failure", () => {
  const hardened = `${NFT}table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tip saddr != 10.0.1.3 tcp dport 443 drop\n\t\ttcp dport 443 accept\n\t}\n}\n`;
  const r = diagnoseRoute(route, outside(), lb(), serverProbe({ nft: b64(hardened) }));
  assert.equal(hop(r, "server firewall").status, "warn", JSON.stringify(hop(r, "server firewall")));
  assert.doesNotMatch(hop(r, "server firewall").detail, /saddr !=/);
  assert.equal(r.broken, false);
  const unprobed = diagnoseRoute(route, outside(), { index: 0, unit: "haproxy", unreachable: "ssh: Permission denied (publickey)" }, serverProbe());
  assert.equal(hop(unprobed, "engine view").status, "fail");
  assert.equal(unprobed.broken, true);
});

test("the clock is compared with when the server's probe ran, not when the report is made", () => {
  const r = diagnoseRoute(route, outside({ nowS: NOW + 90 }), lb(), { ...serverProbe(), probedAtS: NOW });
  assert.equal(hop(r, "clock").status, "ok", hop(r, "clock").detail);
});
