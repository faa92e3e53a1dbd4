/**
 * The proxy's Prometheus metrics (prom-client), from the same report as the stats page. The
 * workers keep the counts and the primary asks for them, so values are set at scrape time
 * rather than incremented where things happen. Names follow Prometheus' conventions (units in
 * the name, `_total` on counters) and HAProxy's exporter where it has the same figure, with
 * `ingress_` for `haproxy_`; docs/proxy.md lists each one's HAProxy counterpart.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { CHECK_DESCRIPTION, type CheckCode } from "../health/check-state";
import type { StatsReport } from "../stats/report";

/** Config reloads since start: accepted, and refused (the running config kept serving). */
export interface ReloadCounts {
  readonly accepted: number;
  readonly refused: number;
}

const CHECK_CODES = Object.keys(CHECK_DESCRIPTION) as CheckCode[];

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** The metrics set from the report, which every scrape empties and refills (not prom-client's defaults: those count on their own). */
interface Own {
  readonly registry: Registry;
  readonly metrics: (Counter<string> | Gauge<string>)[];
}

/** A counter whose total lives elsewhere: every scrape replaces what the previous one set. */
function total<L extends string>(own: Own, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const metric = new Counter({ name, help, labelNames, registers: [own.registry] });
  own.metrics.push(metric);
  return metric;
}

function gauge<L extends string>(own: Own, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  const metric = new Gauge({ name, help, labelNames, registers: [own.registry] });
  own.metrics.push(metric);
  return metric;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly own: Own = { registry: this.registry, metrics: [] };
  /** One scrape at a time: each one empties and refills the same series. */
  private scrapes: Promise<unknown> = Promise.resolve();

  private readonly workers = gauge(this.own, "ingress_workers", "Worker threads (or processes) serving connections.", []);
  private readonly currentConnections = gauge(this.own, "ingress_current_connections", "Connections open on every listener, held refusals included.", []);
  private readonly held = gauge(this.own, "ingress_held_connections", "Refused connections held open until their inspect deadline (silent drop).", []);
  private readonly reloads = total(this.own, "ingress_config_reloads_total", "Config reloads since start, by result: accepted, or refused (the running config kept serving).", ["result"]);

  private readonly frontendCurrent = gauge(this.own, "ingress_frontend_current_sessions", "Sessions open on the listener.", ["frontend"]);
  private readonly frontendSessions = total(this.own, "ingress_frontend_sessions_total", "Sessions of the listener that have ended.", ["frontend"]);
  private readonly frontendBytesIn = total(this.own, "ingress_frontend_bytes_in_total", "Bytes from clients, counted when a session ends.", ["frontend"]);
  private readonly frontendBytesOut = total(this.own, "ingress_frontend_bytes_out_total", "Bytes to clients, counted when a session ends.", ["frontend"]);
  private readonly rateLimited = total(this.own, "ingress_frontend_rate_limited_total", "Connections refused by the per-source rate limit.", ["frontend"]);
  private readonly maxconnRefused = total(this.own, "ingress_frontend_maxconn_refused_total", "Connections reset at maxconn after waiting for a place.", ["frontend"]);

  private readonly backendCurrent = gauge(this.own, "ingress_backend_current_sessions", "Sessions open to the backend.", ["backend"]);
  private readonly backendSessions = total(this.own, "ingress_backend_sessions_total", "Sessions of the backend that have ended.", ["backend"]);
  private readonly backendBytesIn = total(this.own, "ingress_backend_bytes_in_total", "Bytes from clients to the backend, counted when a session ends.", ["backend"]);
  private readonly backendBytesOut = total(this.own, "ingress_backend_bytes_out_total", "Bytes from the backend to clients, counted when a session ends.", ["backend"]);
  private readonly backendUp = gauge(this.own, "ingress_backend_up", "1 while any server of the backend can take connections.", ["backend"]);

  private readonly serverCurrent = gauge(this.own, "ingress_server_current_sessions", "Sessions open to the server.", ["backend", "server"]);
  private readonly serverSessions = total(this.own, "ingress_server_sessions_total", "Sessions of the server that have ended.", ["backend", "server"]);
  private readonly serverBytesIn = total(this.own, "ingress_server_bytes_in_total", "Bytes from clients to the server, counted when a session ends.", ["backend", "server"]);
  private readonly serverBytesOut = total(this.own, "ingress_server_bytes_out_total", "Bytes from the server to clients, counted when a session ends.", ["backend", "server"]);
  private readonly serverUp = gauge(this.own, "ingress_server_up", "1 while the server takes connections (UP, or without checks), 0 when DOWN.", ["backend", "server"]);
  private readonly checkStatus = gauge(this.own, "ingress_server_check_status", "1 for the code of the server's last check (INI before the first), 0 for the others.", ["backend", "server", "state"]);
  private readonly checkCode = gauge(this.own, "ingress_server_check_code", "HTTP status of the server's last check; absent before one answered.", ["backend", "server"]);
  private readonly checkDuration = gauge(this.own, "ingress_server_check_duration_seconds", "How long the server's last check took.", ["backend", "server"]);
  private readonly lastChange = gauge(this.own, "ingress_server_check_last_change_seconds", "Seconds since the server last went UP or DOWN (or since start).", ["backend", "server"]);
  private readonly certificateExpiry = gauge(
    this.own,
    "ingress_server_certificate_expiry_timestamp_seconds",
    "notAfter (Unix time) of the certificate the server's last passed check reported (x-ingress-certificate-expires).",
    ["backend", "server"],
  );

  constructor() {
    // process_start_time_seconds, CPU, memory, file descriptors, event loop lag: the primary's process.
    collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text for this report. */
  exposition(report: () => Promise<StatsReport>, reloads: ReloadCounts): Promise<string> {
    const next = this.scrapes.then(async () => {
      this.set(await report(), reloads);
      return this.registry.metrics();
    });
    this.scrapes = next.catch(() => undefined);
    return next;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every series from `report`: a backend or server a reload removed leaves no stale series behind. */
  private set(report: StatsReport, reloads: ReloadCounts): void {
    for (const metric of this.own.metrics) metric.reset();
    this.workers.set(report.workers);
    this.held.set(report.held);
    this.currentConnections.set(report.listeners.reduce((sum, l) => sum + l.current, report.held));
    this.reloads.inc({ result: "accepted" }, reloads.accepted);
    this.reloads.inc({ result: "refused" }, reloads.refused);
    for (const l of report.listeners) {
      const labels = { frontend: l.name };
      this.frontendCurrent.set(labels, l.current);
      this.frontendSessions.inc(labels, l.sessions);
      this.frontendBytesIn.inc(labels, l.bytesIn);
      this.frontendBytesOut.inc(labels, l.bytesOut);
      this.rateLimited.inc(labels, l.rateLimited);
      this.maxconnRefused.inc(labels, l.maxconnRefused);
    }
    for (const b of report.backends) {
      const labels = { backend: b.name };
      this.backendCurrent.set(labels, b.current);
      this.backendSessions.inc(labels, b.sessions);
      this.backendBytesIn.inc(labels, b.bytesIn);
      this.backendBytesOut.inc(labels, b.bytesOut);
      this.backendUp.set(labels, b.status === "UP" ? 1 : 0);
      for (const s of b.servers) this.setServer({ backend: b.name, server: s.name }, s);
    }
  }

  private setServer(labels: Labels<"backend" | "server">, s: StatsReport["backends"][number]["servers"][number]): void {
    this.serverCurrent.set(labels, s.current);
    this.serverSessions.inc(labels, s.sessions);
    this.serverBytesIn.inc(labels, s.bytesIn);
    this.serverBytesOut.inc(labels, s.bytesOut);
    this.serverUp.set(labels, s.status === "DOWN" ? 0 : 1);
    this.lastChange.set(labels, s.lastChangeS);
    // A server without checks has no check state to report.
    if (s.checkStatus !== "") for (const state of CHECK_CODES) this.checkStatus.set({ ...labels, state }, s.checkStatus === state ? 1 : 0);
    if (s.checkCode !== undefined) this.checkCode.set(labels, s.checkCode);
    if (s.checkDurationMs !== undefined) this.checkDuration.set(labels, s.checkDurationMs / 1000);
    const expires = s.certificate?.expiresAt;
    if (expires !== undefined) this.certificateExpiry.set(labels, Date.parse(expires) / 1000);
  }
}
