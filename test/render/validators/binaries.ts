// `haproxy -c` and `nginx -t` against staged files.
import { run, type RunResult } from "../../../lab/command";
import type { Netns } from "../../../lab/netns";

/** Env for the check: the stats credentials the deploy would put in stats.env. */
export const STATS_ENV = { STATS_USER: "admin", STATS_PASSWORD: "not-a-real-password" } as const;

export function haproxyCheck(cfg: string, routesDir: string, binary = "haproxy"): Promise<RunResult> {
  // -dW: any warning fails the check, so a deprecation shows up here before production.
  return run([binary, "-dW", "-c", "-f", cfg, "-f", routesDir], { env: { ...process.env, ...STATS_ENV }, allowFailure: true, timeoutMs: 20_000 });
}

/**
 * nginx -t opens its listening sockets, so it runs inside a namespace. It also opens the access
 * log, /dev/stdout, which fails (ENXIO) when stdout is a socket as node's pipes are: stdout goes
 * to /dev/null instead (the verdict is on stderr).
 */
export function nginxTest(ns: Netns, conf: string): Promise<RunResult> {
  return ns.exec(["sh", "-c", 'exec "$@" >/dev/null', "sh", "nginx", "-e", "stderr", "-t", "-c", conf], { allowFailure: true, timeoutMs: 20_000 });
}
