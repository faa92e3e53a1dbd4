// The sandbox's public surface, for the local topology and the end-to-end tests.
export * from "./address";
export * from "./command";
export * from "./container";
export * from "./daemons";
export * from "./haproxy-stats";
export * from "./netns";
export * from "./network";
export * from "./process";
export { isLive, processState } from "./procfs";
export * from "./sandbox";
export * from "./ssh";
export * from "./tcp-probe";
export * from "./tls";
