// Which LB engines the sandbox and the e2e suite run. haproxy always; ts only when asked for
// (SANDBOX_ENGINES=haproxy,ts) or when the built proxy passes a quick capability probe on the
// rendered files: it accepts the plan's own command line with --check, and, started in a
// throwaway namespace, listens on every port the plan gives it (https, http, stats).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type { Engine } from "../topology";
import * as paths from "../topology/paths";
import { planIngressSandbox } from "./ingress-plan";
import { INGRESS_SANDBOX_PREFIX } from "./mount-points";

export const PROXY_BUNDLE_PATH = resolve(__dirname, "..", "dist", "proxy.js");
const ENGINE_NAMES: readonly Engine[] = ["haproxy", "ts"];

// Starts argv in a fresh namespace and waits until it listens on every port: 4 s at most, and
// 0.5 s once some port listens. Everything in the namespace is killed before it is deleted:
// the proxy forks workers.
const LISTEN_PROBE = `
NS=$1; shift
ip netns add "$NS" || exit 1
trap 'ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$NS"' EXIT
ip -n "$NS" link set lo up
ip netns exec "$NS" "$@" >/dev/null 2>&1 &
P=$!
i=0
first=
while [ $i -lt 40 ]; do
  ok=1
  for port in $PORTS; do
    if ip netns exec "$NS" ss -Hltn "sport = :$port" | grep -q .; then first=\${first:-$i}; else ok=0; fi
  done
  [ $ok = 1 ] && exit 0
  [ -n "$first" ] && [ $((i - first)) -ge 5 ] && exit 4
  kill -0 $P 2>/dev/null || exit 3
  sleep 0.1
  i=$((i + 1))
done
exit 4
`;

/** Why the ts engine cannot run in the sandbox, or undefined when it can. */
export function tsEngineProblem(bundle = PROXY_BUNDLE_PATH): string | undefined {
  if (!existsSync(bundle)) return `${bundle} is missing (npm run build:proxy)`;
  const dir = mkdtempSync(join(tmpdir(), `${INGRESS_SANDBOX_PREFIX}-probe-`));
  try {
    const plan = planIngressSandbox({ stacks: "all", engine: "ts" });
    const proxy = plan.lb.containers.find((c) => c.name === "proxy");
    const [, script, ...args] = proxy?.command ?? [];
    if (script !== paths.PROXY_BUNDLE) return "the plan runs no proxy bundle";
    const routesDir = join(dir, "routes.d");
    mkdirSync(routesDir);
    for (const f of [...(plan.rendered.get(plan.lb.name)?.files ?? []), ...plan.attachedRoutes]) {
      if (f.path === paths.PROXY_CONFIG) writeFileSync(join(dir, "proxy.json"), f.content);
      else if (f.path.endsWith(".json") && f.path.includes("/proxy/routes.d/")) writeFileSync(join(routesDir, basename(f.path)), f.content);
    }
    const swap = (a: string): string => (a === paths.PROXY_CONFIG ? join(dir, "proxy.json") : a === paths.PROXY_ROUTES_D ? routesDir : a);
    const argv = [process.execPath, bundle, ...args.map(swap)];
    const check = spawnSync(argv[0]!, [...argv.slice(1), "--check"], { timeout: 5000, encoding: "utf8" });
    if (check.status !== 0) return `the proxy rejects the planned command line or files: ${(check.stderr || check.stdout).trim().split("\n")[0]}`;
    if (process.getuid?.() !== 0) return "the listen probe needs root";
    const ports = plan.lb.listens.filter((l) => l.by === "proxy").map((l) => l.port);
    const ns = `${INGRESS_SANDBOX_PREFIX}-${process.pid.toString(36)}-${randomBytes(2).toString("hex")}-probe`;
    const env = { ...process.env, PORTS: ports.join(" "), STATS_USER: "probe", STATS_PASSWORD: "probe" };
    const run = spawnSync("sh", ["-c", LISTEN_PROBE, "sh", ns, ...argv], { timeout: 10_000, env, stdio: "ignore" });
    if (run.status !== 0) return `the proxy does not listen on every planned port (${ports.join(", ")}) with the rendered config`;
    return undefined;
  } catch (e) {
    return `probe failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SANDBOX_ENGINES (comma-separated) when set; otherwise haproxy, plus ts if the probe passes. */
export function sandboxEngines(env: NodeJS.ProcessEnv = process.env): Engine[] {
  const listed = env["SANDBOX_ENGINES"];
  if (listed !== undefined && listed.trim() !== "") {
    const names = listed.split(",").map((s) => s.trim()).filter((s) => s !== "");
    const bad = names.filter((n) => !(ENGINE_NAMES as readonly string[]).includes(n));
    if (bad.length > 0) throw new Error(`SANDBOX_ENGINES: unknown engine(s) ${bad.join(", ")}; use ${ENGINE_NAMES.join(", ")}`);
    return [...new Set(names)] as Engine[];
  }
  return tsEngineProblem() === undefined ? ["haproxy", "ts"] : ["haproxy"];
}
