import type { Netns } from "./netns";

/** What `nc -v` would tell: the three outcomes in the user's transcript, plus unreachable. */
export type TcpProbeOutcome = "connected" | "refused" | "timeout" | "unreachable" | "error";

export interface TcpProbeResult {
  readonly outcome: TcpProbeOutcome;
  readonly detail: string;
  readonly ms: number;
}

// Runs inside the namespace with this very node binary; a plain script keeps
// it independent of tsx and starts in tens of milliseconds.
const SCRIPT = `
const net = require("node:net");
const [host, port, timeoutMs] = process.argv.slice(1);
const t0 = Date.now();
const done = (outcome, detail) => {
  process.stdout.write(JSON.stringify({ outcome, detail, ms: Date.now() - t0 }));
  process.exit(0);
};
const s = net.connect({ host, port: Number(port) });
s.setTimeout(Number(timeoutMs), () => done("timeout", "no answer within " + timeoutMs + " ms"));
s.on("connect", () => { const peer = s.remoteAddress + ":" + s.remotePort; s.destroy(); done("connected", peer); });
s.on("error", (e) => {
  const code = e.code || "";
  if (code === "ECONNREFUSED") done("refused", code);
  else if (code === "EHOSTUNREACH" || code === "ENETUNREACH") done("unreachable", code);
  else done("error", code + " " + e.message);
});
`;

/** Opens one TCP connection from inside `from` and reports how it went. */
export async function probeTcp(from: Netns, host: string, port: number, timeoutMs = 1000): Promise<TcpProbeResult> {
  const r = await from.exec([process.execPath, "-e", SCRIPT, host, String(port), String(timeoutMs)], {
    timeoutMs: timeoutMs + 5000,
  });
  return JSON.parse(r.stdout) as TcpProbeResult;
}
