/** What the primary and its workers (threads or cluster processes) say to each other. */
import { ProxyConfig } from "../config/schema";

export type ToWorker =
  | { readonly type: "start"; readonly config: ProxyConfig; readonly index: number; readonly count: number; readonly reusePort: boolean }
  | { readonly type: "reload"; readonly config: ProxyConfig }
  | { readonly type: "drain"; readonly graceMs: number };

export type ToPrimary =
  | { readonly type: "ready"; readonly index: number }
  | { readonly type: "fatal"; readonly index: number; readonly message: string }
  | { readonly type: "drained"; readonly index: number };

export interface Channel {
  send(message: ToPrimary): void;
  onMessage(handler: (message: ToWorker) => void): void;
}
