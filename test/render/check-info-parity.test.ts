// Both LB engines show the same text for a passed check (contract/certificate-info): real HAProxy
// with the http-check rules render/haproxy.ts writes, and the ts proxy's runCheck, both checking
// one real nginx whose health location answers the certificate headers per SNI. The expected
// text is what checkInfoText makes of the headers curl gets from that nginx. Everything runs in
// one network namespace; HAProxy's text is read from its stats socket.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import {
  ACME_HEADER,
  CERTIFICATE_EXPIRES_HEADER,
  CERTIFICATE_HEADER,
  checkInfoText,
  HAPROXY_CHECK_TEXT_MAX,
  haproxyCheckInfoRules,
  parseHealthHeaders,
  type CertificateInfo,
} from "../../contract/certificate-info";
import type { HealthCheckConfig, ServerConfig } from "../../contract/proxy-config";
import { PollAbort, pollUntil } from "../../lab/command";
import { sandboxNginxMain, startNginx } from "../../lab/daemons";
import { haproxyCommand, parseShowStat, type HaproxyServerState } from "../../lab/haproxy-stats";
import { cleanupStale, Sandbox } from "../../lab/sandbox";
import { selfSignedCertificate } from "../../lab/tls";
import type { CheckResult } from "../../proxy/health/check-state";
import { renderHaproxyRoutes } from "../../render/haproxy";
import { ingressHost, prodPlan } from "./validators/plans";
import { haveBinary, isRoot } from "./validators/sandbox";

const ROOT = join(__dirname, "..", "..");
const PREFIX = "igparity";
const PORT = 8443;
const HEALTH_PATH = "/healthz";
const DAY_S = 86_400;
/** CI machines are loaded: every wait gets this long before it fails. */
const DEADLINE_MS = 60_000;

interface Case {
  readonly id: string;
  readonly title: string;
  readonly sni: string;
  /** Names of the case's own certificate: nginx picks the server block, and so the headers, by SNI. */
  readonly certNames: readonly string[];
  /** Whole days until the certificate's expiry, negative once expired; absent: no expiry header. */
  readonly days?: number;
  readonly description?: string;
  readonly acme?: string;
}

/** 30 characters each: five of them push HAProxy's text well past its 127. */
const LONG_NAMES = [1, 2, 3, 4, 5].map((i) => `site-${i}-abcdefghijklmno.example`);

const CASES: readonly Case[] = [
  { id: "a", title: "90 days out, acme ok", sni: "a.example", certNames: ["a.example", "www.a.example"], days: 90, description: "issuer R11; names a.example,www.a.example", acme: "ok" },
  { id: "b", title: "5 days out: WARNING, acme failing", sni: "b.example", certNames: ["b.example"], days: 5, description: "issuer R11; names b.example", acme: "failing: 2 run(s), next 2026-12-02T08:00Z" },
  { id: "c", title: "no headers at all (a web server of an older release)", sni: "c.example", certNames: ["c.example"] },
  { id: "d", title: "a description long enough that HAProxy cuts the text", sni: "d.example", certNames: ["d.example", ...LONG_NAMES], days: 30, description: `issuer R11; names d.example,${LONG_NAMES.join(",")}`, acme: "no run yet" },
  { id: "e", title: "expired 2 days ago: negative days, WARNING", sni: "e.example", certNames: ["e.example"], days: -2, description: "issuer R11; names e.example", acme: "ok" },
];

/**
 * The notAfter of a case, half a day further from now than its whole days: the day count sits
 * as far from a boundary as it can, so it holds for the whole run.
 */
function expiresAt(days: number, nowMs: number): number {
  return Math.floor(nowMs / 1000) + days * DAY_S + Math.sign(days) * (DAY_S / 2);
}

/** A header value in double quotes, as apply.sh writes it; nginx would expand a `$` or end at a `"`. */
function nginxQuoted(value: string): string {
  assert.match(value, /^[^"\\$\r\n]*$/, `header value ${value} needs no escaping`);
  return `"${value}"`;
}

function serverBlock(c: Case, cert: string, key: string, nowMs: number): string {
  const headers = [
    ...(c.description !== undefined ? [`add_header ${CERTIFICATE_HEADER} ${nginxQuoted(c.description)} always;`] : []),
    ...(c.days !== undefined ? [`add_header ${CERTIFICATE_EXPIRES_HEADER} ${nginxQuoted(String(expiresAt(c.days, nowMs)))} always;`] : []),
    ...(c.acme !== undefined ? [`add_header ${ACME_HEADER} ${nginxQuoted(c.acme)} always;`] : []),
  ];
  return `  server {
    listen 127.0.0.1:${PORT} ssl proxy_protocol;
    server_name ${c.sni};
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    location = ${HEALTH_PATH} {
${headers.map((h) => `      ${h}`).join("\n")}
      return 200 "ok\\n";
    }
  }
`;
}

/** The check lines of one backend, in the order renderBackend writes them. */
function checkLines(sni: string, path: string): string[] {
  const rules = haproxyCheckInfoRules(200);
  return ["option httpchk", ...rules.beforeSend, `http-check send meth GET uri ${path} hdr Host ${sni}`, ...rules.expect];
}

function haproxyConfig(socket: string): string {
  const backends = CASES.map((c) =>
    [
      `backend case_${c.id}`,
      "mode tcp",
      "timeout connect 5s",
      "timeout server 30s",
      "timeout check 5s",
      ...checkLines(c.sni, HEALTH_PATH),
      `server web 127.0.0.1:${PORT} send-proxy-v2 check check-send-proxy check-ssl verify none check-sni ${c.sni} inter 300ms`,
    ].join("\n    "),
  );
  return ["global", "    zero-warning", `    stats socket ${socket} mode 600 level admin`, "", ...backends.map((b) => `${b}\n`)].join("\n");
}

/** Node cannot enter a namespace: a child started by `ip netns exec` runs the checks and prints their results. */
const RUN_CHECKS = `
const { runCheck } = require(${JSON.stringify(join(ROOT, "proxy", "health", "run-check"))});
Promise.all(JSON.parse(process.argv[1]).map(([server, check]) => runCheck(server, check))).then((r) => process.stdout.write(JSON.stringify(r)));
`;

function tsCheck(c: Case): [ServerConfig, HealthCheckConfig] {
  return [
    { name: "web", address: "127.0.0.1", port: PORT },
    { type: "tls", intervalMs: 300, timeoutMs: 10_000, fall: 3, rise: 2, sni: c.sni, sendProxyV2: true, http: { path: HEALTH_PATH, expectStatus: 200 } },
  ];
}

/** What a case's headers, written at `writtenMs`, should parse to at `nowMs`: proof nginx answers what the case asked for. */
function intended(c: Case, writtenMs: number, nowMs: number): CertificateInfo {
  return parseHealthHeaders(
    [
      ...(c.description !== undefined ? [`${CERTIFICATE_HEADER}: ${c.description}`] : []),
      ...(c.days !== undefined ? [`${CERTIFICATE_EXPIRES_HEADER}: ${expiresAt(c.days, writtenMs)}`] : []),
      ...(c.acme !== undefined ? [`${ACME_HEADER}: ${c.acme}`] : []),
    ],
    nowMs,
  );
}

const cut = (text: string): string => text.slice(0, HAPROXY_CHECK_TEXT_MAX);

/**
 * `actual` must be `expected` (the text when curl read the headers) as the engine shows it. Only
 * a day boundary passing before the engine read the headers may change it, and then only to the
 * text at the other end of the window: nothing else may differ.
 */
function assertSameText(actual: string, expected: string, shown: (text: string) => string, lines: readonly string[], fromMs: number, toMs: number, what: string): void {
  const ends = [fromMs, toMs].map((t) => shown(checkInfoText(parseHealthHeaders(lines, t))));
  if (ends[0] === ends[1]) assert.equal(actual, shown(expected), what);
  else assert.ok(ends.includes(actual), `${what}: ${JSON.stringify(actual)} is neither ${ends.map((e) => JSON.stringify(e)).join(" nor ")}`);
}

test(
  "HAProxy's last_chk and the ts proxy's check info are the same text for the same nginx health location",
  { skip: (!isRoot || !["haproxy", "nginx", "curl", "openssl"].every(haveBinary)) && "needs root, haproxy, nginx, curl and openssl", timeout: 180_000 },
  async (t) => {
    await cleanupStale(PREFIX);
    const sb = await Sandbox.create({ prefix: PREFIX });
    t.after(() => sb.teardown());
    const ns = await sb.namespace("web");
    // Before any header is read: the start of every window a day boundary could fall in.
    const startedMs = Date.now();

    const certDir = await sb.subdir("certs");
    const blocks: string[] = [];
    for (const c of CASES) {
      const { certPath, keyPath } = await selfSignedCertificate(certDir, c.certNames, c.id);
      blocks.push(serverBlock(c, certPath, keyPath, startedMs));
    }
    // An SNI that names no case gets no handshake, so no check can pass on another case's headers.
    const reject = `  server {\n    listen 127.0.0.1:${PORT} ssl proxy_protocol default_server;\n    ssl_reject_handshake on;\n  }\n`;
    await startNginx(sb, ns, {
      name: "nginx",
      config: sandboxNginxMain({ http: ["  ssl_protocols TLSv1.2 TLSv1.3;", reject, ...blocks].join("\n") }),
      waitFor: [{ port: PORT }],
      timeoutMs: DEADLINE_MS,
    });

    const fromCurl = new Map<string, { readonly lines: string[]; readonly expected: string }>();
    for (const c of CASES) {
      const r = await ns.exec(
        ["curl", "--haproxy-protocol", "-sk", "-D", "-", "-o", "/dev/null", "--max-time", "20", "--resolve", `${c.sni}:${PORT}:127.0.0.1`, `https://${c.sni}:${PORT}${HEALTH_PATH}`],
        { timeoutMs: 30_000 },
      );
      const [status, ...rest] = r.stdout.split("\r\n");
      assert.match(status ?? "", /^HTTP\/1\.1 200 /, r.stdout);
      const lines = rest.filter((l) => l !== "");
      const now = Date.now();
      assert.deepEqual(parseHealthHeaders(lines, now), intended(c, startedMs, now), `(${c.id}) nginx answers the case's headers:\n${r.stdout}`);
      fromCurl.set(c.id, { lines, expected: checkInfoText(parseHealthHeaders(lines, now)) });
    }

    const hapDir = await sb.subdir("haproxy");
    const cfg = join(hapDir, "haproxy.cfg");
    const socket = join(hapDir, "admin.sock");
    await writeFile(cfg, haproxyConfig(socket));
    const checked = await ns.exec(["haproxy", "-c", "-f", cfg], { allowFailure: true, timeoutMs: DEADLINE_MS });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.doesNotMatch(checked.stdout + checked.stderr, /WARNING|ALERT/);

    const haproxy = await ns.spawn("haproxy", ["haproxy", "-db", "-f", cfg]);
    let last: HaproxyServerState[] = [];
    const rows = await pollUntil(
      "an L7OK check with a text for every server",
      async () => {
        if (!haproxy.running) throw new PollAbort(`haproxy exited (${JSON.stringify(haproxy.exit)}):\n${await haproxy.log()}`);
        last = parseShowStat(await haproxyCommand(socket, "show stat", 5000));
        const done = CASES.every((c) => last.some((r) => r.backend === `case_${c.id}` && r.checkStatus === "L7OK" && r.lastCheck !== ""));
        return done ? last : undefined;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 100 },
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}; last rows: ${JSON.stringify(last)}`);
    });
    const haproxyReadMs = Date.now();

    const ran = await ns.exec([process.execPath, "--import", "tsx", "--eval", RUN_CHECKS, JSON.stringify(CASES.map(tsCheck))], { cwd: ROOT, timeoutMs: DEADLINE_MS });
    const tsResults = JSON.parse(ran.stdout) as CheckResult[];
    const tsReadMs = Date.now();

    await t.test("the backends' check lines are the ones render/haproxy.ts writes", () => {
      const lb = ingressHost(prodPlan());
      const backend = lb.ingress!.fragment.backends[0]!;
      const routes = renderHaproxyRoutes(lb.ingress!.fragment, lb.ingress!);
      const section = routes.split(/\n(?=backend )/).find((s) => s.startsWith(`backend ${backend.name}\n`));
      assert.ok(section, routes);
      const lines = section.split("\n").map((l) => l.trim());
      const from = lines.indexOf("option httpchk");
      const mine = checkLines(backend.check.sni, backend.check.path);
      assert.deepEqual(lines.slice(from, from + mine.length), mine);
      assert.match(lines[from + mine.length] ?? "", /^server /, "the servers follow the last http-check line");
    });

    for (const [i, c] of CASES.entries()) {
      await t.test(`(${c.id}) ${c.title}`, () => {
        const { lines, expected } = fromCurl.get(c.id)!;
        const row = rows.find((r) => r.backend === `case_${c.id}`)!;
        const ts = tsResults[i]!;
        assert.equal(row.checkCode, 200, JSON.stringify(row));
        assertSameText(row.lastCheck, expected, cut, lines, startedMs, haproxyReadMs, `(${c.id}) HAProxy's last_chk`);
        assert.deepEqual([ts.code, ts.passed, ts.httpStatus], ["L7OK", true, 200], JSON.stringify(ts));
        assertSameText(ts.info, expected, (text) => text, lines, startedMs, tsReadMs, `(${c.id}) runCheck's info`);
        if (c.id === "d") {
          assert.deepEqual(LONG_NAMES.map((n) => n.length), [30, 30, 30, 30, 30]);
          assert.ok(expected.length > HAPROXY_CHECK_TEXT_MAX, `the full text is ${expected.length} characters: ${expected}`);
          assert.equal(row.lastCheck.length, HAPROXY_CHECK_TEXT_MAX, row.lastCheck);
          // What an operator acts on comes before the names, so the cut leaves it whole.
          const info = parseHealthHeaders(lines, haproxyReadMs);
          assert.ok(row.lastCheck.startsWith(checkInfoText({ ...info, description: "" })), row.lastCheck);
          assert.match(row.lastCheck, new RegExp(`^cert ${info.daysLeft}d left \\(ok\\) until \\d{4}-\\d\\d-\\d\\d; acme no run yet; issuer R11; names `));
        }
      });
    }
  },
);
