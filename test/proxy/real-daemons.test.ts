/**
 * Real clients (curl, openssl s_client, Node tls) -> the bundled proxy ->
 * real nginx with `listen ... ssl proxy_protocol`, and HAProxy 2.6 with
 * `accept-proxy` as a strict third-party parser of our PROXY v2 header.
 * Client, proxy and backends sit in their own network namespaces.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ProxyConfigInput } from "../../contract/proxy-config";
import { HaproxyDaemon, sandboxNginxMain, startHaproxy, startNginx, waitForListening } from "../../lab/daemons";
import type { Netns } from "../../lab/netns";
import type { ManagedProcess } from "../../lab/process";
import { Sandbox } from "../../lab/sandbox";
import { selfSignedCertificate } from "../../lab/tls";
import { buildProxyScript, NODE_CURRENT } from "./helpers/script";
import { haproxyConfig, nginxHttp } from "./helpers/daemons";
import { waitFor } from "./helpers/harness";
import { jsonLines, link, logLines, namespaces } from "./helpers/sandbox";

/** client <-> proxy <-> backend, each link with an IPv4 and an IPv6 subnet. */
const addr = {
  client4: "10.77.1.2", proxyFront4: "10.77.1.1", proxyBack4: "10.77.2.1", backend4: "10.77.2.2",
  client6: "fd77:1::2", proxyFront6: "fd77:1::1", proxyBack6: "fd77:2::1", backend6: "fd77:2::2",
};

describe("real clients through the proxy to nginx and haproxy", { timeout: 30_000 }, () => {
  let sb: Sandbox;
  let ns: Record<"client" | "proxy" | "backend", Netns>;
  let nginxDir: string;
  let bundle: string;
  let proxy: ManagedProcess;
  let haproxy: HaproxyDaemon;

  before(async () => {
    bundle = buildProxyScript();
    sb = await Sandbox.create({ prefix: "pxt" });
    ns = await namespaces(sb, ["client", "proxy", "backend"]);
    await link(sb, { ns: ns.client, ifname: "front", addresses: [`${addr.client4}/24`, `${addr.client6}/64`] }, { ns: ns.proxy, ifname: "front", addresses: [`${addr.proxyFront4}/24`, `${addr.proxyFront6}/64`] });
    await link(sb, { ns: ns.proxy, ifname: "back", addresses: [`${addr.proxyBack4}/24`, `${addr.proxyBack6}/64`] }, { ns: ns.backend, ifname: "back", addresses: [`${addr.backend4}/24`, `${addr.backend6}/64`] });
    const { certPath: cert, keyPath: key } = await selfSignedCertificate(await sb.subdir("certs"), ["demo.test", "v6.test", "haproxy.test"]);
    const nginx = await startNginx(sb, ns.backend, {
      name: "nginx",
      config: sandboxNginxMain({
        http: nginxHttp({
          listen: [`${addr.backend4}:443`, `[${addr.backend6}]:443`],
          trusted: [addr.proxyBack4, addr.proxyBack6, addr.backend4],
          cert,
          key,
        }),
      }),
      waitFor: [{ port: 443 }],
    });
    nginxDir = nginx.dir;
    haproxy = await startHaproxy(sb, ns.backend, {
      name: "haproxy",
      config: haproxyConfig({ bind: [`${addr.backend4}:9443`, `[${addr.backend6}]:9443`], forwardTo: `${addr.backend4}:443` }),
      waitFor: [{ port: 9443 }],
    });
    const config: ProxyConfigInput = {
      global: { workers: 1 },
      listeners: [{ name: "https_ingress", mode: "tls-passthrough", binds: [{ address: addr.proxyFront4, port: 443 }, { address: addr.proxyFront6, port: 443 }] }],
      routes: [
        { host: "demo.test", backend: "demo" },
        { host: "v6.test", backend: "v6" },
        { host: "haproxy.test", backend: "haproxy" },
      ],
      backends: [
        { name: "demo", servers: [{ name: "demo01", address: addr.backend4, port: 443 }] },
        { name: "v6", servers: [{ name: "v601", address: addr.backend6, port: 443 }] },
        { name: "haproxy", authorityTlv: true, servers: [{ name: "hap01", address: addr.backend4, port: 9443 }] },
      ],
    };
    const configFile = path.join(await sb.subdir("proxy"), "proxy.json");
    writeFileSync(configFile, JSON.stringify(config));
    proxy = await ns.proxy.spawn("proxy", [NODE_CURRENT, bundle, "--config", configFile]);
    await waitForListening(ns.proxy, [{ port: 443 }], { process: proxy });
  });

  after(async () => {
    await sb?.teardown();
  });

  const curl = async (args: string[]) => (await ns.client.exec(["curl", "-sS", "-k", "--max-time", "5", ...args])).stdout;
  const accessLog = () => readFileSync(path.join(nginxDir, "access.log"), "utf8").trim().split("\n");
  /**
   * nginx writes the access log line after it has sent the response, so curl may exit (and this
   * test read the log) before the line is there: wait for it to be the last line.
   */
  const waitForAccessLine = (line: RegExp) =>
    waitFor(() => line.test(accessLog().at(-1)!), 3000, `access log line ${line}`, () => JSON.stringify(accessLog().slice(-3)));
  const connections = () => jsonLines(proxy).filter((l) => l.event === "connection");
  const haproxyLines = () => logLines(haproxy.process);

  it("curl over IPv4: nginx sees the client's real address", async () => {
    const body = await curl(["--resolve", `demo.test:443:${addr.proxyFront4}`, "https://demo.test/"]);
    assert.equal(body, `real client ${addr.client4} via ${addr.client4}\n`);
    await waitForAccessLine(new RegExp(`^${addr.client4} \\d+ ${addr.client4} demo.test$`));
  });

  it("curl over IPv6 to an IPv6 backend: PROXY TCP6 with the client's address", async () => {
    const body = await curl(["--resolve", `v6.test:443:[${addr.proxyFront6}]`, "https://v6.test/"]);
    assert.equal(body, `real client ${addr.client6} via ${addr.client6}\n`);
    await waitForAccessLine(new RegExp(`^${addr.client6} \\d+ ${addr.client6} v6.test$`));
  });

  it("IPv6 client to the IPv4 backend: the header falls back to TCP6 with a mapped destination", async () => {
    const body = await curl(["--resolve", `demo.test:443:[${addr.proxyFront6}]`, "https://demo.test/"]);
    assert.equal(body, `real client ${addr.client6} via ${addr.client6}\n`);
  });

  it("openssl s_client (TLS 1.3 and 1.2)", async () => {
    for (const version of ["-tls1_3", "-tls1_2"]) {
      const { stdout: out } = await ns.client.exec(["openssl", "s_client", version, "-quiet", "-connect", `${addr.proxyFront4}:443`, "-servername", "demo.test"], { input: "GET / HTTP/1.0\r\nHost: demo.test\r\n\r\n" });
      assert.match(out, new RegExp(`real client ${addr.client4.replace(/\./g, "\\.")} via`));
    }
  });

  it("Node's tls client", async () => {
    const script = `const tls=require("tls");const s=tls.connect({host:"${addr.proxyFront6}",port:443,servername:"demo.test",rejectUnauthorized:false},()=>s.write("GET / HTTP/1.0\\r\\nHost: demo.test\\r\\n\\r\\n"));let b="";s.on("data",d=>b+=d);s.on("end",()=>{process.stdout.write(b);s.destroy()});setTimeout(()=>process.exit(3),5000).unref();`;
    const { stdout: out } = await ns.client.exec([NODE_CURRENT, "-e", script]);
    assert.match(out, new RegExp(`real client ${addr.client6} via`));
  });

  it("HAProxy 2.6 accept-proxy parses our header, AUTHORITY TLV included", async () => {
    const body = await curl(["--resolve", `haproxy.test:443:${addr.proxyFront4}`, "https://haproxy.test/"]);
    // nginx sits behind haproxy, so it sees the address haproxy took from our header
    assert.equal(body, `real client ${addr.client4} via ${addr.client4}\n`);
    await waitFor(() => haproxyLines().some((l) => l.startsWith("HAPROXY")), 3000, "haproxy log");
    assert.match(haproxyLines().find((l) => l.startsWith("HAPROXY"))!, new RegExp(`^HAPROXY ci=${addr.client4} cp=\\d+ authority=haproxy.test ts=--`));
  });

  it("unknown SNI from curl is dropped without a reply, and logged", async () => {
    await assert.rejects(curl(["--resolve", `other.test:443:${addr.proxyFront4}`, "https://other.test/"]));
    await waitFor(() => connections().some((l) => l.sni === "other.test"), 2000, "drop log line");
    const line = connections().find((l) => l.sni === "other.test")!;
    assert.equal(line.ts, "PR");
    assert.equal(line.ci, addr.client4);
    assert.equal(line.reason, "unknown-sni");
  });

  it("logs one line per connection with HAProxy's fields", async () => {
    await waitFor(() => connections().some((l) => l.sni === "v6.test"), 3000, "log lines");
    const line = connections().find((l) => l.sni === "v6.test")!;
    for (const field of ["ci", "cp", "t", "ft", "b", "s", "Tw", "Tc", "Tt", "B", "ts", "ac", "fc", "bc", "sc", "rc", "sq", "bq"]) assert.ok(field in line, field);
    assert.equal(line.ci, addr.client6);
    assert.deepEqual([line.ft, line.b, line.s, line.ts], ["https_ingress", "v6", "v601", "--"]);
    assert.ok((line.B as number) > 0);
  });
});
