/** A worker: one Engine, driven by messages from the primary. */
import { Engine } from "../engine/engine";
import { createLogger, Logger } from "../log/logger";
import { Channel, ToWorker } from "./messages";

const LOAD_EVERY_MS = 1000;

/**
 * An error nothing caught would end the worker with its connections cut and no line for any
 * of them: cut them here instead, each with its line, and hand the count to `then`, which
 * says so and exits. Also for the single-thread engine in the primary.
 */
export function onCrash(logger: Logger, engine: () => Engine | null, then: (connections: number, error: string) => void): void {
  let crashing = false;
  const crash = (error: unknown): void => {
    if (crashing) return;
    crashing = true;
    const message = error instanceof Error ? error.message : String(error);
    let connections = 0;
    try {
      connections = engine()?.abortAll() ?? 0;
      logger.event("error", "worker crashed, its connections cut", { error: message, stack: error instanceof Error ? error.stack : undefined, connections });
    } finally {
      then(connections, message);
    }
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
        onCrash(logger, () => engine, (connections, error) => {
          // Exit once the message is out (a cluster process's send is asynchronous), or soon regardless.
          const leave = () => exit(1);
          setTimeout(leave, 500).unref();
          channel.send({ type: "crashed", index, connections, error }, leave);
        });
        engine = new Engine(message.config, logger, {
          workerCount: message.count,
          reusePort: message.reusePort,
          ...(message.rateBuffers !== undefined ? { rateBuffers: message.rateBuffers } : {}),
        });
        engine.setDownServers(message.down);
        engine.start().then(
          () => {
            channel.send({ type: "ready", index });
            setInterval(() => channel.send({ type: "load", index, active: engine?.liveConnections ?? 0 }), LOAD_EVERY_MS).unref();
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
