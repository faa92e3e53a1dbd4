// The local cloud's API: one JSON request per line on a unix socket, one JSON reply per line.
// The daemon (daemon.ts) owns the namespaces; the engine and the CLI are its clients.
import { createConnection } from "node:net";

export const LOCAL_RUN_DIR = process.env["HETZNER_INGRESS_LOCAL_RUN"] ?? "/run/hetzner-ingress-local";
export const CLOUD_SOCKET = `${LOCAL_RUN_DIR}/cloud.sock`;

export const CLOUD_OPS = [
  "info", "createNetwork", "deleteNetwork", "createSshKey", "deleteSshKey", "createFirewall", "updateFirewall", "deleteFirewall",
  "createPlacementGroup", "createPrimaryIp", "deletePrimaryIp", "createServer", "deleteServer", "setServerFirewalls", "serverInfo",
  "attach", "detach", "probes", "acmeCa", "shutdown",
] as const;
export type CloudOp = (typeof CLOUD_OPS)[number];

export interface CloudRequest {
  readonly op: CloudOp;
  readonly args: readonly unknown[];
}

export type CloudReply = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

/** The longest any request may take (a server's creation takes about a second). */
const CALL_TIMEOUT_MS = 120_000;

/** One call to the running local cloud. */
export function callCloud<T>(op: CloudOp, ...args: unknown[]): Promise<T> {
  return callCloudIn(LOCAL_RUN_DIR, op, ...args);
}

/** One call to the local cloud of another run dir (the sandbox keeps its own). */
export function callCloudIn<T>(runDir: string, op: CloudOp, ...args: unknown[]): Promise<T> {
  const path = `${runDir}/cloud.sock`;
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buf = "";
    let answered = false;
    socket.setTimeout(CALL_TIMEOUT_MS, () => socket.destroy(new Error(`local cloud: ${op}: no answer within ${CALL_TIMEOUT_MS / 1000} s`)));
    socket.on("close", () => {
      if (!answered) reject(new Error(`local cloud: ${op}: the cloud closed the connection without an answer (see its cloud.log)`));
    });
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${JSON.stringify({ op, args } satisfies CloudRequest)}\n`));
    socket.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      answered = true;
      socket.end();
      const reply = JSON.parse(buf.slice(0, nl)) as CloudReply;
      if (reply.ok) resolve(reply.value as T);
      else reject(new Error(`local cloud: ${op}: ${reply.error}`));
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      reject(e.code === "ENOENT" || e.code === "ECONNREFUSED" ? new Error(`the local cloud is not running (${path})${runDir === LOCAL_RUN_DIR ? "; `npm run local -- up` starts it" : ""}`) : e);
    });
  });
}
