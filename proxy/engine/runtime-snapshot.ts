/**
 * Everything a connection needs from the config, built once per (re)load.
 * A connection keeps the listener settings it was accepted with; routing and
 * backends are looked up in the snapshot current when its hello completes.
 */
import { BackendPool, DownServers } from "../backend/backend-pool";
import { HttpRedirectListenerConfig, ProxyConfig, TlsPassthroughListenerConfig } from "../../contract/proxy-config";
import { CidrSet } from "../net/cidr-set";
import { RateBuffers, rateBufferKey } from "../ratelimit/rate-buffers";
import { RateTable } from "../ratelimit/rate-table";
import { RouteTable } from "../routing/route-table";

export interface ListenerRuntime {
  readonly config: TlsPassthroughListenerConfig;
  readonly routes: RouteTable;
  /** Peers whose PROXY header we read; null when the listener has no accept-proxy. */
  readonly trusted: CidrSet | null;
  readonly rate: RateLimiter | null;
}

export interface RedirectListenerRuntime {
  readonly config: HttpRedirectListenerConfig;
  readonly rate: RateLimiter | null;
}

export interface RateLimiter {
  readonly table: RateTable;
  /** The configured limit, or this worker's share of it when the table is private to the worker. */
  readonly limit: number;
  readonly action: "drop" | "reject";
}

export interface RuntimeSnapshot {
  readonly config: ProxyConfig;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly redirects: ReadonlyMap<string, RedirectListenerRuntime>;
  readonly backends: ReadonlyMap<string, BackendPool>;
}

export interface SnapshotSources {
  readonly cursors: Map<string, { value: number }>;
  readonly down: DownServers;
  readonly rateBuffers: RateBuffers;
  readonly workerCount: number;
}

function rateLimiter(listener: ProxyConfig["listeners"][number], sources: SnapshotSources): RateLimiter | null {
  const rl = listener.rateLimit;
  if (rl === undefined) return null;
  const buffer = sources.rateBuffers.get(rateBufferKey(listener.name, rl.tableSize, rl.windowMs));
  if (buffer === undefined) throw new Error(`no rate table for listener ${listener.name}`);
  // A private table (node:cluster processes) sees only this worker's share of a source's connections.
  const shared = typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
  const limit = shared ? rl.maxConnectionsPerWindow : Math.ceil(rl.maxConnectionsPerWindow / sources.workerCount);
  return { table: new RateTable(buffer, rl.windowMs, rl.expireMs, rl.ipv6PrefixLength), limit, action: rl.action };
}

export function buildSnapshot(config: ProxyConfig, sources: SnapshotSources): RuntimeSnapshot {
  const listeners = new Map<string, ListenerRuntime>();
  const redirects = new Map<string, RedirectListenerRuntime>();
  for (const listener of config.listeners) {
    if (listener.mode === "http-redirect") {
      redirects.set(listener.name, { config: listener, rate: rateLimiter(listener, sources) });
      continue;
    }
    const routes = config.routes.filter((r) => r.listeners === undefined || r.listeners.includes(listener.name));
    listeners.set(listener.name, {
      config: listener,
      routes: new RouteTable(routes),
      trusted: listener.acceptProxy ? new CidrSet(listener.acceptProxy.trustedSources) : null,
      rate: rateLimiter(listener, sources),
    });
  }
  const backends = new Map<string, BackendPool>();
  for (const backend of config.backends) {
    let cursor = sources.cursors.get(backend.name);
    if (cursor === undefined) sources.cursors.set(backend.name, (cursor = { value: 0 }));
    backends.set(backend.name, new BackendPool(backend, cursor, sources.down));
  }
  return { config, listeners, redirects, backends };
}
