/**
 * Real clients (curl, openssl s_client, Node tls) -> the bundled proxy ->
 * real nginx with `listen ... ssl proxy_protocol`, and HAProxy 2.6 with
 * `accept-proxy` as a strict third-party parser of our PROXY v2 header.
 * Client, proxy and backends sit in their own network namespaces.
 */
import assert from "node:assert/strict";
import { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ProxyConfigInput } from "../../proxy/config/schema";
import { buildBundle, NODE_CURRENT } from "./helpers/bundle";
import { haproxyConfig, makeCert, nginxConfig } from "./helpers/daemons";
import { waitFor } from "./helpers/harness";
import { createTopology, Topology, waitListening } from "./helpers/netns";

describe("real clients through the proxy to nginx and haproxy", { timeout: 30_000 }, () => {
  let topo: Topology;
  let dir: string;
  let bundle: string;
  let proxy: ChildProcess;
  let haproxy: ChildProcess;
  const proxyLines: Record<string, unknown>[] = [];
  const haproxyLines: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-daemons-"));
    bundle = buildBundle();
    topo = createTopology("rd");
    const { addr, ns } = topo;
    const { cert, key } = makeCert(dir, ["demo.test", "v6.test", "haproxy.test"]);
    const nginxConf = nginxConfig(dir, {
      listen: [`${addr.backend4}:443`, `[${addr.backend6}]:443`],
      trusted: [addr.proxyBack4, addr.proxyBack6, addr.backend4],
      cert,
      key,
    });
    topo.spawnIn(ns.backend, "nginx", ["-c", nginxConf, "-g", "daemon off;"]);
    haproxy = topo.spawnIn(ns.backend, "haproxy", ["-db", "-f", haproxyConfig(dir, { bind: [`${addr.backend4}:9443`, `[${addr.backend6}]:9443`], forwardTo: `${addr.backend4}:443` })]);
    haproxy.stdout!.on("data", (d: Buffer) => haproxyLines.push(...d.toString().split("\n").filter(Boolean)));
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
    const configFile = path.join(dir, "proxy.json");
    writeFileSync(configFile, JSON.stringify(config));
    proxy = topo.spawnIn(ns.proxy, NODE_CURRENT, [bundle, "--config", configFile]);
    let pending = "";
    proxy.stdout!.on("data", (d: Buffer) => {
      const lines = (pending + d.toString()).split("\n");
      pending = lines.pop()!;
      for (const line of lines) proxyLines.push(JSON.parse(line) as Record<string, unknown>);
    });
    await Promise.all([waitListening(topo, ns.backend, 443), waitListening(topo, ns.backend, 9443), waitListening(topo, ns.proxy, 443)]);
  });

  after(async () => {
    await topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (bundle) rmSync(path.dirname(bundle), { recursive: true, force: true });
  });

  const accessLog = () => readFileSync(path.join(dir, "access.log"), "utf8").trim().split("\n");
  const connections = () => proxyLines.filter((l) => l.event === "connection");

  it("curl over IPv4: nginx sees the client's real address", () => {
    const { addr, ns } = topo;
    const body = topo.execIn(ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `demo.test:443:${addr.proxyFront4}`, "https://demo.test/"]);
    assert.equal(body, `real client ${addr.client4} via ${addr.client4}\n`);
    assert.match(accessLog().at(-1)!, new RegExp(`^${addr.client4} \\d+ ${addr.client4} demo.test$`));
  });

  it("curl over IPv6 to an IPv6 backend: PROXY TCP6 with the client's address", () => {
    const { addr, ns } = topo;
    const body = topo.execIn(ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `v6.test:443:[${addr.proxyFront6}]`, "https://v6.test/"]);
    assert.equal(body, `real client ${addr.client6} via ${addr.client6}\n`);
    assert.match(accessLog().at(-1)!, new RegExp(`^${addr.client6} \\d+ ${addr.client6} v6.test$`));
  });

  it("IPv6 client to the IPv4 backend: the header falls back to TCP6 with a mapped destination", () => {
    const { addr, ns } = topo;
    const body = topo.execIn(ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `demo.test:443:[${addr.proxyFront6}]`, "https://demo.test/"]);
    assert.equal(body, `real client ${addr.client6} via ${addr.client6}\n`);
  });

  it("openssl s_client (TLS 1.3 and 1.2)", () => {
    const { addr, ns } = topo;
    for (const version of ["-tls1_3", "-tls1_2"]) {
      const out = topo.execIn(ns.client, "openssl", ["s_client", version, "-quiet", "-connect", `${addr.proxyFront4}:443`, "-servername", "demo.test"], "GET / HTTP/1.0\r\nHost: demo.test\r\n\r\n");
      assert.match(out, new RegExp(`real client ${addr.client4.replace(/\./g, "\\.")} via`));
    }
  });

  it("Node's tls client", () => {
    const { addr, ns } = topo;
    const script = `const tls=require("tls");const s=tls.connect({host:"${addr.proxyFront6}",port:443,servername:"demo.test",rejectUnauthorized:false},()=>s.write("GET / HTTP/1.0\\r\\nHost: demo.test\\r\\n\\r\\n"));let b="";s.on("data",d=>b+=d);s.on("end",()=>{process.stdout.write(b);s.destroy()});setTimeout(()=>process.exit(3),5000).unref();`;
    const out = topo.execIn(ns.client, NODE_CURRENT, ["-e", script]);
    assert.match(out, new RegExp(`real client ${addr.client6} via`));
  });

  it("HAProxy 2.6 accept-proxy parses our header, AUTHORITY TLV included", async () => {
    const { addr, ns } = topo;
    const body = topo.execIn(ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `haproxy.test:443:${addr.proxyFront4}`, "https://haproxy.test/"]);
    // nginx sits behind haproxy, so it sees the address haproxy took from our header
    assert.equal(body, `real client ${addr.client4} via ${addr.client4}\n`);
    await waitFor(() => haproxyLines.some((l) => l.startsWith("HAPROXY")), 3000, "haproxy log");
    assert.match(haproxyLines.find((l) => l.startsWith("HAPROXY"))!, new RegExp(`^HAPROXY ci=${addr.client4} cp=\\d+ authority=haproxy.test ts=--`));
  });

  it("unknown SNI from curl is dropped without a reply, and logged", async () => {
    const { addr, ns } = topo;
    assert.throws(() => topo.execIn(ns.client, "curl", ["-sS", "-k", "--max-time", "5", "--resolve", `other.test:443:${addr.proxyFront4}`, "https://other.test/"]));
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
    assert.equal(line.ci, topo.addr.client6);
    assert.deepEqual([line.ft, line.b, line.s, line.ts], ["https_ingress", "v6", "v601", "--"]);
    assert.ok((line.B as number) > 0);
  });
});
