import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ACME_HEADER, CERTIFICATE_EXPIRES_HEADER, CERTIFICATE_HEADER, checkInfoText, parseHealthHeaders } from "../../contract/certificate-info";
import { HealthCheckConfig, ProxyConfig } from "../../contract/proxy-config";
import { validateProxyConfig } from "../../proxy/config/validate";
import { CheckResult, initialHealth, nextHealth, statusText } from "../../proxy/health/check-state";
import { HealthMonitor } from "../../proxy/health/monitor";
import { runCheck } from "../../proxy/health/run-check";
import { memoryLogger } from "../../proxy/log/logger";
import { ManagedProcess } from "../../lab/process";
import { selfSignedCertificate } from "../../lab/tls";
import { freePort, waitFor } from "./helpers/harness";

describe("health state machine (HAProxy's counter)", () => {
  it("starts UP with one check to prove it: a single failure at start is DOWN", () => {
    const s = initialHealth(2);
    assert.deepEqual(nextHealth(s, false, 2, 3), { health: 0, up: false });
    assert.deepEqual(nextHealth(s, true, 2, 3), { health: 4, up: true });
  });

  it("an established server needs `fall` failures in a row, a down one `rise` passes", () => {
    const rise = 2;
    const fall = 3;
    let s = nextHealth(initialHealth(rise), true, rise, fall);
    const seen: string[] = [];
    for (const passed of [false, false, true, false, false, false, true, true, true]) {
      s = nextHealth(s, passed, rise, fall);
      seen.push(statusText(s, rise, fall));
    }
    // A pass while going down restores full health (HAProxy jumps to the top once health >= rise).
    assert.deepEqual(seen, ["UP 2/3", "UP 1/3", "UP", "UP 2/3", "UP 1/3", "DOWN", "DOWN 1/2", "UP", "UP"]);
  });

  it("rise 1, fall 1 flips on every change", () => {
    let s = initialHealth(1);
    s = nextHealth(s, false, 1, 1);
    assert.equal(s.up, false);
    s = nextHealth(s, true, 1, 1);
    assert.equal(s.up, true);
  });
});

const check = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({ type: "tls", intervalMs: 1000, timeoutMs: 800, fall: 1, rise: 1, sendProxyV2: true, ...over });

describe("checks against a real nginx `ssl proxy_protocol` with a health path (loopback)", () => {
  let dir: string;
  let nginx: ManagedProcess;
  let port: number;
  // 60 days and an hour out: the whole-day count cannot change between nginx's answer and the assertion.
  const expires = Math.floor(Date.now() / 1000) + 60 * 86400 + 3600;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-health-"));
    const { certPath: cert, keyPath: key } = await selfSignedCertificate(dir, ["site.example"]);
    port = await freePort();
    writeFileSync(
      path.join(dir, "nginx.conf"),
      `worker_processes 1; user root; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  log_format pp '$request host=$host sni=$ssl_server_name pp=$proxy_protocol_addr';
  access_log ${dir}/access.log pp;
  server {
    listen 127.0.0.1:${port} ssl proxy_protocol;
    ssl_certificate ${cert}; ssl_certificate_key ${key};
    location = /healthz { return 200 "ok\\n"; }
    location = /broken { return 503 "no\\n"; }
    location = /certified {
      add_header ${CERTIFICATE_HEADER} "issuer test; names site.example" always;
      add_header ${CERTIFICATE_EXPIRES_HEADER} ${expires} always;
      add_header ${ACME_HEADER} "no run yet" always;
      return 200 "ok\\n";
    }
  }
}
`,
    );
    nginx = await ManagedProcess.start({ name: "nginx", argv: ["nginx", "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], logPath: path.join(dir, "nginx.log") });
    // Wait for nginx with the cheapest check there is; the cases below assume it answers.
    const until = Date.now() + 5000;
    for (;;) {
      const r = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ type: "tcp" }));
      if (r.passed) break;
      if (Date.now() > until) throw new Error(`nginx never accepted on port ${port}: last check ${JSON.stringify(r)}; log: ${readFileSync(path.join(dir, "nginx.log"), "utf8").slice(-500)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  });
  after(async () => {
    // SIGTERM to nginx's process group first, then SIGKILL to the group: no worker is left orphaned on the port.
    await nginx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("PROXY v2 LOCAL + TLS with the SNI + GET the health path with Host: L7OK, code 200", async () => {
    const r = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example", http: { path: "/healthz", expectStatus: 200 } }));
    assert.equal(r.code, "L7OK", JSON.stringify(r));
    assert.equal(r.httpStatus, 200);
    await waitFor(() => readFileSync(path.join(dir, "access.log"), "utf8").includes("GET /healthz HTTP/1.0 host=site.example sni=site.example"), 2000, "access log line");
  });

  it("the certificate headers nginx adds to the health location become the check's info", async () => {
    const r = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example", http: { path: "/certified", expectStatus: 200 } }));
    assert.equal(r.code, "L7OK", JSON.stringify(r));
    const lines = [`${CERTIFICATE_HEADER}: issuer test; names site.example`, `${CERTIFICATE_EXPIRES_HEADER}: ${expires}`, `${ACME_HEADER}: no run yet`];
    assert.equal(r.info, checkInfoText(parseHealthHeaders(lines, Date.now())));
    assert.equal(r.info, `cert 60d left (ok) until ${new Date(expires * 1000).toISOString().slice(0, 10)}; acme no run yet; issuer test; names site.example`);
    // The plain health path of an older web server: no headers, dashes.
    const plain = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example", http: { path: "/healthz", expectStatus: 200 } }));
    assert.equal(plain.info, "cert -d left (-) until -; acme -; -");
  });

  it("a wrong status is L7STS with the code and reason", async () => {
    const r = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example", http: { path: "/broken", expectStatus: 200 } }));
    assert.deepEqual([r.code, r.passed, r.httpStatus, r.info], ["L7STS", false, 503, "Service Temporarily Unavailable"]);
  });

  it("TLS alone is L6OK; without the PROXY header nginx closes: L6RSP", async () => {
    assert.equal((await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example" }))).code, "L6OK");
    const r = await runCheck({ name: "s", address: "127.0.0.1", port }, check({ sni: "site.example", sendProxyV2: false }));
    assert.equal(r.code, "L6RSP", JSON.stringify(r));
  });

  it("a closed port is L4CON Connection refused; a silent peer times out at the layer it reached", async () => {
    const closed = await freePort();
    const r = await runCheck({ name: "s", address: "127.0.0.1", port: closed }, check());
    assert.deepEqual([r.code, r.info], ["L4CON", "Connection refused"]);
    const silent = net.createServer((s) => s.on("error", () => undefined));
    await new Promise<void>((res) => silent.listen(0, "127.0.0.1", res));
    const sp = (silent.address() as net.AddressInfo).port;
    assert.equal((await runCheck({ name: "s", address: "127.0.0.1", port: sp }, check({ timeoutMs: 200 }))).code, "L6TOUT");
    assert.equal((await runCheck({ name: "s", address: "127.0.0.1", port: sp }, check({ type: "tcp", timeoutMs: 200, http: { path: "/", expectStatus: 200 } }))).code, "L7TOUT");
    silent.close();
  });
});

describe("health monitor", () => {
  const config = (servers: number): ProxyConfig => {
    const r = validateProxyConfig({
      listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: 1 }] }],
      routes: [],
      backends: [
        {
          name: "be",
          servers: Array.from({ length: servers }, (_, i) => ({ name: `s${i}`, address: "127.0.0.1", port: 1000 + i })),
          healthCheck: { intervalMs: 20, timeoutMs: 10, fall: 2, rise: 1 },
        },
      ],
    });
    if (!r.ok) throw new Error(r.errors.join("\n"));
    return r.config;
  };

  it("reports DOWN sets on change and logs state changes in HAProxy's words", async () => {
    const failing = new Set(["s1"]);
    const fake = async (server: { name: string }): Promise<CheckResult> =>
      failing.has(server.name) ? { code: "L4CON", passed: false, info: "Connection refused", durationMs: 0 } : { code: "L7OK", passed: true, info: "OK", httpStatus: 200, durationMs: 1 };
    const logger = memoryLogger();
    const changes: string[][] = [];
    const m = new HealthMonitor(logger, (down) => changes.push([...down]), fake);
    m.apply(config(2));
    await waitFor(() => changes.some((c) => c.includes("be/s1")), 2000, "s1 DOWN");
    assert.ok(logger.events.some((e) => e.msg === 'Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms. 1 active and 0 backup servers left.'), JSON.stringify(logger.events));
    failing.clear();
    await waitFor(() => changes.at(-1)?.length === 0, 2000, "s1 UP");
    assert.ok(logger.events.some((e) => e.msg.startsWith("Server be/s1 is UP, reason: Layer7 check passed, code: 200, info: \"OK\"")));
    const view = m.view().find((v) => v.server === "s1")!;
    assert.equal(view.status, "UP");
    assert.equal(view.last?.code, "L7OK");
    // A server removed from the config is forgotten; its checks stop.
    failing.add("s0");
    m.apply(config(1));
    await waitFor(() => changes.at(-1)?.join() === "be/s0", 2000, "s0 DOWN");
    assert.ok(logger.events.some((e) => e.msg === "backend be has no server available!"));
    assert.deepEqual(m.view().map((v) => v.server), ["s0"]);
    m.stop();
  });
});
