/**
 * Mutation fuzzing of both byte parsers. For every input it checks that the
 * parser does not throw, that `consumed` stays within the input and the byte
 * budget and never goes backwards, that feeding the same bytes in random
 * pieces gives the same answer as feeding them whole, and that a done result
 * is internally sane. Heap growth over the run is reported for a bound check.
 */
import { ClientHelloParser, ClientHelloResult } from "../codec/client-hello";
import { ProxyHeaderParser, ProxyHeaderResult } from "../codec/proxy-header-parser";
import { encodeProxyV2 } from "../codec/proxy-v2-encoder";
import { normaliseServerName } from "../routing/server-name";
import { mutate, Rng } from "./mutator";
import { clientHello, handshakeMessage, helloBody, proxyV2, records, sslv2Hello } from "./vectors";

export interface FuzzReport {
  readonly inputs: number;
  readonly outcomes: Record<string, number>;
  readonly heapGrowthBytes: number;
  readonly elapsedMs: number;
}

export class FuzzFailure extends Error {
  constructor(
    message: string,
    readonly input: Uint8Array,
    readonly index: number,
  ) {
    super(`${message} (input #${index}: ${Buffer.from(input).toString("hex").slice(0, 400)})`);
  }
}

const HELLO_BUDGET = 16384;
const PROXY_BUDGET = 4096;

function seeds(): { hello: Uint8Array[]; proxy: Uint8Array[] } {
  const hello = [
    clientHello(),
    clientHello({ grease: true, serverNames: [{ type: 0, name: "demo.fiscalismia.com" }] }),
    clientHello({ serverNames: null }),
    clientHello({ serverNames: [{ type: 1, name: "x" }, { type: 0, name: "a.b" }] }),
    clientHello({ padBodyTo: 5000 }, [1000, 1000]),
    records(handshakeMessage(helloBody({ serverNames: [{ type: 0, name: "split.example" }] })), [7, 50]),
    clientHello({ noExtensions: true }),
    sslv2Hello(),
  ];
  const proxy = [
    encodeProxyV2({ command: "proxy", source: { address: "203.0.113.1", port: 1234 }, destination: { address: "10.0.0.1", port: 443 } }),
    encodeProxyV2({ command: "proxy", source: { address: "2001:db8::1", port: 1 }, destination: { address: "fd00::1", port: 443 }, authority: "a.example" }),
    encodeProxyV2({ command: "local" }),
    proxyV2({ body: [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x03, 0, 4, 0, 0, 0, 0, 0x20, 0, 5, 1, 0, 0, 0, 0] }),
    Buffer.from("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
    Buffer.from("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"),
    Buffer.from("PROXY UNKNOWN\r\n"),
  ];
  return { hello, proxy };
}

type AnyResult = ClientHelloResult | ProxyHeaderResult;

function feed<R extends AnyResult>(make: () => { push(b: Uint8Array): R }, input: Uint8Array, cuts: number[], index: number): R {
  const parser = make();
  let last: R | null = null;
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    const piece = input.subarray(from, cut);
    from = cut;
    const result = parser.push(piece);
    if (last !== null && result.consumed < last.consumed) throw new FuzzFailure("consumed went backwards", input, index);
    last = result;
    if (result.kind !== "need-more") break;
  }
  return last ?? parser.push(new Uint8Array(0));
}

function check(result: AnyResult, input: Uint8Array, budget: number, index: number): void {
  if (result.consumed < 0 || result.consumed > input.length) throw new FuzzFailure(`consumed ${result.consumed} outside input`, input, index);
  if (result.consumed > budget) throw new FuzzFailure(`consumed ${result.consumed} beyond budget ${budget}`, input, index);
  if (result.kind === "need-more" && result.consumed !== Math.min(input.length, budget)) {
    throw new FuzzFailure("need-more without consuming all input", input, index);
  }
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)) === JSON.stringify(b, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
}

export function runFuzz(options: { count: number; seed: number; onProgress?: (done: number) => void }): FuzzReport {
  const rng = new Rng(options.seed);
  const { hello, proxy } = seeds();
  const all = [...hello, ...proxy];
  const outcomes: Record<string, number> = {};
  const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
  const heapBefore = process.memoryUsage().heapUsed;
  const started = Date.now();
  for (let i = 0; i < options.count; i++) {
    const useHello = rng.int(2) === 0;
    const input = mutate(rng.pick(useHello ? hello : proxy), rng, all);
    const cuts = Array.from({ length: rng.int(5) }, () => rng.int(input.length + 1)).sort((a, b) => a - b);
    try {
      if (useHello) {
        const whole = feed(() => new ClientHelloParser(HELLO_BUDGET), input, [], i);
        check(whole, input, HELLO_BUDGET, i);
        const pieces = feed(() => new ClientHelloParser(HELLO_BUDGET), input, cuts, i);
        if (!same(whole, pieces)) throw new FuzzFailure("chunked result differs from whole", input, i);
        if (whole.kind === "done" && whole.hostName !== null) {
          if (whole.hostName.length === 0 || whole.hostName.length > 255) throw new FuzzFailure("host name length out of range", input, i);
          count(`hello:sni:${normaliseServerName(whole.hostName).ok ? "ok" : "refused"}`);
        }
        count(`hello:${whole.kind === "reject" ? whole.reason : whole.kind}`);
      } else {
        const whole = feed(() => new ProxyHeaderParser(PROXY_BUDGET), input, [], i);
        check(whole, input, PROXY_BUDGET, i);
        const pieces = feed(() => new ProxyHeaderParser(PROXY_BUDGET), input, cuts, i);
        if (!same(whole, pieces)) throw new FuzzFailure("chunked result differs from whole", input, i);
        count(`proxy:${whole.kind === "reject" ? whole.reason : whole.kind}`);
      }
    } catch (error) {
      if (error instanceof FuzzFailure) throw error;
      throw new FuzzFailure(`threw ${(error as Error).stack ?? String(error)}`, input, i);
    }
    if (options.onProgress && i % 100_000 === 0) options.onProgress(i);
  }
  return { inputs: options.count, outcomes, heapGrowthBytes: process.memoryUsage().heapUsed - heapBefore, elapsedMs: Date.now() - started };
}
