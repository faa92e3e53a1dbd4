export { buildProxyScript } from "../../../sandbox/proxy-script";

export const NODE20 = "/usr/bin/node";
export const NODE_CURRENT = process.execPath;
