// The user's original failure, reproduced with real haproxy 2.6 and nginx:
// the demo nginx ran in a container published with `podman run -p 443:443`,
// so the LB's connections to 172.20.0.2:443 were DNATed to the container and
// then had to be forwarded. With forwarding off they vanish and HAProxy
// reports "Layer4 timeout"; prod hosts run nothing and answer "Connection
// refused"; nginx on the host's own network (Network=host) is UP whatever the
// forwarding setting. See docs/sandbox.md.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { cleanupStale, createBridgedContainer, holdHostPort, pollUntil, probeTcp, RoutedNetwork, publishPorts, Sandbox, sandboxNginxMain, selfSignedCertificate, startHaproxy, startNginx, unpublishPorts, waitForServerCheck, type BridgedContainer, type Daemon, type HaproxyServerState, type ManagedProcess, type Netns } from "../../lab";

const DEMO_IP = "172.20.0.2";
const LB_IP = "172.20.1.3";
const SNI = "demo.fiscalismia.com";

// Short timers keep every case around a second: a timeout costs `timeout connect`.
const HAPROXY_CFG = `
global
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    timeout connect 1s
    timeout check 1s
    timeout client 5s
    timeout server 5s

frontend https_ingress
    bind 127.0.0.1:8443
    tcp-request inspect-delay 2s
    tcp-request content accept if { req_ssl_hello_type 1 }
    use_backend demo_l7 if { req_ssl_sni -i ${SNI} }

# As the user had it: a plain check on a send-proxy-v2 server.
backend demo_l4
    server demo ${DEMO_IP}:443 send-proxy-v2 check inter 500ms fall 1 rise 1

# What the project renders: a TLS + HTTP check that nginx must answer.
backend demo_l7
    option httpchk GET /healthz
    server demo ${DEMO_IP}:443 send-proxy-v2 check inter 500ms fall 1 rise 1 check-ssl verify none check-sni ${SNI}
`;

const NGINX_HTTP = `
  log_format proxied '$proxy_protocol_addr $remote_addr "$request" $status $ssl_server_name';
  server {
    listen 443 ssl proxy_protocol;
    server_name ${SNI};
    ssl_certificate tls.crt;
    ssl_certificate_key tls.key;
    access_log access.log proxied;
    location = /healthz { return 200 "ok\\n"; }
  }
`;

interface DemoState {
  readonly forwarding: boolean;
  /** `podman run -p 443:443`: DNAT to the container, and conmon holding the host port. */
  readonly published: boolean;
  /** A forward chain with policy drop, as a hardened host firewall may have. */
  readonly forwardDrop: boolean;
  /** nginx running in the demo host's own namespace (Network=host). */
  readonly hostNginx: boolean;
}

interface CheckOutcome {
  readonly l4: HaproxyServerState;
  readonly l7: HaproxyServerState;
  readonly log: string;
}

/** Check results that count as passed; any other result is a failure. */
const PASSED = new Set(["L4OK", "L6OK", "L7OK", "L7OKC"]);

/** With fall 1 and rise 1 one check decides: the server's status agrees with its last result. */
function verdictApplied(row: HaproxyServerState): boolean {
  return row.status === (PASSED.has(row.checkStatus) ? "UP" : "DOWN");
}

/** Both backends healthy: the plain TCP check connected, the TLS + HTTP check got 200. */
function assertBothUp(r: CheckOutcome): void {
  assert.equal(r.l4.status, "UP");
  assert.equal(r.l4.checkStatus, "L4OK");
  assert.equal(r.l7.status, "UP");
  assert.equal(r.l7.checkStatus, "L7OK");
  assert.equal(r.l7.checkCode, 200);
}

describe("the original failure: podman DNAT vs. host networking", { timeout: 60_000 }, () => {
  let sb: Sandbox;
  let lb: Netns;
  let demo: Netns;
  let container: BridgedContainer;
  let nginxFiles: Record<string, string>;
  let containerNginx: Daemon;
  let hostNginx: Daemon | undefined;
  let conmon: ManagedProcess | undefined;
  let published = false;
  let forwardDrop = false;

  before(async () => {
    await cleanupStale();
    sb = await Sandbox.create();
    const net = await RoutedNetwork.create(sb, { name: "demo", ipRange: "172.20.0.0/16" });
    lb = await sb.namespace("lb");
    demo = await sb.namespace("demo");
    await net.attach(lb, { ip: LB_IP });
    await net.attach(demo, { ip: DEMO_IP });
    container = await createBridgedContainer(sb, demo, { name: "ctr" });
    const cert = await selfSignedCertificate(await sb.subdir("certs"), [SNI]);
    nginxFiles = { "tls.crt": await readFile(cert.certPath, "utf8"), "tls.key": await readFile(cert.keyPath, "utf8") };
    containerNginx = await startNginx(sb, container.ns, {
      name: "nginx",
      config: sandboxNginxMain({ http: NGINX_HTTP }),
      files: nginxFiles,
      waitFor: [{ port: 443 }],
    });
  });

  after(async () => {
    await sb.teardown();
    assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
  });

  async function setState(s: DemoState): Promise<void> {
    await demo.setForwarding(s.forwarding);
    if (s.published && !published) {
      await publishPorts(container, [{ hostPort: 443, containerPort: 443 }]);
      conmon = await holdHostPort(demo, 443);
    } else if (!s.published && published) {
      await unpublishPorts(container);
      await conmon?.stop();
      conmon = undefined;
    }
    published = s.published;
    if (s.forwardDrop && !forwardDrop) {
      await demo.nft("table inet hardening {\n  chain forward { type filter hook forward priority filter; policy drop; }\n}\n");
    } else if (!s.forwardDrop && forwardDrop) {
      await demo.exec(["nft", "delete", "table", "inet", "hardening"]);
    }
    forwardDrop = s.forwardDrop;
    if (s.hostNginx && hostNginx === undefined) {
      hostNginx = await startNginx(sb, demo, {
        name: "nginx",
        config: sandboxNginxMain({ http: NGINX_HTTP }),
        files: nginxFiles,
        waitFor: [{ port: 443 }],
      });
    } else if (!s.hostNginx && hostNginx !== undefined) {
      await hostNginx.process.stop();
      hostNginx = undefined;
    }
  }

  /**
   * A fresh haproxy per case, so its log holds only this case's transitions. Returns once the
   * first check's verdict is fully applied: HAProxy stores a check's result before it moves the
   * server and writes the "is DOWN" line as it moves it, and `show stat` (another thread) can
   * be read in between. So wait for the status that the result means with fall 1 / rise 1,
   * then for the log line of every server that went DOWN.
   */
  async function checkOnce(): Promise<CheckOutcome> {
    const hap = await startHaproxy(sb, lb, { name: "haproxy", config: HAPROXY_CFG, waitFor: [{ port: 8443 }] });
    try {
      const [l4, l7] = await Promise.all([
        waitForServerCheck(hap.statsSocket, "demo_l4", "demo", verdictApplied),
        waitForServerCheck(hap.statsSocket, "demo_l7", "demo", verdictApplied),
      ]);
      const downLines = [l4, l7].filter((r) => r.status === "DOWN").map((r) => `Server ${r.backend}/${r.server} is DOWN`);
      let log = "";
      await pollUntil(
        "the DOWN log lines",
        async () => {
          log = await hap.process.log();
          return downLines.every((line) => log.includes(line)) ? true : undefined;
        },
        { timeoutMs: 3000, intervalMs: 20 },
      ).catch((e: Error) => {
        throw new Error(`${e.message}; wanted ${JSON.stringify(downLines)}, log: ${log.slice(-1500)}`);
      });
      return { l4, l7, log };
    } finally {
      await hap.process.stop();
    }
  }

  /** What the user saw from the LB with `nc -v4 172.20.0.2 443`. */
  async function ncFromLb(): Promise<string> {
    return (await probeTcp(lb, DEMO_IP, 443, 500)).outcome;
  }

  /** A TLS client through HAProxy's SNI frontend: PROXY v2 in front of the untouched TLS stream. */
  async function curlThroughLb(): Promise<string> {
    const r = await lb.exec(
      ["curl", "-sS", "-k", "--max-time", "3", "--resolve", `${SNI}:8443:127.0.0.1`, `https://${SNI}:8443/healthz`],
      { timeoutMs: 5000 },
    );
    return r.stdout;
  }

  function assertDown(row: HaproxyServerState, status: string, description: string, lastCheck: string): void {
    assert.equal(row.status, "DOWN");
    assert.equal(row.checkStatus, status);
    assert.equal(row.checkDescription, description);
    assert.equal(row.lastCheck, lastCheck);
  }

  it("forwarding off on the demo host: Layer4 timeout, the user's symptom", async () => {
    await setState({ forwarding: false, published: true, forwardDrop: false, hostNginx: false });
    // The user's debugging on the demo host: port 443 is bound (by conmon) and a local connect works...
    assert.ok((await demo.listeningTcp()).some((l) => l.address === "0.0.0.0" && l.port === 443));
    assert.equal((await probeTcp(demo, "127.0.0.1", 443)).outcome, "connected");
    // ...while from the LB the SYN is DNATed, not forwarded, and dropped without a word.
    assert.equal(await ncFromLb(), "timeout");

    const r = await checkOnce();
    assertDown(r.l4, "L4TOUT", "Layer4 timeout", "");
    assertDown(r.l7, "L4TOUT", "Layer4 timeout", "");
    // With `timeout check` set, the connect gets min(inter, timeout connect): 500 ms here, 10 s for the user.
    assert.ok((r.l4.checkDurationMs ?? 0) >= 450, `check duration ${r.l4.checkDurationMs}`);
    assert.match(r.log, /Server demo_l4\/demo is DOWN, reason: Layer4 timeout, check duration: \d+ms\./);
    assert.match(r.log, /Server demo_l7\/demo is DOWN, reason: Layer4 timeout, check duration: \d+ms\./);
  });

  it("forwarding on: the same container is UP, and sees the client through PROXY v2", async () => {
    await setState({ forwarding: true, published: true, forwardDrop: false, hostNginx: false });
    assert.equal(await ncFromLb(), "connected");
    const r = await checkOnce();
    assertBothUp(r);
    assert.doesNotMatch(r.log, /is DOWN/);

    const hap = await startHaproxy(sb, lb, { name: "haproxy", config: HAPROXY_CFG, waitFor: [{ port: 8443 }] });
    try {
      assert.equal(await curlThroughLb(), "ok\n");
    } finally {
      await hap.process.stop();
    }
    // Checks carry a PROXY v2 LOCAL header (no client address), and nginx accepts it.
    const check = /^- 172\.20\.1\.3 "GET \/healthz HTTP\/1\.0" 200 demo\.fiscalismia\.com$/m;
    // Real traffic carries the client's address; the TCP peer is the LB.
    const proxied = /^127\.0\.0\.1 172\.20\.1\.3 "GET \/healthz HTTP\/1\.1" 200 demo\.fiscalismia\.com$/m;
    // nginx writes a line after it has sent the response, so curl may have exited before it is there.
    let access = "";
    await pollUntil(
      "the check's and the proxied request's lines in nginx's access log",
      async () => {
        access = await readFile(`${containerNginx.dir}/access.log`, "utf8");
        return check.test(access) && proxied.test(access) ? true : undefined;
      },
      { timeoutMs: 3000, intervalMs: 20 },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; access log ends with: ${access.slice(-800)}`);
    });
    assert.match(access, check);
    assert.match(access, proxied);
  });

  it("forwarding on but a forward chain with policy drop: Layer4 timeout again", async () => {
    await setState({ forwarding: true, published: true, forwardDrop: true, hostNginx: false });
    assert.equal(await ncFromLb(), "timeout");
    const r = await checkOnce();
    assertDown(r.l4, "L4TOUT", "Layer4 timeout", "");
    assertDown(r.l7, "L4TOUT", "Layer4 timeout", "");
  });

  it("nothing published, nothing listening: Connection refused (the prod case)", async () => {
    await setState({ forwarding: false, published: false, forwardDrop: false, hostNginx: false });
    assert.equal(await ncFromLb(), "refused");
    const r = await checkOnce();
    assertDown(r.l4, "L4CON", "Layer4 connection problem", "Connection refused");
    assertDown(r.l7, "L4CON", "Layer4 connection problem", "Connection refused");
    assert.match(r.log, /Server demo_l4\/demo is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: \d+ms\./);
  });

  for (const forwarding of [false, true]) {
    it(`nginx on the host network (Network=host), forwarding ${forwarding ? "on" : "off"}: UP`, async () => {
      await setState({ forwarding, published: false, forwardDrop: false, hostNginx: true });
      assert.equal(await ncFromLb(), "connected");
      const r = await checkOnce();
      assertBothUp(r);
    });
  }
});
