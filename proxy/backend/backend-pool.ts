/** A backend's servers, handed out round-robin, skipping those the health checks hold DOWN. */
import { BackendConfig, ServerConfig } from "../../contract/proxy-config";

/** Ids ("<backend>/<server>") of servers whose checks say DOWN; shared by every pool of a worker. */
export interface DownServers {
  has(id: string): boolean;
}

export class BackendPool {
  constructor(
    readonly config: BackendConfig,
    /** Shared across reloads so a reload does not send everyone to server 0 again. */
    private readonly cursor: { value: number },
    private readonly down: DownServers = new Set<string>(),
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** The next UP server, or null when every server is DOWN (HAProxy: "no server available"). */
  next(): ServerConfig | null {
    const servers = this.config.servers;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[this.cursor.value % servers.length]!;
      this.cursor.value = (this.cursor.value + 1) % servers.length;
      if (!this.down.has(`${this.config.name}/${server.name}`)) return server;
    }
    return null;
  }

  /** Servers a retry can still go to. */
  upCount(): number {
    return this.config.servers.filter((s) => !this.down.has(`${this.config.name}/${s.name}`)).length;
  }
}
