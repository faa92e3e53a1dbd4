// The local cloud's owner process: it holds every namespace and machine between engine runs,
// answers the API on a unix socket, and tears everything down on SIGTERM/SIGINT/SIGHUP, on a
// `shutdown` request, or when it crashes (the Sandbox's exit hooks).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { LocalCloud } from "./cloud";
import { callCloud, CLOUD_OPS, CLOUD_SOCKET, LOCAL_RUN_DIR, type CloudReply, type CloudRequest } from "./protocol";

async function main(): Promise<void> {
  mkdirSync(LOCAL_RUN_DIR, { recursive: true, mode: 0o700 });
  // One cloud per run dir: a second one would take the socket and orphan the first's machines.
  const answering = await callCloud("info").then(
    () => true,
    () => false,
  );
  if (answering) throw new Error(`a local cloud already answers on ${CLOUD_SOCKET}`);
  rmSync(CLOUD_SOCKET, { force: true });
  const cloud = await LocalCloud.create();
  const methods = cloud as unknown as Record<string, (...args: unknown[]) => unknown>;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.close();
    rmSync(CLOUD_SOCKET, { force: true });
    await cloud.teardown().catch((e: unknown) => process.stderr.write(`teardown: ${String(e)}\n`));
    process.exit(0);
  };
  // Requests run one at a time: the cloud's own bookkeeping is simple, and so are its logs.
  let queue: Promise<unknown> = Promise.resolve();
  const handle = (socket: Socket, line: string) => {
    queue = queue.then(async () => {
      let reply: CloudReply;
      try {
        const req = JSON.parse(line) as CloudRequest;
        if (!CLOUD_OPS.includes(req.op)) throw new Error(`unknown op ${String(req.op)}`);
        if (req.op === "shutdown") {
          socket.end(`${JSON.stringify({ ok: true, value: null })}\n`);
          await stop();
          return;
        }
        const value = await methods[req.op]!.apply(cloud, [...req.args]);
        reply = { ok: true, value: value ?? null };
        process.stdout.write(`${new Date().toISOString()} ${req.op} ${JSON.stringify(req.args).slice(0, 200)} -> ok\n`);
      } catch (e) {
        reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
        process.stdout.write(`${new Date().toISOString()} ${line.slice(0, 200)} -> ${reply.error}\n`);
      }
      socket.end(`${JSON.stringify(reply)}\n`);
    });
  };
  const server = createServer((socket) => {
    let buf = "";
    socket.setEncoding("utf8");
    let handled = false;
    socket.on("data", (d: string) => {
      if (handled) return;
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      // One request per connection.
      handled = true;
      handle(socket, buf.slice(0, nl));
    });
    socket.on("error", () => undefined);
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => void stop());
  server.listen(CLOUD_SOCKET, () => {
    writeFileSync(`${LOCAL_RUN_DIR}/cloud.pid`, `${process.pid}\n`);
    process.stdout.write(`local cloud ready (pid ${process.pid}, ${CLOUD_SOCKET})\n`);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`local cloud failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
