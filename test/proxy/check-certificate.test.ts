/**
 * A passed HTTP check reads what the web server's health location says about its certificate
 * (contract/certificate-info) and shows it as HAProxy's on-success text does, through the health
 * monitor into the stats page. Loopback only: a real TLS server behind a PROXY v2 header, as
 * nginx's `listen ... ssl proxy_protocol`, with a certificate made at test time.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import {
  ACME_HEADER,
  CERTIFICATE_EXPIRES_HEADER,
  CERTIFICATE_HEADER,
  checkInfoText,
  parseHealthHeaders,
} from "../../contract/certificate-info";
import { HealthCheckConfig, ProxyConfigInput } from "../../contract/proxy-config";
import { PROXY_V2_SIGNATURE } from "../../proxy/codec/proxy-v2-encoder";
import { validateProxyConfig } from "../../proxy/config/validate";
import { sumWorkerStats } from "../../proxy/engine/worker-stats";
import { HealthMonitor } from "../../proxy/health/monitor";
import { runCheck } from "../../proxy/health/run-check";
import { memoryLogger } from "../../proxy/log/logger";
import { buildReport } from "../../proxy/stats/report";
import { StatsServer } from "../../proxy/stats/stats-server";
import { selfSignedCertificate } from "../../lab/tls";
import { freePort, waitFor } from "./helpers/harness";

const DAY_S = 86_400;

/**
 * The three headers for a certificate `days` days out. An extra hour keeps the whole-day count
 * the same between the server's answer and the test's own computation a moment later.
 */
function certificateHeaders(days: number, description: string, acme = "ok"): string[] {
  const expires = Math.floor(Date.now() / 1000) + days * DAY_S + 3600;
  return [`${CERTIFICATE_HEADER}: ${description}`, `${CERTIFICATE_EXPIRES_HEADER}: ${expires}`, `${ACME_HEADER}: ${acme}`];
}

/** The expiry date certificateHeaders(days) gives, as the check text writes it. */
const dateIn = (days: number): string => new Date((Math.floor(Date.now() / 1000) + days * DAY_S + 3600) * 1000).toISOString().slice(0, 10);

const head = (status: string, headers: readonly string[]) => `HTTP/1.1 ${status}\r\nServer: nginx\r\nContent-Type: text/plain\r\n${headers.map((h) => `${h}\r\n`).join("")}Content-Length: 3\r\nConnection: close\r\n\r\n`;

type Answer = (socket: tls.TLSSocket, request: string) => Promise<void> | void;

interface HealthServer {
  readonly port: number;
  /** Connections whose first bytes were a PROXY v2 LOCAL header. */
  readonly localHeaders: () => number;
  close(): Promise<void>;
}

/** A TLS web server that, like nginx's `ssl proxy_protocol`, takes a PROXY v2 header before the handshake. */
async function startHealthServer(cert: string, key: string, answer: Answer): Promise<HealthServer> {
  const secureContext = tls.createSecureContext({ cert, key });
  let localHeaders = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on("close", () => sockets.delete(raw));
    raw.on("error", () => undefined);
    const onReadable = (): void => {
      // 12 bytes of signature, version and command, family, 2 bytes of length; LOCAL carries no addresses.
      const header = raw.read(16) as Buffer | null;
      if (header === null) return;
      raw.off("readable", onReadable);
      if (!header.subarray(0, 12).equals(PROXY_V2_SIGNATURE) || header[12] !== 0x20 || header.readUInt16BE(14) !== 0) return void raw.destroy();
      localHeaders++;
      // The ClientHello may already sit in the socket's buffer: TLSSocket reads that first.
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
      secure.on("error", () => undefined);
      let request = "";
      const onData = (chunk: Buffer): void => {
        request += chunk.toString("latin1");
        if (!request.includes("\r\n\r\n")) return;
        secure.off("data", onData);
        void answer(secure, request);
      };
      secure.on("data", onData);
    };
    raw.on("readable", onReadable);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    localHeaders: () => localHeaders,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Writes each piece on its own, waiting until it is handed to the kernel: separate TLS records, separate segments. */
async function writeApart(socket: tls.TLSSocket, pieces: readonly string[]): Promise<void> {
  for (const piece of pieces) await new Promise<void>((resolve, reject) => socket.write(piece, "latin1", (e) => (e ? reject(e) : resolve())));
}

const httpCheck = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  type: "tls",
  intervalMs: 1000,
  timeoutMs: 3000,
  fall: 1,
  rise: 1,
  sendProxyV2: true,
  sni: "site.example",
  http: { path: "/healthz", expectStatus: 200 },
  ...over,
});

describe("a passed HTTP check says what the health location says about the certificate", () => {
  let dir: string;
  let cert: string;
  let key: string;
  /** What the server answers next, per request path. */
  const answers = new Map<string, Answer>();
  let server: HealthServer;
  const check = (requestPath: string) => runCheck({ name: "s", address: "127.0.0.1", port: server.port }, httpCheck({ http: { path: requestPath, expectStatus: 200 } }));

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-certinfo-"));
    const files = await selfSignedCertificate(dir, ["site.example"]);
    [cert, key] = [readFileSync(files.certPath, "utf8"), readFileSync(files.keyPath, "utf8")];
    server = await startHealthServer(cert, key, (socket, request) => {
      const target = /^GET (\S+) /.exec(request)?.[1] ?? "";
      const answer = answers.get(target);
      if (answer === undefined) return void socket.end(head("404 Not Found", []) + "no\n");
      return answer(socket, request);
    });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("(a) a certificate 90 days out: L7OK, '(ok)', and the parsed certificate on the result", async () => {
    const headers = certificateHeaders(90, "issuer R11; names site.example,www.site.example");
    answers.set("/ninety", (s) => void s.end(head("200 OK", headers) + "ok\n"));
    const before = server.localHeaders();
    const r = await check("/ninety");
    const expected = parseHealthHeaders(headers, Date.now());
    assert.deepEqual([r.code, r.passed, r.httpStatus], ["L7OK", true, 200], JSON.stringify(r));
    assert.equal(r.info, checkInfoText(expected));
    assert.equal(r.info, `cert 90d left (ok) until ${dateIn(90)}; acme ok; issuer R11; names site.example,www.site.example`);
    assert.deepEqual(r.certificate, expected);
    assert.equal(server.localHeaders(), before + 1, "the check sent a PROXY v2 LOCAL header before TLS");
  });

  it("(b) a certificate 5 days out: '(WARNING)'", async () => {
    const headers = certificateHeaders(5, "issuer R11; names site.example", "failing: rate limited");
    answers.set("/five", (s) => void s.end(head("200 OK", headers) + "ok\n"));
    const r = await check("/five");
    assert.equal(r.code, "L7OK", JSON.stringify(r));
    assert.equal(r.info, checkInfoText(parseHealthHeaders(headers, Date.now())));
    assert.equal(r.info, `cert 5d left (WARNING) until ${dateIn(5)}; acme failing: rate limited; issuer R11; names site.example`);
    assert.equal(r.certificate?.warning, true);
  });

  it("(c) a web server that sends none of the headers (an older release): dashes, as HAProxy prints a missing sample", async () => {
    answers.set("/plain", (s) => void s.end(head("200 OK", []) + "ok\n"));
    const r = await check("/plain");
    assert.equal(r.code, "L7OK", JSON.stringify(r));
    assert.equal(r.info, checkInfoText({}));
    assert.equal(r.info, "cert -d left (-) until -; acme -; -");
    assert.deepEqual(r.certificate, {});
  });

  it("(d) a head split over many writes reads the same as one write", async () => {
    const headers = certificateHeaders(30, "issuer R11; names site.example");
    const whole = head("200 OK", headers);
    // Cuts inside the status line, inside a header name, between \r and \n, and just before the blank line.
    const cuts = [5, 20, whole.indexOf(CERTIFICATE_HEADER) + 4, whole.indexOf("\r\n", whole.indexOf(CERTIFICATE_EXPIRES_HEADER)) + 1, whole.length - 2];
    const pieces = [0, ...cuts].map((from, i) => whole.slice(from, [...cuts, whole.length][i]));
    assert.equal(pieces.join(""), whole);
    answers.set("/split", async (s) => {
      await writeApart(s, pieces);
      s.end("ok\n");
    });
    const r = await check("/split");
    assert.equal(r.code, "L7OK", JSON.stringify(r));
    assert.equal(r.info, checkInfoText(parseHealthHeaders(headers, Date.now())));
    assert.match(r.info, /^cert 30d left \(ok\) until \d{4}-\d\d-\d\d; acme ok; issuer R11; names site\.example$/);
  });

  it("(d) a server that closes right after the status line still passes, with what arrived", async () => {
    answers.set("/cut", async (s) => {
      await writeApart(s, ["HTTP/1.1 200 OK\r\n"]);
      s.end();
    });
    const r = await check("/cut");
    assert.deepEqual([r.code, r.passed, r.httpStatus, r.info], ["L7OK", true, 200, "cert -d left (-) until -; acme -; -"], JSON.stringify(r));
    // A header line the close cut in half is left out rather than read as a wrong value.
    answers.set("/half", async (s) => {
      await writeApart(s, [`HTTP/1.1 200 OK\r\n${ACME_HEADER}: ok\r\n`, `${CERTIFICATE_EXPIRES_HEADER}: 17`]);
      s.end();
    });
    const half = await check("/half");
    assert.deepEqual([half.code, half.info], ["L7OK", "cert -d left (-) until -; acme ok; -"], JSON.stringify(half));
  });

  it("a failed check keeps the reason phrase and carries no certificate; a close before the status line is still L7RSP", async () => {
    answers.set("/down", (s) => void s.end(head("503 Service Unavailable", certificateHeaders(90, "names site.example")) + "no\n"));
    const r = await check("/down");
    assert.deepEqual([r.code, r.passed, r.httpStatus, r.info, r.certificate], ["L7STS", false, 503, "Service Unavailable", undefined]);
    answers.set("/nothing", (s) => void s.end());
    const none = await check("/nothing");
    assert.deepEqual([none.code, none.passed, none.info], ["L7RSP", false, "connection closed before a status line"]);
  });

  it("a head longer than the bound is read up to the bound: the check settles without waiting for the rest", async () => {
    const headers = certificateHeaders(90, "names site.example");
    // Held open, no blank line: only the size bound can settle this check before its deadline.
    answers.set("/long", (s) => void s.write(`HTTP/1.1 200 OK\r\n${headers.join("\r\n")}\r\nx-filler: ${"x".repeat(20 * 1024)}\r\n`));
    const r = await check("/long");
    assert.deepEqual([r.code, r.info], ["L7OK", checkInfoText(parseHealthHeaders(headers, Date.now()))], JSON.stringify(r));
  });

  it("a head that never ends is bounded by the check's one deadline: L7TOUT, as HAProxy waits for whole headers", async () => {
    answers.set("/stall", (s) => void s.write(`HTTP/1.1 200 OK\r\n${ACME_HEADER}: ok\r\n`));
    const r = await runCheck({ name: "s", address: "127.0.0.1", port: server.port }, httpCheck({ timeoutMs: 300, http: { path: "/stall", expectStatus: 200 } }));
    assert.deepEqual([r.code, r.passed, r.info, r.certificate], ["L7TOUT", false, "after 300 ms", undefined]);
  });
});

describe("the stats page shows each server's certificate and flags a warning", () => {
  const HOSTILE = `issuer R11; names <script>alert("x")</script>&co`;
  let dir: string;
  let healthServer: HealthServer;
  let statsPort: number;
  let monitor: HealthMonitor;
  let stats: StatsServer;
  /** While set, the fresh site's health location answers 503: the check fails, the certificate seen before stays. */
  let freshFailing = false;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "pxt-certstats-"));
    const files = await selfSignedCertificate(dir, ["fresh.example", "soon.example"]);
    // One listener, a site per SNI, as nginx's server blocks.
    // Made once: headers rebuilt per check could straddle a second and differ between two readings.
    const fresh = certificateHeaders(90, "issuer R11; names fresh.example");
    const soon = certificateHeaders(5, HOSTILE, "failing: <b>timeout</b>");
    const bySni: Record<string, () => string[]> = { "fresh.example": () => fresh, "soon.example": () => soon };
    healthServer = await startHealthServer(readFileSync(files.certPath, "utf8"), readFileSync(files.keyPath, "utf8"), (s) => {
      const site = typeof s.servername === "string" ? s.servername : "";
      const headers = bySni[site]?.() ?? [];
      s.end(site === "fresh.example" && freshFailing ? head("503 Service Unavailable", headers) + "no\n" : head("200 OK", headers) + "ok\n");
    });
    statsPort = await freePort();
    const backend = (name: string) => ({
      name,
      servers: [{ name: "web", address: "127.0.0.1", port: healthServer.port }],
      healthCheck: { type: "tls" as const, intervalMs: 100, timeoutMs: 2000, fall: 1, rise: 1, sni: `${name}.example`, http: { path: "/healthz" } },
    });
    const input: ProxyConfigInput = {
      listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: 1 }] }],
      routes: [],
      backends: [backend("fresh"), backend("soon")],
      stats: { bind: { address: "127.0.0.1", port: statsPort } },
    };
    const validated = validateProxyConfig(input);
    if (!validated.ok) throw new Error(validated.errors.join("\n"));
    const config = validated.config;
    const logger = memoryLogger();
    monitor = new HealthMonitor(logger, () => undefined);
    monitor.apply(config);
    // As the primary builds it: the monitor's view, the workers' counters (none here).
    stats = new StatsServer(async () => buildReport(config, monitor.view(), sumWorkerStats([]), 1, 0), logger, {});
    await stats.apply(config.stats);
  });
  after(async () => {
    monitor?.stop();
    stats?.close();
    await healthServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const page = async (query: string) => (await fetch(`http://127.0.0.1:${statsPort}/stats${query}`)).text();
  type ServerJson = { checkStatus: string; checkInfo: string; certificate?: Record<string, unknown> };
  const servers = async (): Promise<Record<string, ServerJson>> => {
    const report = JSON.parse(await page("?json")) as { backends: { name: string; servers: ServerJson[] }[] };
    return Object.fromEntries(report.backends.map((b) => [b.name, b.servers[0]!]));
  };

  it("(e) JSON: a certificate object per server; HTML: a certificate column, the warning flagged, the header text escaped", async () => {
    await waitFor(() => monitor.view().every((v) => v.last?.code === "L7OK"), 10_000, "both sites' first passed check", () => JSON.stringify(monitor.view()));
    const json = await servers();
    const fresh = json.fresh!.certificate!;
    assert.equal(json.fresh!.checkStatus, "L7OK");
    assert.equal(fresh.description, "issuer R11; names fresh.example");
    assert.equal(fresh.daysLeft, 90);
    assert.equal(fresh.warning, false);
    assert.equal(fresh.acme, "ok");
    assert.match(String(fresh.expiresAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(Date.parse(String(fresh.expiresAt)), Number(monitor.view().find((v) => v.backend === "fresh")!.certificate!.expiresAt) * 1000);
    const soon = json.soon!;
    assert.deepEqual([soon.certificate!.description, soon.certificate!.daysLeft, soon.certificate!.warning, soon.certificate!.acme], [HOSTILE, 5, true, "failing: <b>timeout</b>"]);
    assert.equal(soon.checkInfo, `cert 5d left (WARNING) until ${dateIn(5)}; acme failing: <b>timeout</b>; ${HOSTILE}`);

    const html = await page("");
    assert.match(html, /<th>certificate<\/th>/);
    assert.ok(html.includes(`<td>90d left until ${dateIn(90)}; acme ok; issuer R11; names fresh.example</td>`), html);
    const warning = /<td class="WARNING">(WARNING: [^<]*)<\/td>/.exec(html);
    assert.ok(warning, html);
    assert.equal(warning[1], `WARNING: 5d left until ${dateIn(5)}; acme failing: &#60;b&#62;timeout&#60;/b&#62;; issuer R11; names &#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;co`);
    assert.ok(!html.includes("<script") && !html.includes("<b>"), "nothing the web server said reaches the page unescaped");
    assert.match(html, /\.WARNING\{/, "the page styles the flagged cell");
  });

  it("a failing check keeps the certificate of the last passed one", async () => {
    freshFailing = true;
    await waitFor(() => monitor.view().find((v) => v.backend === "fresh")?.last?.code === "L7STS", 10_000, "fresh failing");
    const fresh = (await servers()).fresh!;
    assert.deepEqual([fresh.checkStatus, fresh.checkInfo], ["L7STS", "Service Unavailable"]);
    assert.equal(fresh.certificate?.description, "issuer R11; names fresh.example");
  });
});
