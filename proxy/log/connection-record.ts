/**
 * One record per connection with the fields of the original setup's HAProxy
 * log-format: %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
 */

export interface ConnectionRecord {
  /** %ci / %cp: the real client (from the inbound PROXY header when trusted). */
  readonly clientIp: string;
  readonly clientPort: number;
  /** %t: accept time. */
  readonly acceptDate: Date;
  /** %ft */
  readonly frontend: string;
  /** %b: the frontend's name when no backend was chosen, as HAProxy does. */
  readonly backend: string;
  /** %s: "<NOSRV>" when no server was reached. */
  readonly server: string;
  /** %Tw: always 0 (no queue) once a backend was chosen, -1 before. */
  readonly Tw: number;
  /** %Tc: ms to connect to the server, retries included; -1 if never connected. */
  readonly Tc: number;
  /** %Tt: ms from accept to close. */
  readonly Tt: number;
  /** %B: bytes from server to client. */
  readonly bytesRead: number;
  /** %U (extra): bytes from client to server, the buffered hello included. */
  readonly bytesUploaded: number;
  /** %ts: two characters, HAProxy's termination state. */
  readonly terminationState: string;
  readonly actconn: number;
  readonly feconn: number;
  readonly beconn: number;
  readonly srvConn: number;
  readonly retries: number;
  readonly srvQueue: number;
  readonly backendQueue: number;
  /** Extras not in the HAProxy format: the normalised SNI and why a connection was refused. */
  readonly sni: string | null;
  readonly reason: string | null;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** HAProxy's %t: 27/Nov/2025:08:32:00.123, local time. */
export function formatAcceptDate(d: Date): string {
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatConnectionText(r: ConnectionRecord): string {
  return (
    `${r.clientIp}:${r.clientPort} [${formatAcceptDate(r.acceptDate)}] ${r.frontend} ${r.backend}/${r.server} ` +
    `${r.Tw}/${r.Tc}/${r.Tt} ${r.bytesRead} ${r.terminationState} ` +
    `${r.actconn}/${r.feconn}/${r.beconn}/${r.srvConn}/${r.retries} ${r.srvQueue}/${r.backendQueue}`
  );
}

/** Field names for the JSON form: HAProxy's names where it has them. */
export function connectionFields(r: ConnectionRecord): Record<string, string | number | null> {
  return {
    ci: r.clientIp,
    cp: r.clientPort,
    t: r.acceptDate.toISOString(),
    ft: r.frontend,
    b: r.backend,
    s: r.server,
    Tw: r.Tw,
    Tc: r.Tc,
    Tt: r.Tt,
    B: r.bytesRead,
    U: r.bytesUploaded,
    ts: r.terminationState,
    ac: r.actconn,
    fc: r.feconn,
    bc: r.beconn,
    sc: r.srvConn,
    rc: r.retries,
    sq: r.srvQueue,
    bq: r.backendQueue,
    sni: r.sni,
    reason: r.reason,
  };
}
