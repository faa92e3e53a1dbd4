import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderNginxConfig, renderNginxSite } from "../../render/nginx";
import { selfSignedCertificate } from "../../lab/tls";
import type { HostPlan, SitePlan, StackPlan } from "../../topology";
import { nginxTest } from "./validators/binaries";
import { assertGolden } from "./validators/golden";
import { demoPlan, examplePlan, ingressHost, prodPlan, webHosts } from "./validators/plans";
import { haveBinary, isRoot, withSandbox } from "./validators/sandbox";
import { nginxFiles, stageNginx } from "./validators/stage";

const stacks: readonly StackPlan[] = [prodPlan(), demoPlan(), examplePlan()];
const hosts: readonly HostPlan[] = stacks.flatMap(webHosts);

function host(stack: string, name: string): HostPlan {
  const h = hosts.find((x) => x.stack === stack && x.name === name);
  if (!h) throw new Error(`no web host ${stack}/${name}`);
  return h;
}

function site(h: HostPlan, hostname: string): SitePlan {
  return h.web!.sites.find((s) => s.site.hostname === hostname)!;
}

describe("golden files", () => {
  for (const h of hosts) {
    it(`${h.stack}/${h.name}: nginx.conf and every site`, () => {
      for (const [rel, text] of nginxFiles(h)) assertGolden(`${h.stack}/${h.name}/${rel}`, text);
    });
  }
});

describe("nginx.conf", () => {
  const conf = renderNginxConfig(host("demo", "demo"));

  it("runs in the foreground of a container: pid in /tmp, logs to stderr and stdout", () => {
    assert.match(conf, /^pid \/tmp\/nginx\.pid;$/m);
    assert.match(conf, /^error_log stderr notice;$/m);
    assert.match(conf, /^    access_log \/dev\/stdout ingress;$/m);
    assert.match(conf, /^worker_processes auto;$/m);
    assert.doesNotMatch(conf, /^\s*(daemon|user)\s/m);
  });

  it("logs the real client and the PROXY header's address", () => {
    const format = /log_format ingress ([^;]*);/.exec(conf)![1]!;
    for (const v of ["$remote_addr", "$proxy_protocol_addr", "$realip_remote_addr", "$ssl_server_name"]) assert.ok(format.includes(v), v);
  });

  it("rejects unknown names on every port with the union of its sites' protocols", () => {
    for (const port of [443, 8443]) {
      assert.ok(conf.includes(`listen ${port} ssl proxy_protocol default_server;\n`));
      assert.ok(conf.includes(`listen [::]:${port} ssl proxy_protocol default_server;\n`));
    }
    assert.equal(conf.match(/ssl_reject_handshake on;/g)!.length, 2);
  });

  it("includes the sites from the current release", () => {
    assert.match(conf, /^    include \/srv\/ingress\/current\/nginx\/sites\/\*\.conf;$/m);
  });

  it("refuses a host that is not a web host", () => {
    assert.throws(() => renderNginxConfig(ingressHost(stacks[0]!)), /is not a web host/);
  });
});

describe("site server blocks", () => {
  it("listen with PROXY protocol on IPv4 and IPv6 and trust only the LB's header", () => {
    for (const h of hosts) {
      for (const s of h.web!.sites) {
        const text = renderNginxSite(h, s);
        const port = s.site.port;
        assert.ok(text.includes(`    listen ${port} ssl proxy_protocol;\n    listen [::]:${port} ssl proxy_protocol;\n`));
        assert.ok(text.includes(`    server_name ${s.site.hostname};\n`));
        const trusted = [...text.matchAll(/set_real_ip_from (\S+);/g)].map((m) => m[1]);
        assert.deepEqual(trusted, h.web!.realIpFrom);
        assert.ok(trusted.length > 0);
        assert.match(text, /^    real_ip_header proxy_protocol;$/m);
        assert.ok(text.includes(`    ssl_certificate ${s.cert};\n    ssl_certificate_key ${s.key};\n`));
        assert.ok(text.includes(`    ssl_protocols ${s.site.tlsProtocols.join(" ")};\n`));
        assert.ok(text.includes(`    location = ${s.site.healthPath} {\n        access_log off;\n`));
        assert.ok(text.includes("    location ^~ /.well-known/acme-challenge/ {\n        root /var/www/acme;\n"));
      }
    }
  });

  it("the prod frontend trusts the prod LB address", () => {
    const h = host("prod", "frontend");
    assert.match(renderNginxSite(h, site(h, "fiscalismia.com")), /^    set_real_ip_from 172\.24\.1\.3;$/m);
  });

  it("a body site returns the original demo body with a newline", () => {
    const h = host("demo", "demo");
    assert.ok(renderNginxSite(h, site(h, "demo.fiscalismia.com")).includes("return 200 'Hello from nginx, real client IP is $remote_addr\\n';"));
  });

  it("an upstream site proxies with the client's address in the headers", () => {
    const h = host("standalone-demo", "web");
    const text = renderNginxSite(h, site(h, "api.demo.example.com"));
    for (const line of [
      "proxy_pass http://127.0.0.1:8080;",
      "proxy_set_header Host $host;",
      "proxy_set_header X-Real-IP $remote_addr;",
      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "proxy_set_header X-Forwarded-Proto https;",
    ]) {
      assert.ok(text.includes(`        ${line}\n`), line);
    }
    assert.doesNotMatch(text, /return 200 'Hello/);
  });
});

describe("nginx -t (Debian's 1.22), with test certificates", { skip: (!isRoot || !haveBinary("nginx")) && "needs root and nginx" }, () => {
  for (const h of hosts) {
    it(`${h.stack}/${h.name}`, () =>
      withSandbox(async (sb) => {
        const ns = await sb.namespace("ngt");
        const dir = await sb.subdir("nginx");
        const cert = await selfSignedCertificate(dir, h.web!.sites.map((s) => s.site.hostname));
        const r = await nginxTest(ns, stageNginx(dir, h, cert));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /test is successful/);
        assert.doesNotMatch(r.stderr, /\[(warn|emerg|alert)\]/);
      }));
  }
});
