export { buildProxyBundle as buildBundle } from "../../../sandbox/proxy-bundle";

export const NODE20 = "/usr/bin/node";
export const NODE_CURRENT = process.execPath;
