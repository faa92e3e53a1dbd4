/**
 * The primary: owns the config file, signals and the workers. Workers never
 * read the file themselves, so a config that fails validation never reaches
 * any of them and the old one keeps serving.
 */
import cluster from "node:cluster";
import { createHash } from "node:crypto";
import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import { Worker } from "node:worker_threads";
import { ProxyConfig } from "../config/schema";
import { validateProxyConfigText } from "../config/validate";
import { Engine } from "../engine/engine";
import { Logger } from "../log/logger";
import { ToPrimary, ToWorker } from "./messages";
import { chooseWorkerMode, WorkerMode } from "./worker-mode";

interface WorkerHandle {
  post(message: ToWorker): void;
  kill(): void;
}

const WATCH_INTERVAL_MS = 500;
const RESPAWN_DELAY_MS = 1000;

export class Primary {
  private config: ProxyConfig;
  private configHash: string;
  private readonly mode: WorkerMode;
  private readonly count: number;
  private engine: Engine | null = null;
  private readonly workers = new Map<number, WorkerHandle>();
  private draining = false;

  constructor(
    private readonly configPath: string,
    config: ProxyConfig,
    configText: string,
    private readonly logger: Logger,
  ) {
    this.config = config;
    this.configHash = hash(configText);
    this.count = config.global.workers ?? os.availableParallelism();
    this.mode = chooseWorkerMode(this.count);
  }

  async start(): Promise<void> {
    this.logger.event("info", "starting", { workers: this.count, mode: this.mode, node: process.versions.node, config: this.configPath });
    if (this.mode === "single") {
      this.engine = new Engine(this.config, this.logger, { workerCount: 1, reusePort: false });
      await this.engine.start();
    } else {
      await Promise.all(Array.from({ length: this.count }, (_, index) => this.spawn(index)));
    }
    this.logger.event("info", "ready", { binds: this.config.listeners.flatMap((l) => l.binds.map((b) => `${l.name}@${b.address}:${b.port}`)) });
    process.on("SIGHUP", () => void this.reload("SIGHUP"));
    process.on("SIGTERM", () => void this.drain("SIGTERM"));
    process.on("SIGINT", () => void this.drain("SIGINT"));
    watchFile(this.configPath, { interval: WATCH_INTERVAL_MS }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) void this.reload("file changed");
    });
  }

  async reload(trigger: string): Promise<void> {
    if (this.draining) return;
    let text: string;
    try {
      text = await readFile(this.configPath, "utf8");
    } catch (error) {
      this.logger.event("error", "config reload refused, keeping the running config", { trigger, errors: [(error as Error).message] });
      return;
    }
    if (trigger !== "SIGHUP" && hash(text) === this.configHash) return;
    const result = validateProxyConfigText(text);
    if (!result.ok) {
      this.logger.event("error", "config reload refused, keeping the running config", { trigger, errors: result.errors });
      return;
    }
    const restartOnly = ["global.workers", "log"].filter((field) =>
      field === "log"
        ? JSON.stringify(result.config.log) !== JSON.stringify(this.config.log)
        : result.config.global.workers !== this.config.global.workers,
    );
    if (restartOnly.length > 0) this.logger.event("warn", "these settings take effect at restart only", { fields: restartOnly });
    this.config = result.config;
    this.configHash = hash(text);
    this.logger.event("info", "config accepted", { trigger });
    if (this.engine) await this.engine.reload(result.config);
    for (const worker of this.workers.values()) worker.post({ type: "reload", config: result.config });
  }

  async drain(trigger: string): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    unwatchFile(this.configPath);
    const graceMs = this.config.global.drainGraceMs;
    this.logger.event("info", "drain requested", { trigger, graceMs });
    if (this.engine) {
      await this.engine.drain(graceMs);
      process.exit(0);
    }
    for (const worker of this.workers.values()) worker.post({ type: "drain", graceMs });
    // Workers exit on their own after the grace period; this is the backstop.
    setTimeout(() => {
      for (const worker of this.workers.values()) worker.kill();
      process.exit(0);
    }, graceMs + 5000).unref();
  }

  private spawn(index: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: ToPrimary) => {
        if (message.type === "ready") resolve();
        if (message.type === "fatal") reject(new Error(message.message));
      };
      const onExit = (code: number) => {
        this.workers.delete(index);
        if (this.workers.size === 0 && this.draining) process.exit(0);
        if (this.draining) return;
        this.logger.event("error", "worker exited, respawning", { index, code });
        setTimeout(() => void this.spawn(index).catch((error: Error) => this.logger.event("error", "respawn failed", { index, error: error.message })), RESPAWN_DELAY_MS);
      };
      const start: ToWorker = { type: "start", config: this.config, index, count: this.count, reusePort: this.mode === "threads" };
      if (this.mode === "threads") {
        const worker = new Worker(__filename);
        worker.on("message", onMessage);
        worker.on("exit", onExit);
        worker.on("error", (error) => this.logger.event("error", "worker error", { index, error: error.message }));
        this.workers.set(index, { post: (m) => worker.postMessage(m), kill: () => void worker.terminate() });
        worker.postMessage(start);
      } else {
        const worker = cluster.fork();
        worker.on("message", onMessage);
        worker.on("exit", (code) => onExit(code ?? 0));
        this.workers.set(index, { post: (m) => worker.send(m), kill: () => worker.process.kill("SIGKILL") });
        worker.send(start);
      }
    });
  }
}

function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
