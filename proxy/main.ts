/**
 * Entry point of the bundle (dist/proxy.js). The same file runs as the
 * primary, as a worker thread, and as a cluster worker process.
 *
 * Each role `require`s its own code when it starts, never at the top: the
 * bundler then wraps those modules so they are evaluated only where used, and
 * a worker isolate never runs (nor keeps in its heap) the primary's config
 * validation (zod), stats, metrics (prom-client) or health-check modules.
 */
import cluster from "node:cluster";
import { isMainThread, parentPort } from "node:worker_threads";
import type { ToWorker } from "./runtime/messages";

const workerCode = (): typeof import("./runtime/worker") => require("./runtime/worker") as typeof import("./runtime/worker");

async function main(argv: readonly string[]): Promise<number | null> {
  const { parseArgs, USAGE } = require("./cli") as typeof import("./cli");
  const { loadProxyConfig } = require("./config/load") as typeof import("./config/load");
  const command = parseArgs(argv);
  if (command.kind === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (command.kind === "usage-error") {
    process.stderr.write(`${command.message}\n${USAGE}\n`);
    return 2;
  }
  const routesDir = command.routesDir ?? null;
  const what = routesDir === null ? `config ${command.configPath}` : `config ${command.configPath} with routes from ${routesDir}`;
  const loaded = await loadProxyConfig(command.configPath, routesDir);
  if (!loaded.ok) {
    const consequence = command.kind === "check" ? "" : "; not starting";
    process.stderr.write(`${what} is invalid${consequence}:\n${loaded.errors.map((e) => `  ${e}`).join("\n")}\n`);
    return 1;
  }
  const config = loaded.config;
  if (command.kind === "check") {
    const files = routesDir === null ? "" : ` (${loaded.routeFiles.length} routes file(s): ${loaded.routeFiles.join(", ") || "none"})`;
    process.stdout.write(
      `${what} is valid: ${config.listeners.length} listener(s), ${config.routes.length} route(s), ${config.backends.length} backend(s)${files}\n`,
    );
    return 0;
  }
  const { createLogger } = require("./log/logger") as typeof import("./log/logger");
  const { Primary } = require("./runtime/primary") as typeof import("./runtime/primary");
  const logger = createLogger(config.log);
  try {
    await new Primary({ configPath: command.configPath, routesDir, statsSocket: command.statsSocket ?? null }, loaded, logger).start();
  } catch (error) {
    logger.event("error", "startup failed", { error: (error as Error).message });
    return 1;
  }
  return null;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  // A port's messages reach the primary before its exit event: handed over at once.
  workerCode().runWorker({ send: (m, done) => (port.postMessage(m), done?.()), onMessage: (h) => port.on("message", (m: ToWorker) => h(m)) }, (code) => process.exit(code));
} else if (cluster.isWorker) {
  // The primary coordinates signals; a Ctrl-C sent to the process group must not kill workers mid-drain.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => undefined);
  process.on("disconnect", () => process.exit(0));
  workerCode().runWorker({ send: (m, done) => void process.send?.(m, undefined, {}, () => done?.()), onMessage: (h) => process.on("message", (m: ToWorker) => h(m)) }, (code) => process.exit(code));
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
