// The namespace lab: network namespaces, links, routed networks and segments, processes that
// live in them, and the real daemons and clients the tests drive. It knows nothing of the
// ingress; the local cloud (local/) and the ingress scenario (sandbox/) are built on it.
export * from "./address";
export * from "./command";
export * from "./container";
export * from "./daemons";
export * from "./haproxy-stats";
export * from "./netns";
export * from "./network";
export * from "./process";
export * from "./prometheus-text";
export { isLive, processState } from "./procfs";
export * from "./sandbox";
export * from "./ssh";
export * from "./tcp-probe";
export * from "./tls";
export * from "./tls-client";
