import type { Netns } from "./netns";

// HTTPS requests made from inside a namespace with this very node binary, counting the raw
// bytes the server sent: "no answer" for an unknown SNI means not one byte, which curl's
// exit codes cannot tell apart from a failed handshake.

export type TlsOutcome = "response" | "closed" | "reset" | "timeout" | "refused" | "unreachable" | "error";

export interface TlsResult {
  readonly outcome: TlsOutcome;
  /** Whether the TCP connection was established. */
  readonly connected: boolean;
  /** Raw bytes received on the TCP connection (TLS records included). */
  readonly bytes: number;
  readonly status?: number;
  readonly body?: string;
  readonly detail?: string;
  readonly ms: number;
}

export interface TlsRequest {
  readonly address: string;
  readonly port: number;
  /** SNI; omitted: the ClientHello carries none. */
  readonly servername?: string;
  readonly path?: string;
  readonly timeoutMs?: number;
}

export interface TlsBurst extends TlsRequest {
  readonly count: number;
  /** Gap between connection starts; connections overlap. */
  readonly spacingMs: number;
}

const SCRIPT = `
const net = require("node:net");
const tls = require("node:tls");
const o = JSON.parse(process.argv[1]);
const CODES = { ECONNRESET: "reset", ECONNREFUSED: "refused", EHOSTUNREACH: "unreachable", ENETUNREACH: "unreachable" };
function one() {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const raw = net.connect({ host: o.address, port: o.port });
    let connected = false, settled = false, data = "";
    const done = (outcome, extra) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const bytes = raw.bytesRead;
      raw.destroy();
      resolve({ outcome, connected, bytes, ms: Date.now() - t0, ...extra });
    };
    const timer = setTimeout(() => done("timeout", { detail: "nothing within " + o.timeoutMs + " ms" }), o.timeoutMs);
    raw.on("connect", () => { connected = true; });
    const fail = (e) => done(CODES[e.code] || "error", { detail: (e.code || "") + " " + e.message });
    raw.on("error", fail);
    const opts = { socket: raw, rejectUnauthorized: false };
    if (o.servername) opts.servername = o.servername;
    const s = tls.connect(opts);
    s.on("error", fail);
    s.on("secureConnect", () => {
      s.write("GET " + o.path + " HTTP/1.1\\r\\nHost: " + (o.servername || o.address) + "\\r\\nConnection: close\\r\\n\\r\\n");
    });
    s.on("data", (b) => { data += b.toString("utf8"); });
    s.on("close", () => {
      if (data === "") return done(connected ? "closed" : "error", { detail: "closed without a response" });
      const m = /^HTTP\\/1\\.[01] (\\d{3})/.exec(data);
      const cut = data.indexOf("\\r\\n\\r\\n");
      done("response", { status: m ? Number(m[1]) : 0, body: cut < 0 ? "" : data.slice(cut + 4) });
    });
  });
}
(async () => {
  const pending = [];
  for (let i = 0; i < o.count; i++) {
    pending.push(one());
    if (o.spacingMs > 0 && i < o.count - 1) await new Promise((r) => setTimeout(r, o.spacingMs));
  }
  process.stdout.write(JSON.stringify(await Promise.all(pending)));
})();
`;

async function runScript(from: Netns, request: TlsRequest, count: number, spacingMs: number): Promise<TlsResult[]> {
  const timeoutMs = request.timeoutMs ?? 2000;
  const args = { path: "/", ...request, timeoutMs, count, spacingMs };
  const r = await from.exec([process.execPath, "-e", SCRIPT, JSON.stringify(args)], { timeoutMs: timeoutMs + count * spacingMs + 5000 });
  return JSON.parse(r.stdout) as TlsResult[];
}

/** One HTTPS GET from inside `from`; certificates are not verified (they are self-signed). */
export async function tlsGet(from: Netns, request: TlsRequest): Promise<TlsResult> {
  const [result] = await runScript(from, request, 1, 0);
  if (result === undefined) throw new Error("tls client returned nothing");
  return result;
}

/** `count` GETs started `spacingMs` apart, all in flight together; results in start order. */
export function tlsBurst(from: Netns, burst: TlsBurst): Promise<TlsResult[]> {
  return runScript(from, burst, burst.count, burst.spacingMs);
}
