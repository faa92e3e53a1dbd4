/**
 * The ts proxy's Prometheus endpoint as the bundle serves it (two worker threads): scraped with
 * curl from the allowed namespace and read by Prometheus' own parser (python3-prometheus-client),
 * refused from every other one. Client, LB, web server, scraper and a neighbour each sit in a
 * network namespace of this test; the web server is a real nginx `listen ... ssl proxy_protocol`
 * whose health location sends the certificate headers apply.sh writes.
 */
import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CERTIFICATE_EXPIRES_HEADER, CERTIFICATE_HEADER, ACME_HEADER } from "../../contract/certificate-info";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { pollUntil } from "../../lab/command";
import { sandboxNginxMain, startNginx, waitForListening } from "../../lab/daemons";
import type { Netns } from "../../lab/netns";
import { RoutedNetwork } from "../../lab/network";
import type { ManagedProcess } from "../../lab/process";
import { parseExposition, sampleValue, samplesOf, type MetricFamily } from "../../lab/prometheus-text";
import { Sandbox } from "../../lab/sandbox";
import { selfSignedCertificate } from "../../lab/tls";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { link, logLines, namespaces } from "./helpers/sandbox";

const addr = {
  client: "10.78.1.2",
  lbPublic: "10.78.1.1",
  lbPrivate: "10.79.1.3",
  /** A second private address of the LB, not there when the proxy starts. */
  lbLate: "10.79.1.4",
  web: "10.79.0.3",
  scraper: "10.79.0.2",
  neighbour: "10.79.0.4",
};
const METRICS_PORT = 8405;
/** The web server's certificate's notAfter, as apply.sh writes it for nginx to send. */
const EXPIRES = Math.floor(Date.now() / 1000) + 40 * 86_400;
const SESSIONS = 5;

describe("the ts proxy's /metrics, scraped and parsed as Prometheus would", { timeout: 60_000 }, () => {
  let sb: Sandbox;
  let ns: Record<"client" | "lb" | "web" | "scraper" | "neighbour", Netns>;
  let proxy: ManagedProcess;
  let configFile: string;
  let config: ProxyConfigInput;
  const started = Math.floor(Date.now() / 1000);

  const curl = (from: Netns, args: readonly string[]) => from.exec(["curl", "-sS", "--max-time", "3", ...args], { allowFailure: true });
  const scrape = async (from: Netns = ns.scraper, address = addr.lbPrivate): Promise<MetricFamily[]> => {
    const r = await curl(from, ["-f", `http://${address}:${METRICS_PORT}/metrics`]);
    assert.equal(r.code, 0, `scrape of ${address} from ${from.host}: ${r.stderr}`);
    return parseExposition(r.stdout);
  };
  /** Scrapes until `ready` holds for what was read: the checks and sessions settle on their own schedule. */
  const scrapeUntil = (what: string, ready: (m: MetricFamily[]) => boolean) =>
    pollUntil(what, async () => {
      const m = await scrape();
      return ready(m) ? m : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
  const web = { backend: "web", server: "web01" };
  const dead = { backend: "dead", server: "gone" };

  /** Writes the config as apply.sh does (rename), so the proxy's poll sees one whole file. */
  const writeConfig = (text: string) => {
    writeFileSync(`${configFile}.tmp`, text);
    renameSync(`${configFile}.tmp`, configFile);
  };

  before(async () => {
    const bundle = buildProxyScript();
    sb = await Sandbox.create({ prefix: "pxm" });
    ns = await namespaces(sb, ["client", "lb", "web", "scraper", "neighbour"]);
    await link(sb, { ns: ns.client, ifname: "up", addresses: [`${addr.client}/24`] }, { ns: ns.lb, ifname: "pub", addresses: [`${addr.lbPublic}/24`] });
    const priv = await RoutedNetwork.create(sb, { name: "priv", ipRange: "10.79.0.0/16" });
    await priv.attach(ns.lb, { ip: addr.lbPrivate, ifname: "priv" });
    for (const role of ["web", "scraper", "neighbour"] as const) await priv.attach(ns[role], { ip: addr[role] });

    const certs = await sb.subdir("certs");
    const { certPath, keyPath } = await selfSignedCertificate(certs, ["up.test"]);
    await startNginx(sb, ns.web, {
      name: "nginx",
      config: sandboxNginxMain({
        http: `  server {
    listen ${addr.web}:443 ssl proxy_protocol;
    ssl_certificate ${certPath};
    ssl_certificate_key ${keyPath};
    location = /healthz {
      add_header ${CERTIFICATE_HEADER} "issuer test; names up.test" always;
      add_header ${CERTIFICATE_EXPIRES_HEADER} ${EXPIRES} always;
      add_header ${ACME_HEADER} ok always;
      return 200 "ok\\n";
    }
    location / { return 200 "hello from web01\\n"; }
  }
`,
      }),
      waitFor: [{ port: 443 }],
    });

    const check = { type: "tls" as const, intervalMs: 300, timeoutMs: 1000, fall: 1, rise: 1, sni: "up.test", http: { path: "/healthz" } };
    config = {
      global: { workers: 2 },
      listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: addr.lbPublic, port: 443 }] }],
      routes: [{ host: "up.test", backend: "web" }],
      backends: [
        { name: "web", servers: [{ name: "web01", address: addr.web, port: 443 }], healthCheck: check },
        // Nothing listens there: L4CON, DOWN.
        { name: "dead", servers: [{ name: "gone", address: addr.web, port: 444 }], healthCheck: check },
      ],
      metrics: {
        binds: [{ address: addr.lbPrivate, port: METRICS_PORT }, { address: addr.lbLate, port: METRICS_PORT }],
        allowedSources: [`${addr.scraper}/32`, `${addr.lbPrivate}/32`],
      },
    };
    configFile = path.join(await sb.subdir("proxy"), "proxy.json");
    writeConfig(JSON.stringify(config));
    proxy = await ns.lb.spawn("proxy", [NODE_CURRENT, bundle, "--config", configFile]);
    await waitForListening(ns.lb, [{ port: 443 }, { address: addr.lbPrivate, port: METRICS_PORT }], { process: proxy, timeoutMs: 10_000 });
  });

  after(async () => {
    await sb?.teardown();
  });

  it("counts each session through it, per frontend, backend and server, with their bytes", async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const r = await curl(ns.client, ["-k", "--resolve", `up.test:443:${addr.lbPublic}`, "https://up.test/"]);
      assert.equal(r.stdout, "hello from web01\n", r.stderr);
    }
    // A session's counts land when it ends, a moment after curl has gone.
    const m = await scrapeUntil(`${SESSIONS} ended sessions of web/web01`, (x) => sampleValue(x, "ingress_server_sessions_total", web) === SESSIONS);
    assert.equal(sampleValue(m, "ingress_frontend_sessions_total", { frontend: "https" }), SESSIONS);
    assert.equal(sampleValue(m, "ingress_backend_sessions_total", { backend: "web" }), SESSIONS);
    assert.equal(sampleValue(m, "ingress_server_sessions_total", dead), 0);
    assert.equal(sampleValue(m, "ingress_server_current_sessions", web), 0);
    assert.equal(sampleValue(m, "ingress_current_connections"), 0);
    // Five TLS handshakes and requests each way: more than a few bytes, whatever TLS version was picked.
    for (const name of ["ingress_server_bytes_in_total", "ingress_server_bytes_out_total"]) assert.ok(sampleValue(m, name, web)! > SESSIONS * 200, `${name}: ${sampleValue(m, name, web)}`);
    assert.equal(sampleValue(m, "ingress_frontend_bytes_in_total", { frontend: "https" }), sampleValue(m, "ingress_server_bytes_in_total", web));
    assert.equal(sampleValue(m, "ingress_frontend_rate_limited_total", { frontend: "https" }), 0);
    assert.equal(sampleValue(m, "ingress_workers"), 2);
    const types = new Map(m.map((f) => [f.name, f.type]));
    assert.equal(types.get("ingress_server_sessions"), "counter");
    assert.equal(types.get("ingress_server_current_sessions"), "gauge");
  });

  it("reports an UP server's and a DOWN server's checks, and the certificate the UP one serves", async () => {
    const m = await scrapeUntil("web01 L7OK and gone L4CON", (x) =>
      sampleValue(x, "ingress_server_check_status", { ...web, state: "L7OK" }) === 1 && sampleValue(x, "ingress_server_check_status", { ...dead, state: "L4CON" }) === 1,
    );
    assert.equal(sampleValue(m, "ingress_server_up", web), 1);
    assert.equal(sampleValue(m, "ingress_server_up", dead), 0);
    assert.equal(sampleValue(m, "ingress_backend_up", { backend: "dead" }), 0);
    // One state at a time.
    assert.equal(samplesOf(m, "ingress_server_check_status", web).reduce((sum, s) => sum + s.value, 0), 1);
    assert.equal(sampleValue(m, "ingress_server_check_code", web), 200);
    assert.equal(sampleValue(m, "ingress_server_check_code", dead), undefined, "no HTTP status without an HTTP answer");
    const duration = sampleValue(m, "ingress_server_check_duration_seconds", web)!;
    assert.ok(duration >= 0 && duration <= 1, `check duration ${duration}`);
    assert.equal(sampleValue(m, "ingress_server_certificate_expiry_timestamp_seconds", web), EXPIRES);
    assert.equal(sampleValue(m, "ingress_server_certificate_expiry_timestamp_seconds", dead), undefined);
  });

  it("has the process's start time, and counts reloads accepted and refused; a removed backend leaves no series", async () => {
    const startTime = sampleValue(await scrape(), "process_start_time_seconds")!;
    assert.ok(startTime >= started - 1 && startTime <= Date.now() / 1000, `process_start_time_seconds ${startTime}, test started ${started}`);
    const seen = logLines(proxy).length;
    const reloaded = (msg: string) => pollUntil(msg, async () => (logLines(proxy).slice(seen).some((l) => l.includes(msg)) ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
    writeConfig(JSON.stringify({ ...config, backends: config.backends.filter((b) => b.name !== "dead") }));
    await reloaded("config accepted");
    writeConfig("{ not json");
    await reloaded("config reload refused");
    const m = await scrape();
    assert.equal(sampleValue(m, "ingress_config_reloads_total", { result: "accepted" }), 1);
    assert.equal(sampleValue(m, "ingress_config_reloads_total", { result: "refused" }), 1);
    assert.deepEqual(samplesOf(m, "ingress_server_up", { backend: "dead" }), []);
    assert.equal(sampleValue(m, "ingress_server_sessions_total", web), SESSIONS, "the kept backend keeps its counts");
  });

  it("answers the allowed source only: 403 to a neighbour on the same network, nothing on the public address", async () => {
    const neighbour = await curl(ns.neighbour, ["-o", "/dev/null", "-w", "%{http_code}", `http://${addr.lbPrivate}:${METRICS_PORT}/metrics`]);
    assert.equal(neighbour.stdout, "403", neighbour.stderr);
    // Not bound there at all: the connection is refused.
    const pub = await curl(ns.client, ["-o", "/dev/null", "-w", "%{http_code}", `http://${addr.lbPublic}:${METRICS_PORT}/metrics`]);
    assert.equal(pub.code, 7, `curl from the client: exit ${pub.code}, ${pub.stdout} ${pub.stderr}`);
    const other = await curl(ns.scraper, ["-o", "/dev/null", "-w", "%{http_code}", `http://${addr.lbPrivate}:${METRICS_PORT}/stats`]);
    assert.equal(other.stdout, "404");
  });

  it("binds an address that comes up after it started", async () => {
    assert.ok(logLines(proxy).some((l) => l.includes("metrics endpoint cannot bind yet") && l.includes(addr.lbLate)), "the failed bind is said once");
    await ns.lb.addAddress("priv", `${addr.lbLate}/32`);
    const m = await pollUntil("a scrape of the late address", async () => {
      const r = await curl(ns.scraper, ["-f", `http://${addr.lbLate}:${METRICS_PORT}/metrics`]);
      return r.code === 0 ? parseExposition(r.stdout) : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    assert.equal(sampleValue(m, "ingress_server_up", web), 1);
    assert.ok(logLines(proxy).some((l) => l.includes("metrics endpoint bound") && l.includes(addr.lbLate)));
  });
});
