export * from "./errors";
export * from "./hostname";
export * from "./plan";
export * from "./plan-types";
export * from "./schema";
export * from "./stack-config";
export * from "./types";
export * from "./validate";
export * as paths from "./paths";
