/** What the primary and its workers (threads or cluster processes) say to each other. */
import { ProxyConfig } from "../../contract/proxy-config";
import { WorkerStats } from "../engine/worker-stats";
import { RateBuffers } from "../ratelimit/rate-buffers";

export type ToWorker =
  | {
      readonly type: "start";
      readonly config: ProxyConfig;
      readonly index: number;
      readonly count: number;
      readonly reusePort: boolean;
      /** Threads only: rate tables in shared memory (a Map cannot cross node:cluster's JSON channel). */
      readonly rateBuffers?: RateBuffers;
      readonly down: readonly string[];
    }
  | { readonly type: "reload"; readonly config: ProxyConfig; readonly rateBuffers?: RateBuffers }
  /** The health checks' verdict: these "<backend>/<server>" are DOWN, every other server is usable. */
  | { readonly type: "health"; readonly down: readonly string[] }
  | { readonly type: "stats-request"; readonly id: number }
  | { readonly type: "drain"; readonly graceMs: number };

export type ToPrimary =
  | { readonly type: "ready"; readonly index: number }
  | { readonly type: "fatal"; readonly index: number; readonly message: string }
  | { readonly type: "stats"; readonly index: number; readonly id: number; readonly stats: WorkerStats }
  | { readonly type: "drained"; readonly index: number }
  /** Every second: the connections the worker holds, so a worker that dies without a word is accounted for. */
  | { readonly type: "load"; readonly index: number; readonly active: number }
  /** The worker is going down with an error; it has cut and logged `connections`. */
  | { readonly type: "crashed"; readonly index: number; readonly connections: number; readonly error: string };

export interface Channel {
  /** `done`: called once the message is handed over (a worker that is about to exit waits for it). */
  send(message: ToPrimary, done?: () => void): void;
  onMessage(handler: (message: ToWorker) => void): void;
}
