/**
 * The two-way pipe once the server is connected: backpressure both ways,
 * half-close passed through (both sockets are allowHalfOpen), inactivity
 * timeouts with HAProxy's meaning.
 *
 * Timers are lazy: traffic only records a timestamp, and one timer per
 * tunnel re-arms itself at the earliest possible deadline.
 *
 * The socket listeners are shared module functions, not closures per tunnel:
 * a tunnel mostly sits idle, and ten closures and their context were a good
 * part of what an idle connection costs. Each finds its tunnel through the
 * emitting socket (`this`), which carries it under a symbol.
 */
import net from "node:net";
import { TimeoutsConfig } from "../../contract/proxy-config";

export type TunnelEnd = "normal" | "client-timeout" | "server-timeout" | "client-error" | "server-error" | "killed" | "crashed";

const TUNNEL = Symbol("tunnel");
/** A socket of a tunnel: `peer` is the other side, `client` says which side this is. */
interface Piped extends net.Socket {
  [TUNNEL]?: { readonly tunnel: Tunnel; readonly peer: net.Socket; readonly client: boolean };
}

function onData(this: Piped, chunk: Buffer): void {
  const side = this[TUNNEL]!;
  side.tunnel.moved(side.client, chunk.length);
  if (!side.peer.write(chunk)) {
    // Resumed when the other side has taken it; listened for only while it is needed.
    this.pause();
    side.peer.once("drain", resumePeer);
  }
}

function resumePeer(this: Piped): void {
  this[TUNNEL]?.peer.resume();
}

function onEnd(this: Piped): void {
  const side = this[TUNNEL]!;
  // The FIN goes on first: whatever the timer decides next, the peer has heard it.
  side.peer.end();
  side.tunnel.halfClose();
}

function onError(this: Piped): void {
  const side = this[TUNNEL]!;
  side.tunnel.failed(side.client ? "client-error" : "server-error");
}

function onClose(this: Piped): void {
  const side = this[TUNNEL]!;
  side.tunnel.closed(side.client);
}

function pipe(socket: Piped, tunnel: Tunnel, peer: net.Socket, client: boolean): void {
  socket[TUNNEL] = { tunnel, peer, client };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("error", onError);
  socket.on("close", onClose);
}

export class Tunnel {
  bytesUp = 0;
  bytesDown = 0;
  private lastClient = Date.now();
  private lastServer = Date.now();
  private halfClosed = false;
  /** When the first side half-closed: finMs counts from then or from later traffic. */
  private halfClosedAt = 0;
  private clientClosed = false;
  private serverClosed = false;
  private end: TunnelEnd | null = null;
  private timer: NodeJS.Timeout | null = null;
  private finished = false;

  /** @internal */
  timerFired(): void {
    this.timer = null;
    if (!this.finished) this.arm();
  }

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
    pipe(client, this, server, true);
    pipe(server, this, client, false);
    if (clientEnded) {
      server.end(firstWrite);
      this.halfClosed = true;
      this.halfClosedAt = Date.now();
    } else if (!server.write(firstWrite)) {
      client.pause();
      server.once("drain", resumePeer);
    } else client.resume();
    this.arm();
  }

  /** @internal The shared listeners' way in; `up`: from the client. */
  moved(up: boolean, bytes: number): void {
    if (up) this.bytesUp += bytes;
    else this.bytesDown += bytes;
    this.lastClient = this.lastServer = Date.now();
  }

  /** @internal */
  halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.halfClosedAt = Date.now();
    // The armed timer waits for the client/server timeout; finMs applies from now on.
    if (this.timer !== null && !this.finished) {
      clearTimeout(this.timer);
      this.timer = null;
      this.arm();
    }
  }

  /** @internal */
  failed(end: TunnelEnd): void {
    this.abort(end);
  }

  /** @internal */
  closed(client: boolean): void {
    if (client) this.clientClosed = true;
    else this.serverClosed = true;
    this.settle();
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
    if (this.halfClosed) return { at: Math.max(last, this.halfClosedAt) + finMs, end: idleSide };
    if (tunnelMs !== undefined) return { at: last + tunnelMs, end: idleSide };
    const client = this.lastClient + clientMs;
    const server = this.lastServer + serverMs;
    return client <= server ? { at: client, end: "client-timeout" } : { at: server, end: "server-timeout" };
  }

  /** @internal */
  arm(): void {
    const { at, end } = this.deadline();
    const wait = at - Date.now();
    if (wait <= 0) {
      this.abort(end);
      return;
    }
    this.timer = setTimeout(rearm, wait, this);
  }
}

function rearm(tunnel: Tunnel): void {
  tunnel.timerFired();
}
