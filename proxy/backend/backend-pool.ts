/** A backend's servers, handed out round-robin. */
import { BackendConfig, ServerConfig } from "../config/schema";

export class BackendPool {
  constructor(
    readonly config: BackendConfig,
    /** Shared across reloads so a reload does not send everyone to server 0 again. */
    private readonly cursor: { value: number },
  ) {}

  get name(): string {
    return this.config.name;
  }

  next(): ServerConfig {
    const servers = this.config.servers;
    const server = servers[this.cursor.value % servers.length]!;
    this.cursor.value = (this.cursor.value + 1) % servers.length;
    return server;
  }
}
