/**
 * Opens the connection to a backend: one attempt per server in round-robin
 * order, `retries` extra attempts, each bounded by the connect timeout.
 */
import net from "node:net";
import { ServerConfig } from "../../contract/proxy-config";
import { BackendPool } from "./backend-pool";

/** Pause before retrying the same server (a backend with one server), so a refusing host is not hammered. */
export const SAME_SERVER_RETRY_DELAY_MS = 200;

export type ConnectOutcome =
  | { readonly ok: true; readonly socket: net.Socket; readonly server: ServerConfig; readonly retries: number }
  | { readonly ok: false; readonly timedOut: boolean; readonly server: ServerConfig | null; readonly retries: number; readonly error: string };

export interface ConnectAttempt {
  abort(): void;
}

export function connectToBackend(pool: BackendPool, onServer: (server: ServerConfig) => void, done: (outcome: ConnectOutcome) => void): ConnectAttempt {
  const { connectTimeoutMs, retries } = pool.config;
  let attempt = 0;
  let socket: net.Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let aborted = false;

  const tryNext = (): void => {
    const server = pool.next();
    if (server === null) {
      // Every server is DOWN: nothing to connect to (HAProxy's <NOSRV>, "SC"). Also when an
      // earlier attempt had one: the connection ends on no server, and says so the same way.
      timer = setTimeout(() => done({ ok: false, timedOut: false, server: null, retries: attempt, error: "no server available" }), 0);
      return;
    }
    onServer(server);
    const current = net.connect({ host: server.address, port: server.port, allowHalfOpen: true, noDelay: true });
    socket = current;
    let settled = false;
    const fail = (timedOut: boolean, error: string): void => {
      if (settled || aborted) return;
      settled = true;
      if (timer) clearTimeout(timer);
      current.destroy();
      if (attempt >= retries) {
        done({ ok: false, timedOut, server, retries: attempt, error });
        return;
      }
      attempt++;
      const delay = pool.upCount() <= 1 ? SAME_SERVER_RETRY_DELAY_MS : 0;
      timer = setTimeout(tryNext, delay);
    };
    timer = setTimeout(() => fail(true, "connect timeout"), connectTimeoutMs);
    current.on("error", (error) => fail(false, error.message));
    current.once("connect", () => {
      if (settled || aborted) return;
      settled = true;
      if (timer) clearTimeout(timer);
      current.removeAllListeners("error");
      done({ ok: true, socket: current, server, retries: attempt });
    });
  };
  tryNext();
  return {
    abort() {
      aborted = true;
      if (timer) clearTimeout(timer);
      socket?.destroy();
    },
  };
}
