/**
 * One active check, what HAProxy's `check [check-send-proxy] check-ssl verify
 * none check-sni <sni>` with `option httpchk` + `http-check send meth GET uri
 * <path> hdr Host <host>` does: connect, PROXY v2 LOCAL header, TLS without
 * verifying the certificate (the check proves the listener serves TLS, not
 * whose certificate it holds), then GET and compare the status. One deadline
 * covers the whole check; where it strikes picks the code (L4/L6/L7 TOUT).
 * A passed HTTP check reads the response head for the web server's own
 * description of its certificate (contract/certificate-info) and says it in
 * the info, as HAProxy's `http-check expect ... on-success` does.
 */
import net from "node:net";
import tls from "node:tls";
import { encodeProxyV2 } from "../codec/proxy-v2-encoder";
import { HealthCheckConfig, ServerConfig } from "../../contract/proxy-config";
import { CertificateInfo, checkInfoText, parseHealthHeaders } from "../../contract/certificate-info";
import { CheckCode, CheckResult } from "./check-state";

const MAX_RESPONSE_HEAD = 16 * 1024;

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  EADDRNOTAVAIL: "Cannot assign requested address",
};

export function runCheck(server: ServerConfig, check: HealthCheckConfig): Promise<CheckResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let layer: 4 | 6 | 7 = 4;
    let settled = false;
    let stream: net.Socket | tls.TLSSocket | null = null;
    const raw = net.connect({ host: server.address, port: server.port, noDelay: true });
    const done = (code: CheckCode, passed: boolean, info: string, httpStatus?: number, certificate?: CertificateInfo): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream?.destroy();
      raw.destroy();
      resolve({
        code,
        passed,
        info,
        durationMs: Math.round(performance.now() - started),
        ...(httpStatus !== undefined ? { httpStatus } : {}),
        ...(certificate !== undefined ? { certificate } : {}),
      });
    };
    /** Set once a status line with the expected status has arrived: what is left is reading the headers. */
    let passing: { readonly status: number; readonly headers: () => string[] } | null = null;
    const pass = (): void => {
      if (passing === null) return;
      const certificate = parseHealthHeaders(passing.headers(), Date.now());
      done("L7OK", true, checkInfoText(certificate), passing.status, certificate);
    };
    const timer = setTimeout(() => done(layer === 4 ? "L4TOUT" : layer === 6 ? "L6TOUT" : "L7TOUT", false, `after ${check.timeoutMs} ms`), check.timeoutMs);
    const failed = (error: NodeJS.ErrnoException): void => {
      // The status already passed: a reset cutting the headers short does not undo that.
      if (passing !== null) return pass();
      const info = ERRNO_TEXT[error.code ?? ""] ?? error.message;
      if (layer === 4) done("L4CON", false, info);
      else if (layer === 6) done("L6RSP", false, info);
      else done("L7RSP", false, info);
    };
    raw.on("error", failed);
    raw.once("connect", () => {
      if (check.sendProxyV2) raw.write(encodeProxyV2({ command: "local" }));
      if (check.type === "tcp" && check.http === undefined) return done("L4OK", true, "");
      if (check.type === "tcp") {
        stream = raw;
        return request();
      }
      layer = 6;
      const secure = tls.connect({ socket: raw, rejectUnauthorized: false, ...(check.sni !== undefined ? { servername: check.sni } : {}) });
      stream = secure;
      secure.on("error", failed);
      secure.once("secureConnect", () => (check.http === undefined ? done("L6OK", true, "") : request()));
    });

    const request = (): void => {
      const http = check.http!;
      const s = stream!;
      layer = 7;
      const host = http.host ?? check.sni ?? server.address;
      // HTTP/1.0 with Connection: close, as HAProxy's httpchk sends by default: the server answers and closes.
      s.write(`GET ${http.path} HTTP/1.0\r\nHost: ${host}\r\nUser-Agent: ingress-proxy-check\r\nConnection: close\r\n\r\n`);
      let head = "";
      let eol = -1;
      // The header lines that arrived whole: a line cut by a close or by the size bound is left out, not half read.
      const headers = (): string[] => {
        const end = head.indexOf("\r\n\r\n");
        const block = end >= 0 ? head.slice(eol + 2, end) : head.slice(eol + 2, head.lastIndexOf("\r\n") + 2);
        return block.split("\r\n").filter((line) => line !== "");
      };
      s.on("data", (chunk: Buffer) => {
        head += chunk.toString("latin1");
        if (passing === null) {
          eol = head.indexOf("\r\n");
          if (eol < 0) {
            if (head.length > MAX_RESPONSE_HEAD) done("L7RSP", false, "no status line");
            return;
          }
          const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(head.slice(0, eol));
          if (m === null) return done("L7RSP", false, "not an HTTP status line");
          const status = Number(m[1]);
          // A failed check says the reason phrase, as before; only a passed one needs the headers.
          if (status !== http.expectStatus) return done("L7STS", false, m[2] ?? "", status);
          passing = { status, headers };
        }
        // Past the bound, what arrived is all the check reads: a long head does not fail a passed status.
        if (head.includes("\r\n\r\n") || head.length > MAX_RESPONSE_HEAD) pass();
      });
      s.once("end", () => (passing !== null ? pass() : done("L7RSP", false, "connection closed before a status line")));
    };
  });
}
