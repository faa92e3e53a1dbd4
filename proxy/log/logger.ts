/**
 * Two kinds of lines: one per connection, and operational events (start,
 * reload, errors). JSON through pino by default, text on request. Writes are
 * synchronous and one line each, so lines from several workers sharing
 * stdout never interleave (each write is below PIPE_BUF) and nothing is lost
 * on exit.
 */
import pino from "pino";
import { ConnectionRecord, connectionFields, formatConnectionText } from "./connection-record";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  connection(record: ConnectionRecord): void;
  event(level: LogLevel, msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export function createLogger(options: { format: "json" | "text"; level: LogLevel; worker?: number }, fd = 1): Logger {
  // SonicBoom retries EAGAIN when stdout is a non-blocking pipe; a bare writeSync would throw.
  const destination = pino.destination({ dest: fd, sync: true });
  if (options.format === "json") {
    const base = options.worker === undefined ? { pid: process.pid } : { pid: process.pid, worker: options.worker };
    const log = pino(
      { level: options.level, base, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
      destination,
    );
    return {
      connection: (record) => log.info({ event: "connection", ...connectionFields(record) }, "connection"),
      event: (level, msg, fields) => log[level](fields ?? {}, msg),
    };
  }
  const write = (line: string) => void destination.write(line + "\n");
  return {
    connection: (record) => write(formatConnectionText(record)),
    event: (level, msg, fields) => {
      if (RANK[level] < RANK[options.level]) return;
      const extra = Object.entries(fields ?? {})
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${new Date().toISOString()} ${level} ${msg}${extra ? " " + extra : ""}`);
    },
  };
}

/** For tests: keeps records in memory. */
export function memoryLogger(): Logger & { records: ConnectionRecord[]; events: { level: LogLevel; msg: string; fields?: LogFields }[] } {
  const records: ConnectionRecord[] = [];
  const events: { level: LogLevel; msg: string; fields?: LogFields }[] = [];
  return {
    records,
    events,
    connection: (record) => records.push(record),
    event: (level, msg, fields) => events.push({ level, msg, ...(fields ? { fields } : {}) }),
  };
}
