/**
 * The stats page's content: per listener, backend and server, from the health
 * monitor (in the primary) and the workers' counters added up. Pure; three
 * renderings of one report: JSON, text, HTML.
 */
import { certificateTiming, type CertificateInfo } from "../../contract/certificate-info";
import { CHECK_DESCRIPTION } from "../health/check-state";
import { ServerHealthView, serverId } from "../health/monitor";
import { backendKey, frontendKey, serverKey } from "../engine/counters";
import { WorkerStats } from "../engine/worker-stats";
import { ProxyConfig } from "../../contract/proxy-config";

export interface Traffic {
  /** Live sessions. */
  readonly current: number;
  /** Finished sessions since start. */
  readonly sessions: number;
  /** Client to server, and server to client, of finished sessions. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** CertificateInfo as the JSON page gives it: the expiry as an ISO 8601 UTC time. */
export interface CertificateReport {
  readonly description?: string;
  readonly expiresAt?: string;
  readonly daysLeft?: number;
  readonly warning?: boolean;
  readonly acme?: string;
}

export interface ServerReport extends Traffic {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** "UP", "DOWN" or "no check". */
  readonly status: string;
  /** HAProxy's status column: "UP", "UP 1/3", "DOWN 1/2", "DOWN", "no check". */
  readonly statusDetail: string;
  /** HAProxy's check_status: INI before the first check, then L4OK, L4TOUT, L4CON, L6*, L7OK, L7STS, ... */
  readonly checkStatus: string;
  readonly checkDescription: string;
  readonly checkInfo: string;
  readonly checkCode?: number;
  readonly checkDurationMs?: number;
  /** Seconds since the last UP/DOWN change. */
  readonly lastChangeS: number;
  /** What the last passed HTTP check said about the server's certificate. */
  readonly certificate?: CertificateReport;
}

export interface BackendReport extends Traffic {
  readonly name: string;
  /** UP while any server can take connections. */
  readonly status: "UP" | "DOWN";
  readonly servers: readonly ServerReport[];
}

export interface ListenerReport extends Traffic {
  readonly name: string;
  readonly mode: string;
  readonly rateLimited: number;
  /** Refused at maxconn (HAProxy leaves those in the accept backlog; see docs/proxy.md). */
  readonly maxconnRefused: number;
}

export interface StatsReport {
  readonly generatedAt: string;
  readonly uptimeS: number;
  readonly workers: number;
  readonly held: number;
  readonly listeners: readonly ListenerReport[];
  readonly backends: readonly BackendReport[];
}

/** Days left as of the report, not the last passed check: a server DOWN for days keeps counting down. */
function certificateReport(c: CertificateInfo, now: number): CertificateReport {
  const timing = c.expiresAt !== undefined ? certificateTiming(c.expiresAt, now) : undefined;
  return {
    ...(c.description !== undefined ? { description: c.description } : {}),
    // Whole seconds: no ".000" to suggest a precision the header does not have.
    ...(timing ? { expiresAt: new Date(timing.expiresAt * 1000).toISOString().replace(/\.000Z$/, "Z"), daysLeft: timing.daysLeft, warning: timing.warning } : {}),
    ...(c.acme !== undefined ? { acme: c.acme } : {}),
  };
}

export function buildReport(config: ProxyConfig, health: readonly ServerHealthView[], stats: WorkerStats, workers: number, uptimeS: number, now: number = Date.now()): StatsReport {
  const counters = new Map(stats.counters.map((c) => [c.key, c]));
  const traffic = (key: string): Traffic => {
    const c = counters.get(key);
    return { current: c?.current ?? 0, sessions: c?.sessions ?? 0, bytesIn: c?.bytesIn ?? 0, bytesOut: c?.bytesOut ?? 0 };
  };
  const byId = new Map(health.map((h) => [serverId(h.backend, h.server), h]));
  const backends = config.backends.map((b): BackendReport => {
    const servers = b.servers.map((s): ServerReport => {
      const h = byId.get(serverId(b.name, s.name));
      const last = h?.last ?? null;
      const checked = b.healthCheck !== undefined;
      const checkStatus = !checked ? "" : last === null ? "INI" : last.code;
      return {
        name: s.name,
        address: s.address,
        port: s.port,
        status: h?.status ?? (checked ? "UP" : "no check"),
        statusDetail: h?.statusDetail ?? (checked ? "UP" : "no check"),
        checkStatus,
        checkDescription: checkStatus === "" ? "" : CHECK_DESCRIPTION[last?.code ?? "INI"],
        checkInfo: last?.info ?? "",
        ...(last?.httpStatus !== undefined ? { checkCode: last.httpStatus } : {}),
        ...(last !== null ? { checkDurationMs: last.durationMs } : {}),
        lastChangeS: Math.round((now - (h?.lastChange ?? now)) / 1000),
        ...traffic(serverKey(b.name, s.name)),
        ...(checked && h?.certificate ? { certificate: certificateReport(h.certificate, now) } : {}),
      };
    });
    return { name: b.name, status: servers.some((s) => s.status !== "DOWN") ? "UP" : "DOWN", servers, ...traffic(backendKey(b.name)) };
  });
  const listeners = config.listeners.map((l): ListenerReport => ({ name: l.name, mode: l.mode, rateLimited: stats.rateLimited[l.name] ?? 0, maxconnRefused: stats.maxconnRefused[l.name] ?? 0, ...traffic(frontendKey(l.name)) }));
  return { generatedAt: new Date(now).toISOString(), uptimeS, workers, held: stats.held, listeners, backends };
}

export function renderText(r: StatsReport): string {
  const lines = [`# proxy stats ${r.generatedAt} uptime ${r.uptimeS}s workers ${r.workers} held ${r.held}`];
  lines.push("# kind name status check code duration_ms current sessions bytes_in bytes_out info");
  for (const l of r.listeners) lines.push(`listener ${l.name} ${l.mode} - - - ${l.current} ${l.sessions} ${l.bytesIn} ${l.bytesOut} rate_limited=${l.rateLimited} maxconn_refused=${l.maxconnRefused}`);
  for (const b of r.backends) {
    lines.push(`backend ${b.name} ${b.status} - - - ${b.current} ${b.sessions} ${b.bytesIn} ${b.bytesOut} -`);
    for (const s of b.servers) {
      const status = s.statusDetail.replace(/ /g, "_");
      lines.push(`server ${b.name}/${s.name} ${status} ${s.checkStatus || "-"} ${s.checkCode ?? "-"} ${s.checkDurationMs ?? "-"} ${s.current} ${s.sessions} ${s.bytesIn} ${s.bytesOut} ${JSON.stringify(s.checkInfo)}`);
    }
  }
  return lines.join("\n") + "\n";
}

const esc = (text: string | number): string => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A table cell; one with a class is a value the page flags. */
type Cell = string | number | { readonly text: string; readonly cls: string };

/** The certificate column: the server's own words, so a warning leads and is flagged, not buried in the text. */
function certificateCell(c: CertificateReport | undefined): Cell {
  if (c === undefined) return "";
  const text = `${c.daysLeft ?? "-"}d left until ${c.expiresAt?.slice(0, 10) ?? "-"}; acme ${c.acme ?? "-"}; ${c.description ?? "-"}`;
  return c.warning === true ? { text: `WARNING: ${text}`, cls: "WARNING" } : text;
}

export function renderHtml(r: StatsReport): string {
  const td = (c: Cell) => (typeof c === "object" ? `<td class="${esc(c.cls)}">${esc(c.text)}</td>` : `<td>${esc(c)}</td>`);
  const row = (cells: Cell[], cls = "") => `<tr${cls ? ` class="${cls}"` : ""}>${cells.map(td).join("")}</tr>`;
  const head = (cells: string[]) => `<tr>${cells.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>`;
  const parts = [
    `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><title>proxy stats</title>`,
    `<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #999;padding:2px 6px}.DOWN{background:#f88}.UP{background:#8f8}.WARNING{background:#fc6;font-weight:bold}</style></head><body>`,
    `<p>${esc(r.generatedAt)}, up ${esc(r.uptimeS)} s, ${esc(r.workers)} worker(s). JSON: <a href="?json">?json</a>, text: <a href="?text">?text</a></p>`,
    `<table>${head(["listener", "mode", "current", "sessions", "bytes in", "bytes out", "rate limited", "refused at maxconn"])}`,
    ...r.listeners.map((l) => row([l.name, l.mode, l.current, l.sessions, l.bytesIn, l.bytesOut, l.rateLimited, l.maxconnRefused])),
    `</table>`,
  ];
  for (const b of r.backends) {
    parts.push(`<table>${head([b.name, "status", "check", "code", "duration ms", "info", "certificate", "last change s", "current", "sessions", "bytes in", "bytes out"])}`);
    for (const s of b.servers) {
      parts.push(
        row([`${s.name} ${s.address}:${s.port}`, s.statusDetail, s.checkStatus, s.checkCode ?? "", s.checkDurationMs ?? "", s.checkInfo, certificateCell(s.certificate), s.lastChangeS, s.current, s.sessions, s.bytesIn, s.bytesOut], s.status),
      );
    }
    parts.push(row(["backend", b.status, "", "", "", "", "", "", b.current, b.sessions, b.bytesIn, b.bytesOut], b.status), `</table>`);
  }
  parts.push(`</body></html>`);
  return parts.join("\n") + "\n";
}
