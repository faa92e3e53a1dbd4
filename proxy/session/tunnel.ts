/**
 * The two-way pipe once the server is connected: backpressure both ways,
 * half-close passed through (both sockets are allowHalfOpen), inactivity
 * timeouts with HAProxy's meaning.
 *
 * Timers are lazy: traffic only records a timestamp, and one timer per
 * tunnel re-arms itself at the earliest possible deadline.
 */
import net from "node:net";
import { TimeoutsConfig } from "../../contract/proxy-config";

export type TunnelEnd = "normal" | "client-timeout" | "server-timeout" | "client-error" | "server-error" | "killed" | "crashed";

export class Tunnel {
  bytesUp = 0;
  bytesDown = 0;
  private lastClient = Date.now();
  private lastServer = Date.now();
  private halfClosed = false;
  private clientClosed = false;
  private serverClosed = false;
  private end: TunnelEnd | null = null;
  private timer: NodeJS.Timeout | null = null;
  private finished = false;

  constructor(
    private readonly client: net.Socket,
    private readonly server: net.Socket,
    private readonly timeouts: TimeoutsConfig,
    private readonly onDone: (end: TunnelEnd) => void,
  ) {}

  /**
   * `firstWrite` goes to the server before anything else (PROXY header + buffered hello).
   * `clientEnded`: the client's FIN already arrived while the server was being connected.
   */
  start(firstWrite: Buffer, helloBytes: number, clientEnded: boolean): void {
    const { client, server } = this;
    this.bytesUp = helloBytes;
    client.on("data", (chunk: Buffer) => {
      this.bytesUp += chunk.length;
      this.lastClient = this.lastServer = Date.now();
      if (!server.write(chunk)) client.pause();
    });
    server.on("data", (chunk: Buffer) => {
      this.bytesDown += chunk.length;
      this.lastClient = this.lastServer = Date.now();
      if (!client.write(chunk)) server.pause();
    });
    server.on("drain", () => client.resume());
    client.on("drain", () => server.resume());
    client.on("end", () => {
      this.halfClosed = true;
      server.end();
    });
    server.on("end", () => {
      this.halfClosed = true;
      client.end();
    });
    client.on("error", () => this.abort("client-error"));
    server.on("error", () => this.abort("server-error"));
    client.on("close", () => {
      this.clientClosed = true;
      this.settle();
    });
    server.on("close", () => {
      this.serverClosed = true;
      this.settle();
    });
    if (clientEnded) {
      this.halfClosed = true;
      server.end(firstWrite);
    } else if (!server.write(firstWrite)) client.pause();
    else client.resume();
    this.arm();
  }

  /**
   * Drain expired: cut both sides and end now, not when the sockets' close events come. The
   * worker may exit right after the drain, before those events run, and the connection's log
   * line (KD) would never be written.
   */
  kill(end: "killed" | "crashed" = "killed"): void {
    this.abort(end);
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.onDone(this.end ?? end);
  }

  private abort(end: TunnelEnd): void {
    this.end ??= end;
    this.client.destroy();
    this.server.destroy();
  }

  private settle(): void {
    // One side fully closed while the other is still open and not half-closed: nothing more can flow.
    if (this.clientClosed !== this.serverClosed) {
      if (!this.clientClosed && this.client.readableEnded === false && this.client.writableFinished === false) {
        this.client.destroy();
      } else if (!this.serverClosed && this.server.readableEnded === false && this.server.writableFinished === false) {
        this.server.destroy();
      }
      return;
    }
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.onDone(this.end ?? "normal");
  }

  private deadline(): { at: number; end: TunnelEnd } {
    const { clientMs, serverMs, tunnelMs, finMs } = this.timeouts;
    const idleSide: TunnelEnd = this.lastClient <= this.lastServer ? "client-timeout" : "server-timeout";
    const last = Math.max(this.lastClient, this.lastServer);
    if (this.halfClosed) return { at: last + finMs, end: idleSide };
    if (tunnelMs !== undefined) return { at: last + tunnelMs, end: idleSide };
    const client = this.lastClient + clientMs;
    const server = this.lastServer + serverMs;
    return client <= server ? { at: client, end: "client-timeout" } : { at: server, end: "server-timeout" };
  }

  private arm(): void {
    const { at, end } = this.deadline();
    const wait = at - Date.now();
    if (wait <= 0) {
      this.abort(end);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.finished) this.arm();
    }, wait);
  }
}
