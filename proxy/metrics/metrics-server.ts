/**
 * The Prometheus endpoint, served by the primary on each of `metrics.binds`: `GET <path>` gives
 * the text exposition format, anything else 404. A source outside `allowedSources` gets 403, as
 * HAProxy's `http-request deny` in front of its exporter. No auth: the renderer binds private
 * addresses only, and the host firewall lets only the scrapers in.
 *
 * A private address may come up after the proxy (a boot whose private network is slow): a bind
 * that fails is tried again every few seconds instead of stopping the proxy, which HAProxy's
 * `transparent` bind gets from the kernel.
 */
import http from "node:http";
import { canonicalIP } from "../codec/ip-address";
import type { MetricsConfig } from "../../contract/proxy-config";
import type { Logger } from "../log/logger";
import { CidrSet } from "../net/cidr-set";

/** The exposition text and its content type, at the moment of a scrape. */
export type MetricsSource = () => Promise<{ readonly text: string; readonly contentType: string }>;

const RETRY_BIND_MS = 5000;

interface Endpoint {
  readonly key: string;
  server: http.Server | null;
  retry: NodeJS.Timeout | null;
  closed: boolean;
}

const bindKey = (b: MetricsConfig["binds"][number]): string => `${b.address}|${b.port}`;

export class MetricsServer {
  private config: MetricsConfig | undefined;
  private allowed: CidrSet | undefined;
  private readonly endpoints = new Map<string, Endpoint>();

  constructor(
    private readonly source: MetricsSource,
    private readonly logger: Logger,
    private readonly retryMs = RETRY_BIND_MS,
  ) {}

  /** Opens and closes endpoints to match `config`; the ones it keeps serve the new settings at once. */
  async apply(config: MetricsConfig | undefined): Promise<void> {
    this.config = config;
    this.allowed = config?.allowedSources !== undefined ? new CidrSet(config.allowedSources) : undefined;
    const wanted = new Map((config?.binds ?? []).map((b) => [bindKey(b), b]));
    for (const [key, endpoint] of this.endpoints) if (!wanted.has(key)) this.stop(endpoint);
    await Promise.all(
      [...wanted].filter(([key]) => !this.endpoints.has(key)).map(([key, bind]) => {
        const endpoint: Endpoint = { key, server: null, retry: null, closed: false };
        this.endpoints.set(key, endpoint);
        return this.open(endpoint, bind, true);
      }),
    );
  }

  /** Addresses actually listening, for tests and logs. */
  listening(): string[] {
    return [...this.endpoints.values()].filter((e) => e.server !== null).map((e) => e.key);
  }

  close(): void {
    for (const endpoint of this.endpoints.values()) this.stop(endpoint);
  }

  private stop(endpoint: Endpoint): void {
    endpoint.closed = true;
    if (endpoint.retry !== null) clearTimeout(endpoint.retry);
    endpoint.server?.close();
    endpoint.server?.closeAllConnections();
    this.endpoints.delete(endpoint.key);
  }

  private async open(endpoint: Endpoint, bind: MetricsConfig["binds"][number], first: boolean): Promise<void> {
    const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000, connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: bind.address, port: bind.port, ipv6Only: bind.address.includes(":") }, () => {
          server.removeListener("error", reject);
          resolve();
        });
      });
    } catch (error) {
      if (endpoint.closed) return;
      const code = (error as NodeJS.ErrnoException).code;
      // Only an address not up yet (a private network attached after boot) is worth waiting for;
      // a port taken or refused is an error to read, though the retry still follows it.
      if (code !== "EADDRNOTAVAIL") this.logger.event("error", "metrics endpoint cannot bind", { address: bind.address, port: bind.port, error: (error as Error).message });
      // Said once, not every few seconds: the first failure, then the bind that works.
      else if (first) this.logger.event("warn", "metrics endpoint cannot bind yet, trying again every few seconds", { address: bind.address, port: bind.port, error: (error as Error).message });
      endpoint.retry = setTimeout(() => void this.open(endpoint, bind, false), this.retryMs);
      endpoint.retry.unref();
      return;
    }
    if (endpoint.closed) {
      server.close();
      return;
    }
    endpoint.server = server;
    endpoint.retry = null;
    if (!first) this.logger.event("info", "metrics endpoint bound", { address: bind.address, port: bind.port });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: string, type = "text/plain; charset=utf-8", extra: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-cache", "Content-Length": String(Buffer.byteLength(body)), ...extra });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const config = this.config;
    if (config === undefined) return send(503, "metrics disabled\n");
    if (this.allowed !== undefined && !this.allowed.has(canonicalIP(req.socket.remoteAddress ?? ""))) return send(403, "403 Forbidden\n");
    const target = req.url ?? "/";
    const path = target.includes("?") ? target.slice(0, target.indexOf("?")) : target;
    if (path !== config.path) return send(404, "404 Not Found\n");
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "405 Method Not Allowed\n", undefined, { Allow: "GET, HEAD" });
    try {
      const { text, contentType } = await this.source();
      send(200, text, contentType);
    } catch (error) {
      send(500, `metrics unavailable: ${(error as Error).message}\n`);
    }
  }
}
