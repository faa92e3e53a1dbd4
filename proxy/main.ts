/**
 * Entry point of the bundle (dist/proxy.js). The same file runs as the
 * primary, as a worker thread, and as a cluster worker process.
 */
import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { isMainThread, parentPort } from "node:worker_threads";
import { parseArgs, USAGE } from "./cli";
import { validateProxyConfigText } from "./config/validate";
import { createLogger } from "./log/logger";
import { ToWorker } from "./runtime/messages";
import { Primary } from "./runtime/primary";
import { runWorker } from "./runtime/worker";

async function main(argv: readonly string[]): Promise<number | null> {
  const command = parseArgs(argv);
  if (command.kind === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (command.kind === "usage-error") {
    process.stderr.write(`${command.message}\n${USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = await readFile(command.configPath, "utf8");
  } catch (error) {
    process.stderr.write(`cannot read config ${command.configPath}: ${(error as Error).message}\n`);
    return 1;
  }
  const result = validateProxyConfigText(text);
  if (!result.ok) {
    process.stderr.write(`config ${command.configPath} is invalid:\n${result.errors.map((e) => `  ${e}`).join("\n")}\n`);
    return 1;
  }
  const config = result.config;
  if (command.kind === "check") {
    process.stdout.write(
      `config ${command.configPath} is valid: ${config.listeners.length} listener(s), ${config.routes.length} route(s), ${config.backends.length} backend(s)\n`,
    );
    return 0;
  }
  const logger = createLogger(config.log);
  try {
    await new Primary(command.configPath, config, text, logger).start();
  } catch (error) {
    logger.event("error", "startup failed", { error: (error as Error).message });
    return 1;
  }
  return null;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  runWorker({ send: (m) => port.postMessage(m), onMessage: (h) => port.on("message", (m: ToWorker) => h(m)) }, (code) => process.exit(code));
} else if (cluster.isWorker) {
  // The primary coordinates signals; a Ctrl-C sent to the process group must not kill workers mid-drain.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => undefined);
  process.on("disconnect", () => process.exit(0));
  runWorker({ send: (m) => process.send?.(m), onMessage: (h) => process.on("message", (m: ToWorker) => h(m)) }, (code) => process.exit(code));
} else {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`fatal: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
