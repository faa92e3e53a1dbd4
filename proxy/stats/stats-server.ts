/**
 * The stats endpoint, served by the primary: `<path>` as HTML, `<path>?text`
 * (or `<path>.txt`) as text, `<path>?json` (or `<path>.json`) as JSON. Like
 * HAProxy's `listen stats`: a source outside `allowedSources` gets 403 before
 * any credential is looked at, then HTTP basic auth (401 without or with wrong
 * credentials). The password comes from the environment variable the config
 * names (stats.env via the unit's EnvironmentFile), never from the file; when
 * it is unset nobody gets in. An optional unix socket (--stats-socket) serves
 * the same pages without auth: file permissions (0600) guard it, as HAProxy's
 * admin socket.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { chmodSync, rmSync } from "node:fs";
import http from "node:http";
import { canonicalIP } from "../codec/ip-address";
import { StatsConfig } from "../../contract/proxy-config";
import { Logger } from "../log/logger";
import { CidrSet } from "../net/cidr-set";
import { renderHtml, renderText, StatsReport } from "./report";

export type ReportSource = () => Promise<StatsReport>;

type Format = "html" | "text" | "json";

/** Which page a request target asks for, or null when it is not the stats path. */
export function statsFormat(target: string, path: string): Format | null {
  const q = target.indexOf("?");
  const p = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  if (p === `${path}.json`) return "json";
  if (p === `${path}.txt`) return "text";
  if (p !== path) return null;
  const keys = new Set(query.split(/[&;]/).map((k) => k.split("=")[0]));
  return keys.has("json") ? "json" : keys.has("text") ? "text" : "html";
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/** Constant-time check of an Authorization header against user and password. */
export function basicAuthOk(header: string | undefined, user: string, password: string): boolean {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
  if (m === null) return false;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  // Hashing first makes the comparison independent of the lengths.
  return timingSafeEqual(digest(decoded), digest(`${user}:${password}`));
}

export class StatsServer {
  private tcp: http.Server | null = null;
  private socket: http.Server | null = null;
  private bindKey = "";

  constructor(
    private readonly report: ReportSource,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Opens, moves or closes the TCP endpoint to match `config`. */
  async apply(config: StatsConfig | undefined): Promise<void> {
    const key = config === undefined ? "" : `${config.bind.address}|${config.bind.port}`;
    if (key !== this.bindKey && this.tcp !== null) {
      this.tcp.close();
      this.tcp.closeAllConnections();
      this.tcp = null;
    }
    this.bindKey = key;
    this.config = config;
    if (config === undefined || this.tcp !== null) return;
    if (config.auth !== undefined && !this.env[config.auth.passwordEnv]) {
      this.logger.event("error", "stats password variable is not set: every stats request gets 401", { variable: config.auth.passwordEnv });
    }
    const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000, connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res, true));
    await listen(server, { host: config.bind.address, port: config.bind.port, ipv6Only: config.bind.address.includes(":") });
    this.tcp = server;
  }

  async listenUnix(path: string): Promise<void> {
    rmSync(path, { force: true });
    const server = http.createServer((req, res) => void this.handle(req, res, false));
    await listen(server, { path });
    chmodSync(path, 0o600);
    this.socket = server;
  }

  close(): void {
    for (const s of [this.tcp, this.socket]) {
      s?.close();
      s?.closeAllConnections();
    }
    this.tcp = this.socket = null;
  }

  private config: StatsConfig | undefined;

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, remote: boolean): Promise<void> {
    const send = (status: number, body: string, type = "text/plain; charset=utf-8", extra: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-cache", "Content-Length": String(Buffer.byteLength(body)), ...extra });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const config = this.config;
    if (remote) {
      if (config === undefined) return send(503, "stats disabled\n");
      const allowed = config.allowedSources;
      if (allowed !== undefined && !new CidrSet(allowed).has(canonicalIP(req.socket.remoteAddress ?? ""))) return send(403, "403 Forbidden\n");
      const auth = config.auth;
      if (auth !== undefined) {
        const password = this.env[auth.passwordEnv];
        if (!password || !basicAuthOk(req.headers.authorization, auth.username, password)) {
          return send(401, "401 Unauthorized\n", undefined, { "WWW-Authenticate": 'Basic realm="proxy stats"' });
        }
      }
    }
    const format = statsFormat(req.url ?? "/", config?.path ?? "/stats");
    if (format === null) return send(404, "404 Not Found\n");
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "405 Method Not Allowed\n", undefined, { Allow: "GET, HEAD" });
    let report: StatsReport;
    try {
      report = await this.report();
    } catch (error) {
      return send(500, `stats unavailable: ${(error as Error).message}\n`);
    }
    if (format === "json") return send(200, JSON.stringify(report) + "\n", "application/json");
    if (format === "text") return send(200, renderText(report));
    return send(200, renderHtml(report), "text/html; charset=utf-8");
  }
}

function listen(server: http.Server, options: { host?: string; port?: number; ipv6Only?: boolean; path?: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.removeListener("error", reject);
      resolve();
    });
  });
}
