/**
 * The memory behind each listener's rate table, allocated by whoever outlives
 * reloads: the primary for worker threads (one SharedArrayBuffer every thread
 * maps), each process for itself under node:cluster. A table is kept while its
 * listener, size and window stay the same, so a reload does not forget who was
 * flooding; changing the size or window starts a fresh table.
 */
import { ProxyConfig } from "../../contract/proxy-config";
import { allocateRateTable } from "./rate-table";

export type RateBuffers = ReadonlyMap<string, SharedArrayBuffer | ArrayBuffer>;

export function rateBufferKey(listener: string, tableSize: number, windowMs: number): string {
  return `${listener}|${tableSize}|${windowMs}`;
}

/** The buffers `config` needs: those of `current` that still fit, new ones for the rest. */
export function rateBuffersFor(config: ProxyConfig, current: RateBuffers, shared: boolean): Map<string, SharedArrayBuffer | ArrayBuffer> {
  const next = new Map<string, SharedArrayBuffer | ArrayBuffer>();
  for (const listener of config.listeners) {
    const rl = listener.rateLimit;
    if (rl === undefined) continue;
    const key = rateBufferKey(listener.name, rl.tableSize, rl.windowMs);
    next.set(key, current.get(key) ?? allocateRateTable(rl.tableSize, shared));
  }
  return next;
}
