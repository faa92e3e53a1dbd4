/**
 * A listening socket that can stop accepting, so that connections past maxconn wait in the
 * kernel's accept backlog (and past it the kernel drops SYNs and clients retransmit), as
 * HAProxy's full listeners do, instead of being accepted only to be reset.
 *
 * Node has no public way to stop accepting. libuv's uv_read_stop() on a listening TCP handle
 * takes its fd out of the poll set, so uv__server_io() accepts nothing more until
 * uv_read_start() puts it back; but both act only on a handle flagged READABLE, which libuv
 * sets when a handle is opened on an fd (uv_tcp_open), never when it binds. So the socket is
 * bound through net._createServerHandle() (what listen() itself uses, taking libuv's bind
 * flags), that same handle is opened on its own fd, and the server adopts it with
 * listen(handle): one handle, one fd, closed with the server and by nothing else. A second
 * handle on the fd (listen({ fd })) would close that fd number again when its thread's
 * environment is torn down, by then maybe another thread's socket.
 *
 * These are Node internals: each is checked before use, and anything missing (or a
 * node:cluster worker, whose primary owns the listening socket) gives a plain listen()
 * that accepts everything; the engine then holds the excess accepted but unread.
 */
import cluster from "node:cluster";
import net from "node:net";
import util from "node:util";

/** libuv's uv_tcp_flags (uv.h), the values its uv_tcp_bind() takes; REUSEPORT since libuv 1.49. */
const UV_TCP_IPV6ONLY = 1;
const UV_TCP_REUSEPORT = 2;

export interface BindSpec {
  /** An IP literal. */
  readonly host: string;
  readonly port: number;
  readonly ipv6Only: boolean;
  readonly reusePort: boolean;
  readonly backlog: number;
}

/** How new connections past maxconn are kept: in the kernel's backlog, or accepted by us. */
export type ListenMode = { readonly pausable: true } | { readonly pausable: false; readonly reason: string };

export interface Listening {
  readonly mode: ListenMode;
  readonly paused: boolean;
  /** Stop accepting; true if it was accepting. Always false when the mode is not pausable. */
  pause(): boolean;
  /** Accept again; true if it was paused. */
  resume(): boolean;
}

/** The part of Node's TCPWrap (src/tcp_wrap.cc, src/stream_wrap.cc) used here; return values are libuv errnos. */
interface TcpHandle {
  readonly fd: number;
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: 4 | 6, fd: undefined, flags: number) => unknown;

const HANDLE_METHODS = ["open", "readStart", "readStop", "close"] as const;

function isTcpHandle(value: unknown): value is TcpHandle {
  if (typeof value !== "object" || value === null) return false;
  const fields = value as Record<string, unknown>;
  return typeof fields["fd"] === "number" && HANDLE_METHODS.every((m) => typeof fields[m] === "function");
}

function createServerHandle(): CreateServerHandle | string {
  if (cluster.isWorker) return "a node:cluster worker listens through its primary's socket";
  const create = (net as unknown as Record<string, unknown>)["_createServerHandle"];
  return typeof create === "function" ? (create as CreateServerHandle) : "net._createServerHandle is missing";
}

function uvError(errno: number, syscall: string, spec: BindSpec): NodeJS.ErrnoException {
  const [code, description] = util.getSystemErrorMap().get(errno) ?? [`errno ${errno}`, "unknown error"];
  return Object.assign(new Error(`${syscall} ${code}: ${description} ${spec.host}:${spec.port}`), { code, errno, syscall });
}

const fallback = (reason: string): Listening => ({ mode: { pausable: false, reason }, paused: false, pause: () => false, resume: () => false });

/**
 * Binds `server` as `spec` says and listens; pausable when `wantPause` and this Node has what
 * it takes. Rejects as listen() does (the server's "error") when the address cannot be had.
 */
export function listen(server: net.Server, spec: BindSpec, wantPause: boolean): Promise<Listening> {
  const plain = (reason: string) =>
    listening(server, () => server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.ipv6Only, backlog: spec.backlog, ...(spec.reusePort ? { reusePort: true } : {}) })).then(() => fallback(reason));
  if (!wantPause) return plain("disabled");
  const create = createServerHandle();
  if (typeof create === "string") return plain(create);
  const ipVersion = net.isIP(spec.host);
  if (ipVersion !== 4 && ipVersion !== 6) return plain(`${spec.host} is not an IP address`);
  const handle = create(spec.host, spec.port, ipVersion, undefined, (spec.ipv6Only ? UV_TCP_IPV6ONLY : 0) | (spec.reusePort ? UV_TCP_REUSEPORT : 0));
  if (typeof handle === "number") return Promise.reject(uvError(handle, "bind", spec));
  if (!isTcpHandle(handle)) {
    const close = (handle as { close?: unknown } | null)?.close;
    if (typeof close === "function") close.call(handle);
    return plain("net._createServerHandle returned no usable TCP handle");
  }
  // Gives the bound handle the READABLE flag that uv_read_start() wants (same fd: no new socket).
  const opened = handle.open(handle.fd);
  if (opened !== 0) {
    handle.close();
    return plain(`uv_tcp_open on the bound socket failed: ${util.getSystemErrorName(opened)}`);
  }
  // On failure listen() closes the adopted handle itself.
  return listening(server, () => server.listen(handle, spec.backlog)).then(() => {
    // From here the server owns `handle`: once it is closed (reload, drain), never touch it.
    const owned = () => (server as unknown as { _handle: unknown })._handle === handle;
    if (!owned()) return fallback("the server did not adopt the bound handle");
    // Marks it reading (libuv's poll for new connections is already on since listen).
    const started = handle.readStart();
    if (started !== 0) return fallback(`uv_read_start on the listening socket failed: ${util.getSystemErrorName(started)}`);
    let paused = false;
    return {
      mode: { pausable: true },
      get paused() {
        return paused;
      },
      pause() {
        if (paused || !owned() || handle.readStop() !== 0) return false;
        return (paused = true);
      },
      resume() {
        if (!paused || !owned() || handle.readStart() !== 0) return false;
        paused = false;
        return true;
      },
    };
  });
}

function listening(server: net.Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => {
      server.removeListener("listening", listened);
      reject(error);
    };
    const listened = () => {
      server.removeListener("error", failed);
      resolve();
    };
    server.once("error", failed);
    server.once("listening", listened);
    start();
  });
}
