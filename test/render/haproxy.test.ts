import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { assembleHaproxyMap, renderHaproxyConfig, renderHaproxyMap, renderHaproxyRoutes } from "../../render/haproxy";
import { renderErrorFile503 } from "../../render/errorfile";
import { pollUntil } from "../../lab/command";
import { startNginx, waitForListening } from "../../lab/daemons";
import { parseShowStat } from "../../lab/haproxy-stats";
import { parseExposition, sampleValue } from "../../lab/prometheus-text";
import type { Netns } from "../../lab/netns";
import { RoutedNetwork, Segment } from "../../lab/network";
import type { ManagedProcess } from "../../lab/process";
import { Sandbox } from "../../lab/sandbox";
import { selfSignedCertificate } from "../../lab/tls";
import { planStack, type HostPlan, type RouteFragment } from "../../topology";
import { haproxyCheck, STATS_ENV } from "./validators/binaries";
import { assertGolden } from "./validators/golden";
import { demoPlan, exampleOnHaproxy, examplePlan, ingressHost, prodPlan, prodTopology, withIngress } from "./validators/plans";
import { haveBinary, isRoot } from "./validators/sandbox";
import { haproxyFiles, stageHaproxy, stageNginx } from "./validators/stage";

const prod = prodPlan();
const demo = demoPlan();
const lb = ingressHost(prod);
const settings = lb.ingress!;
const demoFragment = demo.attach!.fragment;

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "render-haproxy-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function serverLines(routes: string): string[] {
  return routes.split("\n").filter((l) => /^\s+server\s/.test(l)).map((l) => l.trim());
}

describe("golden files", () => {
  it("prod LB: haproxy.cfg, its routes and map, the error file and the assembled routes.map", () => {
    for (const [rel, text] of haproxyFiles(lb)) assertGolden(`prod/loadbalancer/${rel}`, text);
  });

  it("demo: its routes as the prod LB renders them from the data demo pushes", () => {
    assertGolden("demo/lb-fragment/haproxy/routes.d/demo.cfg", renderHaproxyRoutes(demoFragment, settings));
    assertGolden("demo/lb-fragment/haproxy/routes.d/demo.map", renderHaproxyMap(demoFragment));
  });

  it("is deterministic", () => {
    assert.equal(renderHaproxyConfig(ingressHost(prodPlan())), renderHaproxyConfig(lb));
    assert.equal(renderHaproxyRoutes(demoPlan().attach!.fragment, settings), renderHaproxyRoutes(demoFragment, settings));
  });
});

describe("haproxy.cfg", () => {
  const cfg = renderHaproxyConfig(lb);
  const mapFetch = "req.ssl_sni,lower,map(/srv/ingress/current/haproxy/routes.map)";

  it("routes on the lowercased SNI through the assembled map", () => {
    assert.match(cfg, new RegExp(`^    use_backend %\\[${mapFetch.replace(/[.()[\]]/g, "\\$&")}\\]$`, "m"));
    assert.doesNotMatch(cfg, /default_backend/);
  });

  it("drops unknown or missing SNI and anything that is not a ClientHello", () => {
    const rules = cfg.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("tcp-request content") || l.startsWith("acl "));
    assert.deepEqual(rules, [
      "acl acme_challenge path_beg /.well-known/acme-challenge/",
      "acl acme_routed req.hdr(host),field(1,:),lower,map(/srv/ingress/current/haproxy/routes.map) -m found",
      "acl client_hello req.ssl_hello_type 1",
      `acl known_sni ${mapFetch} -m found`,
      "tcp-request content silent-drop if client_hello !known_sni",
      "tcp-request content accept if client_hello",
      "tcp-request content silent-drop",
      "acl stats_allowed src 198.51.100.7/32 127.0.0.1/32 ::1/128",
      "acl metrics_allowed src 172.24.0.2/32 172.24.1.3/32",
    ]);
    assert.match(cfg, /^    tcp-request inspect-delay 5s$/m);
  });

  it("rate-limits per source with the configured table", () => {
    assert.match(cfg, /^    stick-table type ipv6 size 500000 expire 1m store conn_rate\(3s\)$/m);
    // IPv6 per /64, IPv4 per address (test/proxy/ipv6-rate-limit.test.ts floods it).
    assert.match(cfg, /^    tcp-request connection track-sc0 src,ipmask\(32,64\)$/m);
    assert.match(cfg, /^    tcp-request connection silent-drop if \{ sc0_conn_rate ge 50 \}$/m);
    assert.match(cfg, /^    rate-limit sessions 128$/m);
  });

  it("port 80 holds at most an eighth of maxconn and limits each source like 443", () => {
    assert.match(cfg, /^    maxconn 4096$/m);
    const http = cfg.slice(cfg.indexOf("frontend http_ingress"), cfg.indexOf("frontend https_ingress"));
    assert.match(http, /^    maxconn 512$/m);
    assert.match(http, /^    tcp-request connection track-sc0 src,ipmask\(32,64\)$/m);
    assert.match(http, /^    tcp-request connection silent-drop if \{ sc0_conn_rate ge 50 \}$/m);
  });

  it("has no user or group line (the image already runs as haproxy)", () => {
    assert.doesNotMatch(cfg, /^\s*(user|group|uid|gid|daemon)\b/m);
  });

  it("logs to stdout in the original format", () => {
    assert.match(cfg, /^    log stdout format raw local0 info$/m);
    assert.ok(cfg.includes('log-format "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"'));
  });

  it("redirects http to https and uses the 503 error file", () => {
    assert.match(cfg, /^    http-request redirect scheme https code 301 unless acme_challenge$/m);
    assert.match(cfg, /^    errorfile 503 \/srv\/ingress\/current\/haproxy\/errors\/503\.http$/m);
  });

  it("sends ACME challenges for routed names to their server's responder and answers others 404", () => {
    const http = cfg.slice(cfg.indexOf("frontend http_ingress"), cfg.indexOf("frontend https_ingress"));
    const rules = http.split("\n").map((l) => l.trim()).filter((l) => /^(http-request|use_backend)/.test(l));
    assert.deepEqual(rules, [
      "http-request deny deny_status 404 if acme_challenge !acme_routed",
      "http-request redirect scheme https code 301 unless acme_challenge",
      "http-request set-var(txn.https_port) int(443) if acme_challenge",
      "use_backend acme:%[req.hdr(host),field(1,:),lower,map(/srv/ingress/current/haproxy/routes.map)] if acme_challenge",
    ]);
    const routes = renderHaproxyRoutes(lb.ingress!.fragment, lb.ingress!);
    assert.ok(routes.includes("backend acme:prod_frontend_443\n    mode http\n    timeout connect 5s\n    timeout server 30s\n"), routes);
    assert.match(routes, /^ {4}balance first\n {4}server frontend 172\.24\.0\.3:8402$/m);
    // An attached stack of an older release sends no responder: its challenges are redirected, as before.
    const older = { ...lb.ingress!.fragment, backends: lb.ingress!.fragment.backends.map((b) => ({ ...b, servers: b.servers.map(({ acmePort: _, ...s }) => s) })) };
    // To the LB's https port, which the frontend hands over (the backend cannot know it).
    assert.match(
      renderHaproxyRoutes(older, lb.ingress!),
      /^backend acme:prod_frontend_443\n {4}mode http\n {4}http-request redirect scheme https code 301 if \{ var\(txn\.https_port\) -m int 443 \}\n {4}http-request redirect location https:\/\/%\[req\.hdr\(host\),field\(1,:\)\]:%\[var\(txn\.https_port\)\]%\[pathq\] code 301$/m,
    );
  });

  it("keeps the port in the redirect when https is not on 443", () => {
    const topo = withIngress(prodTopology(), (i) => ({ ...i, ports: { http: 8080, https: 8443 } }));
    const other = renderHaproxyConfig(ingressHost(planStack(topo)));
    assert.match(other, /redirect location https:\/\/%\[req\.hdr\(host\),field\(1,:\)\]:8443%\[capture\.req\.uri\] code 301 unless acme_challenge$/m);
    assert.match(other, /^    bind :8080$/m);
    assert.match(other, /^    http-request set-var\(txn\.https_port\) int\(8443\) if acme_challenge$/m);
  });

  it("takes stats credentials from the environment and never holds a secret", () => {
    const auth = cfg.split("\n").filter((l) => l.includes("stats auth"));
    assert.deepEqual(auth, ['    stats auth "${STATS_USER}":"${STATS_PASSWORD}"']);
    assert.ok(!cfg.includes(STATS_ENV.STATS_PASSWORD));
    assert.match(cfg, /^    bind :8404$/m);
    assert.match(cfg, /^    http-request deny if !stats_allowed$/m);
  });

  it("has no stats section when stats are disabled", () => {
    const topo = withIngress(prodTopology(), (i) => ({ ...i, stats: { ...i.stats, enabled: false } }));
    assert.doesNotMatch(renderHaproxyConfig(ingressHost(planStack(topo))), /stats/);
  });

  it("serves HAProxy's exporter on the LB's private address only, to the scrapers, and 404 for any other path", () => {
    const metrics = cfg.slice(cfg.indexOf("frontend metrics"));
    const code = metrics.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    assert.deepEqual(code, [
      "frontend metrics",
      "mode http",
      "bind 172.24.1.3:8405 transparent",
      "option dontlog-normal",
      // The monitoring server (Pulumi.prod.yaml's scraper) and the LB itself.
      "acl metrics_allowed src 172.24.0.2/32 172.24.1.3/32",
      "http-request deny if !metrics_allowed",
      "http-request use-service prometheus-exporter if { path /metrics }",
      "http-request return status 404",
    ]);
    // Nothing else binds the metrics port, on any address.
    assert.equal(cfg.match(/^ {4}bind .*:8405\b/gm)?.length, 1);
  });

  it("binds every private address of the LB, and has no metrics frontend when metrics are disabled", () => {
    const off = withIngress(prodTopology(), (i) => ({ ...i, metrics: { ...i.metrics, enabled: false } }));
    assert.doesNotMatch(renderHaproxyConfig(ingressHost(planStack(off))), /metrics|8405/);
    const topo = prodTopology();
    const twoNets = {
      ...topo,
      networks: [...topo.networks, { name: "ops", ipRange: "10.50.0.0/16", subnets: [{ ipRange: "10.50.0.0/24" }], labels: {} }],
      ingress: topo.ingress.mode === "own" ? { ...topo.ingress, server: { ...topo.ingress.server, networks: { ...topo.ingress.server.networks, ops: "10.50.0.3" } } } : topo.ingress,
    };
    const both = renderHaproxyConfig(ingressHost(planStack(twoNets)));
    assert.deepEqual(both.match(/^ {4}bind .*:8405.*$/gm), ["    bind 172.24.1.3:8405 transparent", "    bind 10.50.0.3:8405 transparent"]);
  });

  it("refuses hosts that do not run haproxy", () => {
    assert.throws(() => renderHaproxyConfig(ingressHost(examplePlan())), /runs engine "ts", not haproxy/);
    assert.throws(() => renderHaproxyConfig(prod.hosts.find((h) => h.role === "web")!), /is not an ingress host/);
  });
});

describe("routes.d fragments", () => {
  const cases: [string, RouteFragment][] = [
    ["prod", settings.fragment],
    ["demo", demoFragment],
  ];
  for (const [name, fragment] of cases) {
    it(`${name}: every server sends PROXY v2 and is checked over TLS with its site's SNI`, () => {
      const routes = renderHaproxyRoutes(fragment, settings);
      for (const backend of fragment.backends) {
        const section = routes.split(/\n(?=backend )/).find((s) => s.startsWith(`backend ${backend.name}\n`));
        assert.ok(section, `backend ${backend.name} is rendered`);
        assert.match(section, /^    option httpchk$/m);
        assert.ok(section.includes(`    http-check send meth GET uri ${backend.check.path} hdr Host ${backend.check.sni}\n`));
        assert.match(section, /^    http-check expect status 200$/m);
        assert.match(section, /^    timeout check 2s$/m);
        const lines = serverLines(section);
        assert.equal(lines.length, backend.servers.length);
        backend.servers.forEach((s, i) => {
          const words = lines[i]!.split(" ");
          assert.deepEqual(words.slice(0, 3), ["server", s.name, `${s.address}:${s.port}`]);
          for (const w of ["send-proxy-v2", "check", "check-send-proxy", "check-ssl"]) assert.ok(words.includes(w), `${lines[i]} has ${w}`);
          assert.equal(words[words.indexOf("check-sni") + 1], backend.check.sni);
          assert.equal(words[words.indexOf("verify") + 1], "none");
          assert.deepEqual(words.slice(-6), ["inter", "5s", "fall", "3", "rise", "2"]);
        });
      }
    });
  }

  it("map: one sorted line per hostname naming its backend", () => {
    assert.equal(
      renderHaproxyMap(settings.fragment),
      "backend.fiscalismia.com prod_backend_443\nfiscalismia.com prod_frontend_443\nmonitoring.fiscalismia.com prod_monitoring_443\n",
    );
    assert.equal(renderHaproxyMap(demoFragment), "backend.demo.fiscalismia.com demo_demo_8443\ndemo.fiscalismia.com demo_demo_443\n");
  });
});

describe("assembleHaproxyMap", () => {
  it("concatenates the maps of every stack", () => {
    const maps = [renderHaproxyMap(settings.fragment), renderHaproxyMap(demoFragment)];
    assert.equal(assembleHaproxyMap(maps), maps.join(""));
  });

  it("rejects a hostname routed by two stacks, naming it", () => {
    const clash = "fiscalismia.com demo_demo_443\n";
    assert.throws(() => assembleHaproxyMap([renderHaproxyMap(settings.fragment), clash]), /hostname "fiscalismia\.com" is routed twice/);
  });

  it("rejects a malformed line", () => {
    assert.throws(() => assembleHaproxyMap(["a.example b c\n"]), /malformed line "a\.example b c"/);
  });
});

describe("503 error file", () => {
  const text = renderErrorFile503();
  it("is a complete HTTP/1.0 response with CRLF line ends and a matching Content-Length", () => {
    const [head, body] = text.split("\r\n\r\n") as [string, string];
    assert.ok(head.startsWith("HTTP/1.0 503 Service Unavailable\r\n"));
    assert.ok(!head.replace(/\r\n/g, "").includes("\n"), "every header line ends in CRLF");
    assert.equal(Number(/Content-Length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
  });
});

const haproxy32 = process.env.HAPROXY_32_BINARY;
describe("haproxy -c (Debian's 2.6; also HAPROXY_32_BINARY if set)", { skip: !haveBinary("haproxy") && "haproxy is not installed" }, () => {
  const cases: [string, HostPlan, RouteFragment[]][] = [
    ["prod alone", lb, []],
    ["prod with the demo fragment attached", lb, [demoFragment]],
    ["the standalone example with engine haproxy", ingressHost(exampleOnHaproxy()), []],
  ];
  for (const [name, host, attached] of cases) {
    for (const binary of ["haproxy", ...(haproxy32 ? [haproxy32] : [])]) {
      it(`${name}: valid with zero warnings (${binary})`, () =>
        withTmp(async (dir) => {
          const staged = stageHaproxy(dir, host, attached);
          const r = await haproxyCheck(staged.cfg, staged.routesDir, binary);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.doesNotMatch(r.stdout + r.stderr, /WARNING|ALERT/);
        }));
    }
  }
});

describe(
  "live: client -> rendered haproxy -> rendered nginx, in network namespaces",
  { skip: (!isRoot || !haveBinary("haproxy") || !haveBinary("nginx") || !haveBinary("curl")) && "needs root, haproxy, nginx and curl" },
  () => {
    // The prod plan with a faster check interval so the first check lands quickly; the stats
    // page's allowed CIDR (198.51.100.7/32) is the client's address.
    const plan = planStack(withIngress(prodTopology(), (i) => ({ ...i, healthCheck: { ...i.healthCheck, interval: 300 } })));
    const liveLb = ingressHost(plan);
    const frontend = plan.hosts.find((h) => h.name === "frontend")!;
    const CLIENT = "198.51.100.7";
    const LB_PUBLIC = "198.51.100.1";
    const resolve = (port: number, name = "fiscalismia.com") => ["--resolve", `${name}:${port}:${LB_PUBLIC}`];
    const listeners = (host: HostPlan, by: string) => host.listens.filter((l) => l.by === by).map((l) => ({ port: l.port }));
    let sb: Sandbox | undefined;
    let client: Netns;
    let lbNs: Netns;
    let haproxy: ManagedProcess;
    let nginx: ManagedProcess;
    let web: Netns;
    let monitoring: Netns;

    // "client" (a public address), "lb" (public + private), "web" and "monitoring" (private):
    // they reach nothing else.
    before(async () => {
      sb = await Sandbox.create({ prefix: "rtest" });
      client = await sb.namespace("client");
      lbNs = await sb.namespace("lb");
      web = await sb.namespace("web");
      monitoring = await sb.namespace("monitoring");
      const inet = await Segment.create(sb, { name: "inet" });
      await inet.attach(client, { ipv4: `${CLIENT}/24` });
      await inet.attach(lbNs, { ipv4: `${LB_PUBLIC}/24` });
      const prodNet = await RoutedNetwork.create(sb, { name: "prod", ipRange: "172.24.0.0/16" });
      await prodNet.attach(lbNs, { ip: "172.24.1.3" });
      await prodNet.attach(web, { ip: "172.24.0.3" });
      await prodNet.attach(monitoring, { ip: "172.24.0.2" });

      const webRoot = await sb.subdir("web-root");
      const cert = await selfSignedCertificate(webRoot, frontend.web!.sites.map((s) => s.site.hostname));
      // Only for this run: the pid file the container keeps in its own /tmp.
      const conf = readFileSync(stageNginx(webRoot, frontend, cert), "utf8").replace("pid /tmp/nginx.pid;", `pid ${webRoot}/nginx.pid;`);
      nginx = (await startNginx(sb, web, { name: "nginx", config: conf, waitFor: listeners(frontend, "nginx") })).process;

      // The rendered command (-W, routes.d) with stats.env's variables: more than startHaproxy runs.
      const staged = stageHaproxy(await sb.subdir("lb-root"), liveLb);
      const argv = ["haproxy", "-W", "-db", "-f", staged.cfg, "-f", staged.routesDir];
      haproxy = await lbNs.spawn("haproxy", argv, { env: { ...process.env, ...STATS_ENV } });
      await waitForListening(lbNs, listeners(liveLb, "haproxy"), { process: haproxy });
    });

    after(() => sb?.teardown());

    const curl = (from: Netns, ...args: string[]) => from.exec(["curl", ...args], { allowFailure: true });
    const eventually = <T>(what: string, probe: () => Promise<T | undefined>) => pollUntil(what, probe, { timeoutMs: 10_000, intervalMs: 200 });

    it("haproxy's L7 check (PROXY v2 + TLS + GET /healthz) marks the nginx server UP", async () => {
      const row = await eventually("an L7OK check of prod_frontend_443/frontend in the stats CSV", async () => {
        const csv = await curl(client, "-sS", "--max-time", "2", "-u", `${STATS_ENV.STATS_USER}:${STATS_ENV.STATS_PASSWORD}`, `http://${LB_PUBLIC}:8404/stats;csv`);
        const r = parseShowStat(csv.stdout).find((x) => x.backend === "prod_frontend_443" && x.server === "frontend");
        return r && r.status === "UP" && r.checkStatus === "L7OK" ? r : undefined;
      });
      assert.equal(row.checkCode, 200, JSON.stringify(row));
    });

    it("the site answers 200 through haproxy, and nginx sees the client's address", async () => {
      const r = await curl(client, "-sS", "-k", "--max-time", "5", ...resolve(443), "https://fiscalismia.com/");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `Hello from nginx, real client IP is ${CLIENT}\n`);
      const access = await eventually("the request in nginx's access log", async () =>
        (await nginx.log()).split("\n").find((l) => l.includes('"GET / HTTP/1.1" 200')),
      );
      assert.ok(access.startsWith(`${CLIENT} `), access);
      assert.ok(access.includes(`proxy=${CLIENT}:`), access);
      assert.ok(access.includes("lb=172.24.1.3"), access);
      assert.ok(access.includes("sni=fiscalismia.com"), access);
      const logged = await eventually("the connection in haproxy's log", async () =>
        (await haproxy.log()).split("\n").find((l) => l.startsWith(`${CLIENT}:`) && l.includes("prod_frontend_443/frontend")),
      );
      assert.match(logged, /https_ingress prod_frontend_443\/frontend/);
    });

    it("an unknown SNI is dropped, not answered", async () => {
      const r = await curl(client, "-sS", "-k", "--max-time", "2", ...resolve(443, "unknown.example.com"), "https://unknown.example.com/");
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stdout, /Hello/);
    });

    it("port 80 redirects to https with the same host and path", async () => {
      const r = await curl(client, "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", ...resolve(80), "http://fiscalismia.com/a/b?c=1");
      assert.equal(r.stdout, "301 https://fiscalismia.com/a/b?c=1");
    });

    it("the stats page wants the env credentials, admits loopback (an SSH tunnel) and refuses sources outside allowedCidrs", async () => {
      const anonymous = await curl(client, "-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", `http://${LB_PUBLIC}:8404/stats`);
      assert.equal(anonymous.stdout, "401");
      const auth = ["-u", `${STATS_ENV.STATS_USER}:${STATS_ENV.STATS_PASSWORD}`];
      const tunnel = await curl(lbNs, "-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", ...auth, "http://127.0.0.1:8404/stats");
      assert.equal(tunnel.stdout, "200");
      // From the LB's public address: neither an allowed CIDR nor loopback.
      const outside = await curl(lbNs, "-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", ...auth, `http://${LB_PUBLIC}:8404/stats`);
      assert.equal(outside.stdout, "403");
    });

    it("the monitoring server scrapes HAProxy's exporter on the private address (Prometheus' parser reads it); another server gets 403, the internet no connection", async () => {
      const url = "http://172.24.1.3:8405/metrics";
      const up = { proxy: "prod_frontend_443", server: "frontend" };
      const metrics = await eventually("prod_frontend_443/frontend UP after an L7OK check, as scraped", async () => {
        const r = await curl(monitoring, "-sS", "-f", "--max-time", "2", url);
        if (r.code !== 0) return undefined;
        const m = await parseExposition(r.stdout);
        return sampleValue(m, "haproxy_server_status", { ...up, state: "UP" }) === 1 && sampleValue(m, "haproxy_server_check_status", { ...up, state: "L7OK" }) === 1 ? m : undefined;
      });
      assert.equal(sampleValue(metrics, "haproxy_server_check_code", up), 200);
      // The web server of another backend has no nginx here: its check fails and the exporter says so.
      assert.equal(sampleValue(metrics, "haproxy_server_status", { proxy: "prod_backend_443", server: "backend", state: "DOWN" }), 1);
      assert.ok(sampleValue(metrics, "haproxy_process_start_time_seconds")! > 0);
      assert.equal(sampleValue(metrics, "haproxy_frontend_denied_connections_total", { proxy: "https_ingress" }), 0);
      const neighbour = await curl(web, "-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", url);
      assert.equal(neighbour.stdout, "403", neighbour.stderr);
      // option dontlog-normal: the refusal is logged, the scrapes are not.
      await eventually("the refused scrape in haproxy's log", async () => ((await haproxy.log()).split("\n").some((l) => l.startsWith("172.24.0.3:") && l.includes(" metrics ")) ? true : undefined));
      assert.ok(!(await haproxy.log()).split("\n").some((l) => l.startsWith("172.24.0.2:")), "a scrape is not logged");
      const other = await curl(monitoring, "-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://172.24.1.3:8405/stats");
      assert.equal(other.stdout, "404");
      // Nothing listens on the public address: refused (curl exit 7).
      const internet = await curl(client, "-sS", "--max-time", "2", `http://${LB_PUBLIC}:8405/metrics`);
      assert.equal(internet.code, 7, `${internet.stdout} ${internet.stderr}`);
    });
  },
);
