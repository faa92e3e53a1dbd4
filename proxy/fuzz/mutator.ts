/** A small seeded byte mutator: deterministic for a given seed, so any failure replays exactly. */

/** mulberry32: tiny, fast, good enough to drive mutations. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** Values that sit on the edges of the length checks. */
const INTERESTING_U8 = [0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x20, 0x16, 0x03, 0x21, 0x11];
const INTERESTING_U16 = [0, 1, 2, 0x00ff, 0x0100, 0x3fff, 0x4000, 0x4001, 0x7fff, 0x8000, 0xfffe, 0xffff];

export function mutate(input: Uint8Array, rng: Rng, donors: readonly Uint8Array[], maxLength = 24_000): Uint8Array {
  let bytes = Uint8Array.from(input);
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const at = bytes.length === 0 ? 0 : rng.int(bytes.length);
    switch (rng.int(10)) {
      case 0: // flip a bit
        if (bytes.length) bytes[at] = bytes[at]! ^ (1 << rng.int(8));
        break;
      case 1: // interesting byte
        if (bytes.length) bytes[at] = rng.pick(INTERESTING_U8);
        break;
      case 2: {
        // interesting 16-bit value, or a nearby length +-1..3
        if (bytes.length < 2) break;
        const pos = Math.min(at, bytes.length - 2);
        const current = (bytes[pos]! << 8) | bytes[pos + 1]!;
        const value = rng.int(2) ? rng.pick(INTERESTING_U16) : (current + rng.pick([-3, -2, -1, 1, 2, 3])) & 0xffff;
        bytes[pos] = value >> 8;
        bytes[pos + 1] = value & 0xff;
        break;
      }
      case 3: // random byte
        if (bytes.length) bytes[at] = rng.int(256);
        break;
      case 4: // truncate
        bytes = bytes.slice(0, at);
        break;
      case 5: {
        // delete a range
        const length = 1 + rng.int(16);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + length)]);
        break;
      }
      case 6: {
        // insert random bytes
        const extra = Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...extra, ...bytes.subarray(at)]);
        break;
      }
      case 7: {
        // duplicate a range
        const length = 1 + rng.int(64);
        bytes = Uint8Array.from([...bytes.subarray(0, at + length), ...bytes.subarray(at, at + length), ...bytes.subarray(at + length)]);
        break;
      }
      case 8: {
        // splice with another seed
        const donor = rng.pick(donors);
        const from = rng.int(donor.length + 1);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...donor.subarray(from)]);
        break;
      }
      default: // leave as is this round
        break;
    }
  }
  return bytes.length > maxLength ? bytes.subarray(0, maxLength) : bytes;
}
