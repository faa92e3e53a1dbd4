// `haproxy -c` and `nginx -t` against staged files.
import { exec, type ExecResult } from "./exec";
import { withNetns } from "./netns";

/** Env for the check: the stats credentials the deploy would put in stats.env. */
export const STATS_ENV = { STATS_USER: "admin", STATS_PASSWORD: "not-a-real-password" } as const;

export function haproxyCheck(cfg: string, routesDir: string, binary = "haproxy"): ExecResult {
  // -dW: any warning fails the check, so a deprecation shows up here before production.
  return exec([binary, "-dW", "-c", "-f", cfg, "-f", routesDir], { ...process.env, ...STATS_ENV });
}

/** nginx -t opens its listening sockets, so it runs inside a namespace of its own. */
export function nginxTest(conf: string): ExecResult {
  return withNetns("ngt", (ns) => ns.run("nginx", "-e", "stderr", "-t", "-c", conf));
}
