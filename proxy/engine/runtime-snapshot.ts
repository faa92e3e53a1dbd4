/**
 * Everything a connection needs from the config, built once per (re)load.
 * A connection keeps the listener settings it was accepted with; routing and
 * backends are looked up in the snapshot current when its hello completes.
 */
import { BackendPool } from "../backend/backend-pool";
import { ProxyConfig, TlsPassthroughListenerConfig } from "../config/schema";
import { CidrSet } from "../net/cidr-set";
import { RouteTable } from "../routing/route-table";

export interface ListenerRuntime {
  readonly config: TlsPassthroughListenerConfig;
  readonly routes: RouteTable;
  /** Peers whose PROXY header we read; null when the listener has no accept-proxy. */
  readonly trusted: CidrSet | null;
}

export interface RuntimeSnapshot {
  readonly config: ProxyConfig;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly backends: ReadonlyMap<string, BackendPool>;
}

export function buildSnapshot(config: ProxyConfig, cursors: Map<string, { value: number }>): RuntimeSnapshot {
  const listeners = new Map<string, ListenerRuntime>();
  for (const listener of config.listeners) {
    if (listener.mode !== "tls-passthrough") continue;
    const routes = config.routes.filter((r) => r.listeners === undefined || r.listeners.includes(listener.name));
    listeners.set(listener.name, {
      config: listener,
      routes: new RouteTable(routes),
      trusted: listener.acceptProxy ? new CidrSet(listener.acceptProxy.trustedSources) : null,
    });
  }
  const backends = new Map<string, BackendPool>();
  for (const backend of config.backends) {
    let cursor = cursors.get(backend.name);
    if (cursor === undefined) cursors.set(backend.name, (cursor = { value: 0 }));
    backends.set(backend.name, new BackendPool(backend, cursor));
  }
  return { config, listeners, backends };
}
