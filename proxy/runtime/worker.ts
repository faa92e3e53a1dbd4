/** A worker: one Engine, driven by messages from the primary. */
import { Engine } from "../engine/engine";
import { createLogger } from "../log/logger";
import { Channel, ToWorker } from "./messages";

export function runWorker(channel: Channel, exit: (code: number) => void): void {
  let engine: Engine | null = null;
  let index = 0;
  channel.onMessage((message: ToWorker) => {
    switch (message.type) {
      case "start": {
        index = message.index;
        const logger = createLogger({ ...message.config.log, worker: message.index });
        engine = new Engine(message.config, logger, {
          workerCount: message.count,
          reusePort: message.reusePort,
          ...(message.rateBuffers !== undefined ? { rateBuffers: message.rateBuffers } : {}),
        });
        engine.setDownServers(message.down);
        engine.start().then(
          () => channel.send({ type: "ready", index }),
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
