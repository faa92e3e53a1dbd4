/**
 * The primary: owns the config file, the routes directory, signals and the
 * workers. Workers never read files themselves, so a config (or routes file)
 * that fails validation never reaches any of them and the old one keeps serving.
 */
import cluster from "node:cluster";
import os from "node:os";
import { Worker } from "node:worker_threads";
import { ProxyConfig } from "../../contract/proxy-config";
import { LoadedProxyConfig, loadProxyConfig, statSignature } from "../config/load";
import { Engine } from "../engine/engine";
import { sumWorkerStats, WorkerStats } from "../engine/worker-stats";
import { HealthMonitor } from "../health/monitor";
import { Logger } from "../log/logger";
import { MetricsServer } from "../metrics/metrics-server";
import { ProxyMetrics } from "../metrics/proxy-metrics";
import { RateBuffers, rateBuffersFor } from "../ratelimit/rate-buffers";
import { buildReport, StatsReport } from "../stats/report";
import { StatsServer } from "../stats/stats-server";
import { ToPrimary, ToWorker } from "./messages";
import { StatsCollector } from "./stats-collector";
import { chooseWorkerMode, WorkerMode } from "./worker-mode";
import { onCrash } from "./worker";

interface WorkerHandle {
  post(message: ToWorker): void;
  kill(): void;
}

export interface ConfigSources {
  readonly configPath: string;
  /** routes.d: every *.json in it is merged into the config; null when not given. */
  readonly routesDir: string | null;
  /** A unix socket serving the stats pages without auth (file mode 0600); null when not given. */
  readonly statsSocket?: string | null;
}

const WATCH_INTERVAL_MS = 500;
/**
 * A worker isolate's young generation. V8's default lets it grow to 128 MiB (64 resident)
 * under a burst of connections and keeps it: 14 KiB per idle connection instead of 7, and
 * 300 MB resident after 20,000 connections instead of 145. What a proxy allocates per
 * connection is small and short-lived; 3 MiB showed no measurable CPU cost on that churn.
 */
const WORKER_YOUNG_GENERATION_MB = 3;
const RESPAWN_DELAY_MS = 1000;

export class Primary {
  private config: ProxyConfig;
  private fingerprint: string;
  private readonly mode: WorkerMode;
  private readonly count: number;
  private engine: Engine | null = null;
  private readonly workers = new Map<number, WorkerHandle>();
  private draining = false;
  /** Reloads run one after another: a SIGHUP during a file-change reload waits for it. */
  private reloads: Promise<void> = Promise.resolve();
  private watchTimer: NodeJS.Timeout | null = null;
  /** Health checks run here, once for the host; workers get the verdict. */
  private readonly health: HealthMonitor;
  private readonly stats: StatsServer;
  private readonly metrics: MetricsServer;
  /** Made at the first scrape: a proxy nobody scrapes keeps no metrics. */
  private prometheus: ProxyMetrics | null = null;
  private readonly reloadCounts = { accepted: 0, refused: 0 };
  private readonly collector = new StatsCollector();
  private rateBuffers: RateBuffers = new Map();
  private readonly startedAt = Date.now();


  constructor(
    private readonly sources: ConfigSources,
    loaded: LoadedProxyConfig,
    private readonly logger: Logger,
  ) {
    this.config = loaded.config;
    this.fingerprint = loaded.fingerprint;
    this.count = loaded.config.global.workers ?? os.availableParallelism();
    this.mode = chooseWorkerMode(this.count);
    this.health = new HealthMonitor(logger, (down) => {
      this.engine?.setDownServers(down);
      for (const worker of this.workers.values()) worker.post({ type: "health", down });
    });
    this.stats = new StatsServer(() => this.report(), logger);
    this.metrics = new MetricsServer(async () => {
      this.prometheus ??= new ProxyMetrics();
      return { text: await this.prometheus.exposition(() => this.report(), { ...this.reloadCounts }), contentType: this.prometheus.contentType };
    }, logger);
  }

  /**
   * Threads map one SharedArrayBuffer per rate table; node:cluster processes cannot, so they
   * allocate their own (undefined here). The single-thread engine takes ours either way.
   */
  private updateRateBuffers(config: ProxyConfig): RateBuffers | undefined {
    if (this.mode === "cluster") return undefined;
    this.rateBuffers = rateBuffersFor(config, this.rateBuffers, this.mode === "threads");
    return this.rateBuffers;
  }

  private async report(): Promise<StatsReport> {
    let reports: WorkerStats[];
    if (this.engine !== null) reports = [this.engine.stats()];
    else {
      reports = await this.collector.collect((id) => {
        for (const worker of this.workers.values()) worker.post({ type: "stats-request", id });
        return this.workers.size;
      });
    }
    return buildReport(this.config, this.health.view(), sumWorkerStats(reports), this.count, Math.round((Date.now() - this.startedAt) / 1000));
  }

  async start(): Promise<void> {
    const { configPath, routesDir } = this.sources;
    this.logger.event("info", "starting", {
      workers: this.count,
      mode: this.mode,
      node: process.versions.node,
      config: configPath,
      ...(routesDir !== null ? { routesDir } : {}),
      routes: this.config.routes.length,
    });
    const rateBuffers = this.updateRateBuffers(this.config);
    this.health.apply(this.config);
    if (this.mode === "single") {
      // No worker to replace: the process ends, its connections each with a line first.
      onCrash(this.logger, () => this.engine, () => process.exit(1));
      this.engine = new Engine(this.config, this.logger, { workerCount: 1, reusePort: false, ...(rateBuffers ? { rateBuffers } : {}) });
      this.engine.setDownServers(this.health.down());
      await this.engine.start();
    } else {
      await Promise.all(Array.from({ length: this.count }, (_, index) => this.spawn(index)));
    }
    await this.stats.apply(this.config.stats);
    await this.metrics.apply(this.config.metrics);
    if (this.sources.statsSocket) await this.stats.listenUnix(this.sources.statsSocket);
    // Handlers before "ready": a supervisor may signal the moment it sees it, and an
    // unhandled SIGHUP or SIGTERM would end the process instead of reloading or draining.
    process.on("SIGHUP", () => void this.reload("SIGHUP"));
    process.on("SIGTERM", () => void this.drain("SIGTERM"));
    process.on("SIGINT", () => void this.drain("SIGINT"));
    this.logger.event("info", "ready", { binds: this.config.listeners.flatMap((l) => l.binds.map((b) => `${l.name}@${b.address}:${b.port}`)) });
    await this.watch();
  }

  /**
   * Polls the config file and the routes directory (stat only). Polling, not inotify: a
   * release swap replaces the `current` symlink, which an inotify watch on the old
   * directory would never see, and a bind mount may not deliver events at all.
   */
  private async watch(): Promise<void> {
    const { configPath, routesDir } = this.sources;
    let last = await statSignature(configPath, routesDir);
    // Whatever changed between the first load and this signature: a no-op when nothing did.
    await this.reload("file changed");
    const poll = async () => {
      try {
        const now = await statSignature(configPath, routesDir);
        if (now !== last) {
          last = now;
          await this.reload("file changed");
        }
      } catch (error) {
        this.logger.event("error", "watching the config failed", { error: (error as Error).message });
      }
      if (!this.draining) this.watchTimer = setTimeout(() => void poll(), WATCH_INTERVAL_MS);
    };
    this.watchTimer = setTimeout(() => void poll(), WATCH_INTERVAL_MS);
  }

  reload(trigger: string): Promise<void> {
    this.reloads = this.reloads
      .then(() => this.reloadNow(trigger))
      .catch((error: Error) => {
        this.reloadCounts.refused++;
        this.logger.event("error", "config reload failed", { trigger, error: error.message });
      });
    return this.reloads;
  }

  private async reloadNow(trigger: string): Promise<void> {
    if (this.draining) return;
    const result = await loadProxyConfig(this.sources.configPath, this.sources.routesDir);
    // A file touched without a change is not a reload; SIGHUP always is.
    if (trigger !== "SIGHUP" && result.fingerprint === this.fingerprint) return;
    if (!result.ok) {
      this.reloadCounts.refused++;
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
    this.fingerprint = result.fingerprint;
    this.logger.event("info", "config accepted", {
      trigger,
      routes: result.config.routes.length,
      backends: result.config.backends.length,
      ...(this.sources.routesDir !== null ? { routeFiles: result.routeFiles } : {}),
    });
    const rateBuffers = this.updateRateBuffers(result.config);
    if (this.engine) await this.engine.reload(result.config, rateBuffers);
    // Counted once the workers took it: a reload that throws above is counted refused, not both.
    this.reloadCounts.accepted++;
    for (const worker of this.workers.values()) worker.post({ type: "reload", config: result.config, ...(rateBuffers && this.mode === "threads" ? { rateBuffers } : {}) });
    this.health.apply(result.config);
    await this.metrics.apply(result.config.metrics);
    try {
      await this.stats.apply(result.config.stats);
    } catch (error) {
      this.logger.event("error", "stats endpoint could not be opened", { error: (error as Error).message });
    }
  }

  async drain(trigger: string): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.watchTimer !== null) clearTimeout(this.watchTimer);
    const graceMs = this.config.global.drainGraceMs;
    this.logger.event("info", "drain requested", { trigger, graceMs });
    this.health.stop();
    this.stats.close();
    this.metrics.close();
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
      // This worker's own account, never its replacement's: a late message changes nothing.
      let load = 0;
      let crashed: number | undefined;
      const onMessage = (message: ToPrimary) => {
        if (message.type === "ready") resolve();
        if (message.type === "fatal") reject(new Error(message.message));
        if (message.type === "stats") this.collector.answer(message.id, message.stats);
        if (message.type === "load") load = message.active;
        if (message.type === "crashed") crashed = message.connections;
      };
      const onExit = (code: number) => {
        this.workers.delete(index);
        if (this.workers.size === 0 && this.draining) process.exit(0);
        if (this.draining) return;
        // A crash it reported: its connections were cut and logged. Without a word (killed,
        // out of memory): what it held at its last load report is lost with no line.
        const account = crashed !== undefined ? { connectionsCut: crashed, linesWritten: true } : { connectionsLost: load, linesWritten: false, asOf: "its last load report, at most 1 s old" };
        this.logger.event("error", "worker exited, respawning", { index, code, ...account });
        setTimeout(
          () =>
            void this.spawn(index).then(
              () => this.logger.event("info", "worker replaced", { index, ...account }),
              (error: Error) => this.logger.event("error", "respawn failed", { index, error: error.message }),
            ),
          RESPAWN_DELAY_MS,
        );
      };
      const start: ToWorker = {
        type: "start",
        config: this.config,
        index,
        count: this.count,
        reusePort: this.mode === "threads",
        down: this.health.down(),
        ...(this.mode === "threads" ? { rateBuffers: this.rateBuffers } : {}),
      };
      if (this.mode === "threads") {
        const worker = new Worker(__filename, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
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
