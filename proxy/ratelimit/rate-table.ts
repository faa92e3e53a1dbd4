/**
 * Per-source connection rate over a sliding window, in one fixed block of
 * memory that every worker thread maps (a SharedArrayBuffer), so a client gets
 * its limit once per host, not once per worker, with no message on the hot path.
 *
 * Open addressing, capacity a power of two; each slot is twelve Int32 cells:
 * state, the 16-byte address (IPv4 as ::ffff:a.b.c.d), the current
 * sub-window number, a ring of five sub-window counts (a quarter window each)
 * and the last second the source was seen. The rate is the count over the last
 * window: the current and three previous quarters in full, the fourth one back
 * in proportion to how much of it is still inside the window. HAProxy's
 * conn_rate keeps only two whole windows and weighs the previous one as if its
 * connections had been spread evenly, so a burst that straddles a window
 * boundary is undercounted by up to half; with quarters, a burst shorter than
 * three quarters of the window is counted exactly. Races between workers can
 * lose a count now and then (two threads rotating at once, or one source
 * inserted twice); a rate limit tolerates that, a lock on every accept would
 * not be worth it.
 *
 * Probing is bounded (PROBE slots). A slot is never emptied: an expired one is
 * reused in place, and when all are live the least recently seen is evicted,
 * so lookups can stop at the first empty slot and memory never grows. The
 * hash is seeded at random per table so nobody can aim collisions at
 * someone else's entry.
 */
import { parseIP } from "../codec/ip-address";

const SLOT = 12;
const STATE = 0;
const ADDR = 1;
const BUCKET = 5;
const RING = 6;
const RING_SIZE = 5;
const SEEN = 11;
const PROBE = 16;
/** Sub-windows per window. */
const QUARTERS = RING_SIZE - 1;

const EMPTY = 0;
const WRITING = 1;
const LIVE = 2;

/** Header: seed (Int32) and the epoch (Float64) the window numbers count from. */
const HEADER_BYTES = 16;

export function capacityFor(tableSize: number): number {
  let capacity = PROBE;
  while (capacity < tableSize) capacity *= 2;
  return capacity;
}

/** Memory for a table of at least `tableSize` entries; shared when workers are threads. */
export function allocateRateTable(tableSize: number, shared: boolean): SharedArrayBuffer | ArrayBuffer {
  const bytes = HEADER_BYTES + capacityFor(tableSize) * SLOT * 4;
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  new Int32Array(buffer, 0, 1)[0] = (Math.random() * 0x1_0000_0000) | 0;
  new Float64Array(buffer, 8, 1)[0] = Date.now();
  return buffer;
}

function isV4Mapped(v6: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (v6[i] !== 0) return false;
  return v6[10] === 0xff && v6[11] === 0xff;
}

/**
 * Source address as four big-endian words; IPv4 and IPv4-mapped IPv6 give the same key. Other
 * IPv6 addresses keep only their first `ipv6Prefix` bits: a host that owns a /64 can rotate
 * through 2^64 addresses, so counting per address would never limit it.
 */
export function sourceKey(address: string, out: Int32Array = new Int32Array(4), ipv6Prefix = 128): Int32Array | null {
  const bytes = parseIP(address);
  if (bytes === null) return null;
  const v6 = new Uint8Array(16);
  if (bytes.length === 4) {
    v6[10] = 0xff;
    v6[11] = 0xff;
    v6.set(bytes, 12);
  } else {
    v6.set(bytes);
    if (ipv6Prefix < 128 && !isV4Mapped(v6)) {
      const whole = ipv6Prefix >> 3;
      const bits = ipv6Prefix & 7;
      if (bits > 0) v6[whole] = v6[whole]! & (0xff << (8 - bits));
      v6.fill(0, bits > 0 ? whole + 1 : whole);
    }
  }
  for (let i = 0; i < 4; i++) out[i] = (v6[4 * i]! << 24) | (v6[4 * i + 1]! << 16) | (v6[4 * i + 2]! << 8) | v6[4 * i + 3]!;
  return out;
}

export class RateTable {
  private readonly cells: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  private readonly epoch: number;
  private readonly key = new Int32Array(4);
  /** One sub-window: the window is counted in QUARTERS of these. */
  private readonly subMs: number;

  constructor(
    buffer: SharedArrayBuffer | ArrayBuffer,
    private readonly windowMs: number,
    private readonly expireMs: number,
    /** IPv6 sources are counted per network of this length (see sourceKey). */
    private readonly ipv6Prefix = 128,
  ) {
    this.seed = new Int32Array(buffer, 0, 1)[0]!;
    this.epoch = new Float64Array(buffer, 8, 1)[0]!;
    this.cells = new Int32Array(buffer, HEADER_BYTES);
    this.mask = this.cells.length / SLOT - 1;
    this.subMs = this.windowMs / QUARTERS;
  }

  /** Milliseconds since the table's epoch, never negative (a clock step back counts as now). */
  private since(now: number): number {
    return Math.max(0, now - this.epoch);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** Counts one connection from `address` and returns the source's rate, this connection included. */
  hit(address: string, now: number = Date.now()): number {
    const key = sourceKey(address, this.key, this.ipv6Prefix);
    if (key === null) return 0;
    const elapsed = this.since(now);
    const bucket = Math.floor(elapsed / this.subMs);
    const base = this.slotFor(key, Math.floor(elapsed / 1000), bucket);
    if (base < 0) return 1; // lost a race for the last free slot: let this one through uncounted
    const c = this.cells;
    const seen = Atomics.load(c, base + BUCKET);
    if (seen < bucket && Atomics.compareExchange(c, base + BUCKET, seen, bucket) === seen) {
      // The winner clears the sub-windows that went by; the others just count.
      for (let b = Math.max(seen + 1, bucket - RING_SIZE + 1); b <= bucket; b++) Atomics.store(c, base + RING + (b % RING_SIZE), 0);
    }
    Atomics.add(c, base + RING + (bucket % RING_SIZE), 1);
    Atomics.store(c, base + SEEN, Math.floor(elapsed / 1000));
    return this.estimate(base, bucket, elapsed - bucket * this.subMs);
  }

  /** The rate of `address` without counting (stats and tests). */
  peek(address: string, now: number = Date.now()): number {
    const key = sourceKey(address, this.key, this.ipv6Prefix);
    if (key === null) return 0;
    const elapsed = this.since(now);
    const bucket = Math.floor(elapsed / this.subMs);
    const c = this.cells;
    for (let i = 0, h = this.hash(key); i < PROBE; i++) {
      const base = ((h + i) & this.mask) * SLOT;
      const state = Atomics.load(c, base + STATE);
      if (state === EMPTY) return 0;
      if (state === LIVE && this.matches(base, key)) return this.estimate(base, bucket, elapsed - bucket * this.subMs);
    }
    return 0;
  }

  private estimate(base: number, bucket: number, into: number): number {
    const c = this.cells;
    const last = Atomics.load(c, base + BUCKET);
    let total = 0;
    for (let back = 0; back < RING_SIZE; back++) {
      const b = bucket - back;
      // Counts newer than this sub-window do not exist yet; ones the slot never rotated past are stale.
      if (b < 0 || b > last || b <= last - RING_SIZE) continue;
      const count = Atomics.load(c, base + RING + (b % RING_SIZE));
      total += back === QUARTERS ? count * (1 - into / this.subMs) : count;
    }
    return total;
  }

  /** Live entries (a full scan: stats and tests only). */
  size(now: number = Date.now()): number {
    const second = Math.floor(this.since(now) / 1000);
    let n = 0;
    for (let base = 0; base < this.cells.length; base += SLOT) {
      if (Atomics.load(this.cells, base + STATE) === LIVE && !this.expired(base, second)) n++;
    }
    return n;
  }

  private slotFor(key: Int32Array, second: number, bucket: number): number {
    const c = this.cells;
    let victim = -1;
    let victimSeen = Infinity;
    let victimState = LIVE;
    for (let i = 0, h = this.hash(key); i < PROBE; i++) {
      const base = ((h + i) & this.mask) * SLOT;
      const state = Atomics.load(c, base + STATE);
      if (state === EMPTY) {
        victim = base;
        victimState = EMPTY;
        break;
      }
      if (state !== LIVE) continue; // another worker is writing it
      if (this.matches(base, key)) return base;
      const seen = this.expired(base, second) ? -Infinity : Atomics.load(c, base + SEEN);
      if (seen < victimSeen) [victim, victimSeen] = [base, seen];
    }
    if (victim < 0 || Atomics.compareExchange(c, victim + STATE, victimState, WRITING) !== victimState) return -1;
    for (let i = 0; i < 4; i++) Atomics.store(c, victim + ADDR + i, key[i]!);
    Atomics.store(c, victim + BUCKET, bucket);
    for (let i = 0; i < RING_SIZE; i++) Atomics.store(c, victim + RING + i, 0);
    Atomics.store(c, victim + SEEN, second);
    Atomics.store(c, victim + STATE, LIVE);
    return victim;
  }

  private expired(base: number, second: number): boolean {
    return (second - Atomics.load(this.cells, base + SEEN)) * 1000 > this.expireMs;
  }

  private matches(base: number, key: Int32Array): boolean {
    const c = this.cells;
    return c[base + ADDR] === key[0] && c[base + ADDR + 1] === key[1] && c[base + ADDR + 2] === key[2] && c[base + ADDR + 3] === key[3];
  }

  private hash(key: Int32Array): number {
    let h = this.seed;
    for (let i = 0; i < 4; i++) {
      h = Math.imul(h ^ key[i]!, 0x9e3779b1);
      h ^= h >>> 15;
      h = Math.imul(h, 0x85ebca77);
      h ^= h >>> 13;
    }
    return h >>> 0;
  }
}
