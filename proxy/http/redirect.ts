/**
 * The port-80 listener: every request gets a redirect to the same host and
 * path on https, like HAProxy's `http-request redirect scheme https code 301`,
 * except ACME http-01 challenges: those for a routed name go, as plain HTTP,
 * to the challenge responder of the server that owns it; those for any other
 * name get a 404. node:http parses (bounded head, request timeout); the engine
 * accepts the sockets itself and hands them over, so maxconn and the rate
 * limit apply as on the TLS listener.
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

export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
/** A token file is a few hundred bytes; anything much larger is not a challenge answer. */
const MAX_CHALLENGE_BYTES = 16 * 1024;

/**
 * Where a challenge for this Host goes: the owning server's responder; "redirect" when the
 * name is routed to servers that name no responder (the redirect to https, as before there
 * were responders); null when the name is not routed.
 */
export type ChallengeTarget = (host: string) => { readonly address: string; readonly port: number } | "redirect" | null;

/** The Host header's name, lowercased, without port; null when it is no name (an IP literal, a trailing dot). */
export function challengeHost(hostHeader: string | undefined): string | null {
  const m = HOST.exec(hostHeader ?? "");
  if (m === null || m[1]!.startsWith("[")) return null;
  return m[1]!.toLowerCase();
}

/** The request target's path: origin form as it is, absolute form (a proxy-style line) its path. */
function targetPath(target: string | undefined): string {
  if (target === undefined || target.startsWith("/")) return target ?? "";
  try {
    return /^https?:\/\//i.test(target) ? new URL(target).pathname : "";
  } catch {
    return "";
  }
}

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
  /** ACME challenges sent on to a responder. */
  challenges: number;
  errors: number;
}

export class RedirectServer {
  private readonly server: http.Server;
  readonly counters: RedirectCounters = { requests: 0, redirects: 0, challenges: 0, errors: 0 };

  constructor(
    private config: HttpRedirectListenerConfig,
    private readonly challengeTarget: ChallengeTarget = () => null,
  ) {
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
    if (targetPath(req.url).startsWith(ACME_CHALLENGE_PREFIX)) return this.challenge(req, res);
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

  private reply(res: http.ServerResponse, status: number, headers: Record<string, string> = {}, body: Buffer | string = ""): void {
    res.shouldKeepAlive = false;
    res.writeHead(status, { "Content-Length": String(Buffer.byteLength(body)), "Cache-Control": "no-cache", Connection: "close", ...headers });
    res.end(body);
  }

  /**
   * One GET (or HEAD) to the owning server's responder, bounded in time and size; its status
   * and body go back as they came.
   */
  private challenge(req: http.IncomingMessage, res: http.ServerResponse): void {
    const host = challengeHost(req.headers.host);
    const target = host === null ? null : this.challengeTarget(host);
    const path = targetPath(req.url);
    if (target === "redirect") {
      const answer = redirectFor(req.headers.host, req.url, this.config.code, this.config.httpsPort);
      this.counters.redirects++;
      return this.reply(res, answer.status, answer.location !== undefined ? { Location: answer.location } : {});
    }
    if (host === null || target === null || (req.method !== "GET" && req.method !== "HEAD") || /[\x00-\x20\x7f]/.test(path)) {
      this.counters.errors++;
      return this.reply(res, 404);
    }
    this.counters.challenges++;
    const upstream = http.request({ host: target.address, port: target.port, method: req.method, path, headers: { host } });
    // The whole exchange, not each idle gap: a responder dripping its answer cannot hold the slot.
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      upstream.destroy(new Error("timeout"));
    }, this.config.requestTimeoutMs);
    upstream.on("close", () => clearTimeout(deadline));
    upstream.on("error", () => {
      this.counters.errors++;
      // HAProxy's answers: 504 when the server took too long, 503 when it could not be reached.
      if (!res.headersSent) this.reply(res, timedOut ? 504 : 503);
      else res.destroy();
    });
    upstream.on("response", (answer) => {
      const chunks: Buffer[] = [];
      let size = 0;
      answer.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_CHALLENGE_BYTES) upstream.destroy(new Error("challenge answer too large"));
        else chunks.push(chunk);
      });
      answer.on("end", () => {
        const type = answer.headers["content-type"];
        this.reply(res, answer.statusCode ?? 502, type !== undefined ? { "Content-Type": type } : {}, req.method === "HEAD" ? "" : Buffer.concat(chunks));
      });
    });
    upstream.end();
  }
}
