// The process that owns a CLI sandbox between `up` and `down`. Owning it in a live process
// keeps the Sandbox's guarantees: namespaces carry this pid (so cleanupStale can tell a
// crashed run), and SIGTERM, SIGINT, SIGHUP or a crash tear everything down. `test` asks it
// over a unix socket to run the checks, so they run with the same handles as in the e2e suite.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";
import type { Engine } from "../topology";
import { CONTROL_SOCKET, removeState, writeState, type SandboxState } from "./cli-state";
import { ingressChecks, runChecks, type CheckResult } from "./ingress-checks";
import type { SandboxStacks } from "./ingress-plan";
import { IngressSandbox } from "./ingress-sandbox";
import { removeRunDirIfEmpty } from "./mount-points";
import { describeSandbox } from "./summary";

export interface SuperviseOptions {
  readonly stacks: SandboxStacks;
  readonly engine: Engine;
  readonly proxyScript?: string;
}

export type ControlReply = { readonly result: CheckResult } | { readonly done: true; readonly failed: number } | { readonly error: string };

function daemonPids(s: IngressSandbox): Record<string, number> {
  const pids: Record<string, number> = { [`${s.plan.lb.name}/${s.plan.engine}`]: s.lb.process.pid };
  for (const [h, w] of s.web) if (w.nginx) pids[`${h}/nginx`] = w.nginx.pid;
  return pids;
}

export async function supervise(o: SuperviseOptions): Promise<void> {
  const base = { version: 1 as const, supervisorPid: process.pid, stacks: o.stacks, engine: o.engine, startedAt: new Date().toISOString() };
  writeState({ ...base, status: "starting" });
  let s: IngressSandbox;
  try {
    s = await IngressSandbox.up({ stacks: o.stacks, engine: o.engine, ...(o.proxyScript !== undefined ? { proxyScript: o.proxyScript } : {}) });
  } catch (e) {
    writeState({ ...base, status: "failed", error: e instanceof Error ? e.message : String(e) });
    process.exitCode = 1;
    return;
  }
  const ready = (): SandboxState => ({
    ...base,
    status: "ready",
    namePrefix: s.sb.namePrefix,
    dir: s.sb.dir,
    keepFiles: process.env["IG_SANDBOX_KEEP"] === "1",
    namespaces: s.namespaces(),
    pids: daemonPids(s),
    summary: describeSandbox(s),
  });

  let busy = false;
  const server: Server = createServer((conn) => {
    conn.setEncoding("utf8");
    let buf = "";
    conn.on("data", (chunk: string) => {
      buf += chunk;
      if (!buf.includes("\n")) return;
      const send = (r: ControlReply): void => void conn.write(JSON.stringify(r) + "\n");
      let op: unknown;
      try {
        op = (JSON.parse(buf.slice(0, buf.indexOf("\n"))) as { op?: unknown }).op;
      } catch {
        op = undefined;
      }
      if (op !== "test") return void conn.end(JSON.stringify({ error: `unknown request ${JSON.stringify(buf.trim())}` }) + "\n");
      if (busy) return void conn.end(JSON.stringify({ error: "checks are already running" }) + "\n");
      busy = true;
      runChecks(s, ingressChecks(s.plan), (result) => send({ result }))
        .then((results) => {
          writeState(ready()); // nginx pids change when a check restarts one
          conn.end(JSON.stringify({ done: true, failed: results.filter((r) => r.status === "fail").length }) + "\n");
        })
        .catch((e: unknown) => conn.end(JSON.stringify({ error: String(e) }) + "\n"))
        .finally(() => {
          busy = false;
        });
    });
    conn.on("error", () => undefined);
  });
  rmSync(CONTROL_SOCKET, { force: true });
  await new Promise<void>((res, rej) => server.once("error", rej).listen(CONTROL_SOCKET, res));
  writeState(ready());

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.close();
    s.teardown()
      .catch((e: unknown) => process.stderr.write(`teardown: ${String(e)}\n`))
      .finally(() => {
        removeState();
        removeRunDirIfEmpty();
        process.exit(0);
      });
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, stop);
}

/** Asks the supervisor to run the checks; calls `onReply` for each line it sends back. */
export function requestChecks(onReply: (r: ControlReply) => void, socketPath = CONTROL_SOCKET): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn: Socket = createConnection(socketPath);
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(JSON.stringify({ op: "test" }) + "\n"));
    conn.on("data", (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        onReply(JSON.parse(buf.slice(0, i)) as ControlReply);
        buf = buf.slice(i + 1);
      }
    });
    conn.on("error", reject);
    conn.on("close", () => resolve());
  });
}
