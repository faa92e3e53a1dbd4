/**
 * Runs every backend server's checks, in one place (the primary), and reports
 * which servers are DOWN; the primary hands that set to every worker. A server
 * keeps its state across reloads while its backend, name, address and port
 * stay the same; new servers start as HAProxy's do (UP, one check to prove it).
 *
 * State changes are logged in HAProxy's words, e.g.
 * `Server prod_frontend_443/frontend is DOWN, reason: Layer4 connection problem,
 * info: "Connection refused", check duration: 0ms. 0 active and 0 backup servers left.`
 */
import { CertificateInfo } from "../../contract/certificate-info";
import { BackendConfig, HealthCheckConfig, ProxyConfig, ServerConfig } from "../../contract/proxy-config";
import { Logger } from "../log/logger";
import { CHECK_DESCRIPTION, CheckResult, HealthState, initialHealth, nextHealth, statusText } from "./check-state";
import { runCheck } from "./run-check";

/** A server as the engine and stats know it: "<backend>/<server>". */
export const serverId = (backend: string, server: string): string => `${backend}/${server}`;

export interface ServerHealthView {
  readonly backend: string;
  readonly server: string;
  readonly address: string;
  readonly port: number;
  /** "UP" / "DOWN", or "no check" for a server without checks (always used). */
  readonly status: "UP" | "DOWN" | "no check";
  /** HAProxy's stats status, e.g. "UP 1/3" while going down. */
  readonly statusDetail: string;
  readonly last: CheckResult | null;
  /**
   * What the last passed check said about the server's certificate; kept while later checks
   * fail, so a DOWN server still shows the certificate it served last.
   */
  readonly certificate: CertificateInfo | null;
  /** ms since the epoch of the last UP/DOWN change (or of the start). */
  readonly lastChange: number;
}

type RunCheck = (server: ServerConfig, check: HealthCheckConfig) => Promise<CheckResult>;

interface Tracked {
  backend: BackendConfig;
  server: ServerConfig;
  check: HealthCheckConfig | undefined;
  state: HealthState;
  last: CheckResult | null;
  certificate: CertificateInfo | null;
  lastChange: number;
  timer: NodeJS.Timeout | null;
  running: boolean;
  stopped: boolean;
}

/** First checks are spread over this much time (or the interval, if shorter) so a restart does not fire them all at once. */
const FIRST_CHECK_SPREAD_MS = 1000;

export class HealthMonitor {
  private readonly servers = new Map<string, Tracked>();
  private downKey = "";

  constructor(
    private readonly logger: Logger,
    /** Called with the DOWN set whenever it changes. */
    private readonly onChange: (down: readonly string[]) => void,
    private readonly check: RunCheck = runCheck,
  ) {}

  apply(config: ProxyConfig): void {
    const wanted = new Map<string, { backend: BackendConfig; server: ServerConfig }>();
    for (const backend of config.backends) for (const server of backend.servers) wanted.set(serverId(backend.name, server.name), { backend, server });
    for (const [id, t] of this.servers) {
      const w = wanted.get(id);
      if (w === undefined || w.server.address !== t.server.address || w.server.port !== t.server.port) this.forget(id, t);
    }
    for (const [id, { backend, server }] of wanted) {
      const t = this.servers.get(id);
      if (t !== undefined) {
        const interval = t.check?.intervalMs;
        Object.assign(t, { backend, server, check: backend.healthCheck });
        if (backend.healthCheck === undefined) this.unschedule(t);
        else if (t.timer === null && !t.running) this.schedule(id, t, 0);
        else if (interval !== backend.healthCheck.intervalMs && !t.running) this.schedule(id, t, backend.healthCheck.intervalMs);
        continue;
      }
      const check = backend.healthCheck;
      const tracked: Tracked = { backend, server, check, state: initialHealth(check?.rise ?? 1), last: null, certificate: null, lastChange: Date.now(), timer: null, running: false, stopped: false };
      this.servers.set(id, tracked);
      if (check !== undefined) this.schedule(id, tracked, Math.floor(Math.random() * Math.min(FIRST_CHECK_SPREAD_MS, check.intervalMs)));
    }
    this.publish();
  }

  down(): string[] {
    return [...this.servers].filter(([, t]) => t.check !== undefined && !t.state.up).map(([id]) => id);
  }

  view(): ServerHealthView[] {
    return [...this.servers.values()].map((t) => ({
      backend: t.backend.name,
      server: t.server.name,
      address: t.server.address,
      port: t.server.port,
      status: t.check === undefined ? "no check" : t.state.up ? "UP" : "DOWN",
      statusDetail: t.check === undefined ? "no check" : statusText(t.state, t.check.rise, t.check.fall),
      last: t.last,
      certificate: t.certificate,
      lastChange: t.lastChange,
    }));
  }

  stop(): void {
    for (const [id, t] of this.servers) this.forget(id, t);
  }

  private forget(id: string, t: Tracked): void {
    t.stopped = true;
    this.unschedule(t);
    this.servers.delete(id);
  }

  private unschedule(t: Tracked): void {
    if (t.timer !== null) clearTimeout(t.timer);
    t.timer = null;
  }

  private schedule(id: string, t: Tracked, delayMs: number): void {
    this.unschedule(t);
    t.timer = setTimeout(() => void this.runOne(id, t), delayMs);
    t.timer.unref();
  }

  private async runOne(id: string, t: Tracked): Promise<void> {
    t.timer = null;
    const check = t.check;
    if (check === undefined || t.stopped) return;
    t.running = true;
    const started = Date.now();
    const result = await this.check(t.server, check);
    t.running = false;
    if (t.stopped || t.check === undefined) return;
    const before = t.state;
    t.state = nextHealth(before, result.passed, t.check.rise, t.check.fall);
    t.last = result;
    if (result.passed) t.certificate = result.certificate ?? null;
    if (before.up !== t.state.up) {
      t.lastChange = Date.now();
      this.logChange(t, result);
      this.publish();
    }
    // Checks start `interval` apart, as HAProxy's inter; a slow check does not push the next one back.
    this.schedule(id, t, Math.max(0, t.check.intervalMs - (Date.now() - started)));
  }

  private publish(): void {
    const down = this.down().sort();
    const key = down.join("\n");
    if (key === this.downKey) return;
    this.downKey = key;
    this.onChange(down);
  }

  private logChange(t: Tracked, r: CheckResult): void {
    const peers = [...this.servers.values()].filter((x) => x.backend.name === t.backend.name);
    const up = peers.filter((x) => x.check === undefined || x.state.up).length;
    const code = r.httpStatus !== undefined ? `, code: ${r.httpStatus}` : "";
    const info = r.info !== "" ? `, info: "${r.info}"` : "";
    const tail = t.state.up ? `${up} active and 0 backup servers online.` : `${up} active and 0 backup servers left.`;
    const msg = `Server ${t.backend.name}/${t.server.name} is ${t.state.up ? "UP" : "DOWN"}, reason: ${CHECK_DESCRIPTION[r.code]}${code}${info}, check duration: ${r.durationMs}ms. ${tail}`;
    this.logger.event(t.state.up ? "info" : "warn", msg, { backend: t.backend.name, server: t.server.name, check: r.code });
    if (!t.state.up && up === 0) this.logger.event("error", `backend ${t.backend.name} has no server available!`, { backend: t.backend.name });
  }
}
