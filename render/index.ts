// The renderers: pure functions from the plan to file text. renderStack is the entry point.
export * from "./attached-routes";
export * from "./stack";
export * from "./cloud-init";
export * from "./errorfile";
export * from "./haproxy";
export * from "./nftables";
export * from "./nginx";
export * from "./proxy-config";
export * from "./quadlet";
export * from "./host-bundle";
