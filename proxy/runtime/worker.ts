/** A worker: one Engine, driven by messages from the primary. */
import { Engine } from "../engine/engine";
import { createLogger, Logger } from "../log/logger";
import { Channel, ToWorker } from "./messages";

const LOAD_EVERY_MS = 1000;

/**
 * An error nothing caught would end the worker with its connections cut and no line for any
 * of them: cut them here instead, each with its line, say how many, and then exit.
 */
function onCrash(channel: Channel, exit: (code: number) => void, index: number, logger: Logger, engine: () => Engine | null): void {
  let crashing = false;
  const crash = (error: unknown): void => {
    if (crashing) return;
    crashing = true;
    const message = error instanceof Error ? error.message : String(error);
    const connections = engine()?.abortAll() ?? 0;
    logger.event("error", "worker crashed, its connections cut", { error: message, connections });
    channel.send({ type: "crashed", index, connections, error: message });
    exit(1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
}

export function runWorker(channel: Channel, exit: (code: number) => void): void {
  let engine: Engine | null = null;
  let index = 0;
  channel.onMessage((message: ToWorker) => {
    switch (message.type) {
      case "start": {
        index = message.index;
        const logger = createLogger({ ...message.config.log, worker: message.index });
        onCrash(channel, exit, index, logger, () => engine);
        engine = new Engine(message.config, logger, {
          workerCount: message.count,
          reusePort: message.reusePort,
          ...(message.rateBuffers !== undefined ? { rateBuffers: message.rateBuffers } : {}),
        });
        engine.setDownServers(message.down);
        engine.start().then(
          () => {
            channel.send({ type: "ready", index });
            setInterval(() => channel.send({ type: "load", index, active: engine?.activeSessions ?? 0 }), LOAD_EVERY_MS).unref();
          },
          (error: Error) => channel.send({ type: "fatal", index, message: error.message }),
        );
        return;
      }
      case "reload":
        void engine?.reload(message.config, message.rateBuffers);
        return;
      case "health":
        engine?.setDownServers(message.down);
        return;
      case "stats-request":
        if (engine !== null) channel.send({ type: "stats", index, id: message.id, stats: engine.stats() });
        return;
      case "drain":
        if (engine === null) return exit(0);
        void engine.drain(message.graceMs).then(() => {
          channel.send({ type: "drained", index });
          exit(0);
        });
        return;
      default: {
        const unknown: never = message;
        throw new Error(`unknown message ${JSON.stringify(unknown)}`);
      }
    }
  });
}
