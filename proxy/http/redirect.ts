/**
 * The port-80 listener: every request gets a redirect to the same host and
 * path on https, like HAProxy's `http-request redirect scheme https code 301`.
 * node:http parses (bounded head, request timeout); the engine accepts the
 * sockets itself and hands them over, so maxconn and the rate limit apply as
 * on the TLS listener.
 */
import http from "node:http";
import net from "node:net";
import { HttpRedirectListenerConfig } from "../../contract/proxy-config";

/** A Host header we are willing to echo into a Location: a name, IPv4 or [IPv6], optional port. */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::\d{1,5})?$/;

/** What HAProxy answers for the same failures: a head too large, and timeout http-request. */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

export type RedirectAnswer = { readonly status: number; readonly location?: string };

/** Pure: the answer to one request. */
export function redirectFor(hostHeader: string | undefined, target: string | undefined, code: number, httpsPort: number): RedirectAnswer {
  if (hostHeader === undefined || hostHeader === "") return { status: 400 };
  const m = HOST.exec(hostHeader);
  if (m === null) return { status: 400 };
  let path: string;
  if (target !== undefined && target.startsWith("/")) path = target;
  else if (target !== undefined && /^https?:\/\//i.test(target)) {
    // Absolute form (a proxy-style request line): keep its path and query.
    try {
      const url = new URL(target);
      path = url.pathname + url.search;
    } catch {
      return { status: 400 };
    }
  } else return { status: 400 };
  // Characters a client cannot legally send raw are refused rather than echoed.
  if (/[\x00-\x20\x7f]/.test(path)) return { status: 400 };
  const port = httpsPort === 443 ? "" : `:${httpsPort}`;
  return { status: code, location: `https://${m[1]}${port}${path}` };
}

export interface RedirectCounters {
  requests: number;
  redirects: number;
  errors: number;
}

export class RedirectServer {
  private readonly server: http.Server;
  readonly counters: RedirectCounters = { requests: 0, redirects: 0, errors: 0 };

  constructor(private config: HttpRedirectListenerConfig) {
    this.server = http.createServer({
      // node's own requestTimeout is only enforced for servers that listen themselves; these
      // sockets come from the engine, so handle() keeps the deadline.
      maxHeaderSize: config.maxHeaderBytes,
      // HTTP/1.1 without Host: node answers 400 itself; HTTP/1.0 without Host is ours to refuse.
      requireHostHeader: true,
    });
    this.server.on("request", (req, res) => this.answer(req, res));
    this.server.on("clientError", (error: NodeJS.ErrnoException, socket: net.Socket) => {
      this.counters.errors++;
      const status = CLIENT_ERROR_STATUS[error.code ?? ""] ?? "400 Bad Request";
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
  }

  update(config: HttpRedirectListenerConfig): void {
    this.config = config;
  }

  /** Takes over an accepted socket; the request head must be complete within requestTimeoutMs (HAProxy: 408). */
  handle(socket: net.Socket): void {
    const timer = setTimeout(() => {
      if (this.answered.has(socket)) return;
      this.counters.errors++;
      socket.end("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      setTimeout(() => socket.destroy(), 1000).unref();
    }, this.config.requestTimeoutMs);
    socket.once("close", () => clearTimeout(timer));
    this.server.emit("connection", socket);
  }

  private readonly answered = new WeakSet<net.Socket>();

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.answered.add(req.socket);
    this.counters.requests++;
    const answer = redirectFor(req.headers.host, req.url, this.config.code, this.config.httpsPort);
    if (answer.location === undefined) this.counters.errors++;
    else this.counters.redirects++;
    res.shouldKeepAlive = false;
    res.writeHead(answer.status, {
      ...(answer.location !== undefined ? { Location: answer.location } : {}),
      "Content-Length": "0",
      "Cache-Control": "no-cache",
      Connection: "close",
    });
    res.end();
  }
}
