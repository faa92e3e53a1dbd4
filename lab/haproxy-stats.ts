import { connect } from "node:net";
import { pollUntil } from "./command";

/** One server row of `show stat`, with the fields the tests judge health by. */
export interface HaproxyServerState {
  readonly backend: string;
  readonly server: string;
  /** "UP", "DOWN", "UP 1/2" (going down), "NOLB", "MAINT", "no check", ... */
  readonly status: string;
  /** Last check's status code, e.g. "L4OK", "L4TOUT", "L4CON", "L7OK", "L7STS"; "INI" before the first. */
  readonly checkStatus: string;
  /** HAProxy marks a check that is still running with "* " before the status. */
  readonly checkRunning: boolean;
  /** e.g. "Layer4 timeout", "Layer4 connection problem". */
  readonly checkDescription: string;
  /** The detail, e.g. "Connection refused", or the HTTP reason of an L7 check. */
  readonly lastCheck: string;
  /** HTTP status of an L7 check. */
  readonly checkCode?: number;
  readonly checkDurationMs?: number;
}

/**
 * Sends one command over the stats socket and returns the reply. A unix
 * socket is local IPC, not network traffic, so this runs in the root namespace.
 */
export function haproxyCommand(socketPath: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ path: socketPath });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`haproxy socket ${socketPath}: no reply to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on("connect", () => s.end(`${command}\n`));
    s.on("data", (b: Buffer) => chunks.push(b));
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // In non-interactive mode HAProxy closes the connection after one reply.
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

function optionalNumber(text: string | undefined): number | undefined {
  return text === undefined || text === "" ? undefined : Number(text);
}

/** HAProxy quotes a CSV field that holds a comma or a quote, doubling inner quotes. */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (line[i] === '"') {
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else {
          field += line[i++];
        }
      }
      const comma = line.indexOf(",", i);
      i = comma < 0 ? line.length : comma;
    } else {
      const comma = line.indexOf(",", i);
      const end = comma < 0 ? line.length : comma;
      field = line.slice(i, end);
      i = end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/**
 * Parses `show stat` CSV by its header names (which are stable across
 * versions; column positions are not a promise) and keeps the server rows.
 */
export function parseShowStat(csv: string): HaproxyServerState[] {
  const lines = csv.split("\n").filter((l) => l.trim() !== "");
  const header = lines[0];
  if (header === undefined || !header.startsWith("# ")) throw new Error(`not a "show stat" reply: ${csv.slice(0, 200)}`);
  const names = header.slice(2).split(",");
  const col = (name: string): number => {
    const i = names.indexOf(name);
    if (i < 0) throw new Error(`"show stat" has no column ${name}`);
    return i;
  };
  const c = {
    pxname: col("pxname"),
    svname: col("svname"),
    status: col("status"),
    checkStatus: col("check_status"),
    checkCode: col("check_code"),
    checkDuration: col("check_duration"),
    lastChk: col("last_chk"),
    checkDesc: col("check_desc"),
    type: col("type"),
  };
  const rows: HaproxyServerState[] = [];
  for (const line of lines.slice(1)) {
    const f = splitCsvLine(line);
    if (f[c.type] !== "2") continue; // 0 frontend, 1 backend, 2 server, 3 listener
    const rawCheck = f[c.checkStatus] ?? "";
    const checkCode = optionalNumber(f[c.checkCode]);
    const checkDurationMs = optionalNumber(f[c.checkDuration]);
    rows.push({
      backend: f[c.pxname] ?? "",
      server: f[c.svname] ?? "",
      status: f[c.status] ?? "",
      checkStatus: rawCheck.replace(/^\* /, ""),
      checkRunning: rawCheck.startsWith("* "),
      checkDescription: f[c.checkDesc] ?? "",
      lastCheck: f[c.lastChk] ?? "",
      ...(checkCode !== undefined ? { checkCode } : {}),
      ...(checkDurationMs !== undefined ? { checkDurationMs } : {}),
    });
  }
  return rows;
}

export async function haproxyServerStates(socketPath: string, timeoutMs = 2000): Promise<HaproxyServerState[]> {
  return parseShowStat(await haproxyCommand(socketPath, "show stat", timeoutMs));
}

/**
 * Waits until `backend/server` has finished a check whose row satisfies
 * `accept`, and returns that row. Rows from before the first check ("INI")
 * never match, so the server's optimistic initial UP is not mistaken for health.
 * HAProxy stores a check's result before it moves the server (and logs the move),
 * so a row can show the new check status with the old status: make `accept`
 * name the status too when the caller relies on it.
 */
export async function waitForServerCheck(
  socketPath: string,
  backend: string,
  server: string,
  accept: (row: HaproxyServerState) => boolean,
  timeoutMs = 5000,
): Promise<HaproxyServerState> {
  let last: HaproxyServerState | undefined;
  try {
    return await pollUntil(
      `${backend}/${server} check`,
      async () => {
        const row = (await haproxyServerStates(socketPath)).find((r) => r.backend === backend && r.server === server);
        if (row === undefined) throw new Error(`no server ${backend}/${server} in show stat`);
        last = row;
        return row.checkStatus !== "INI" && row.checkStatus !== "" && accept(row) ? row : undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last row: ${JSON.stringify(last)}`);
  }
}
