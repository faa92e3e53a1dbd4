// Which LB engines the sandbox and the e2e suite run, and what each can do. Both do all of it
// now (the embedded proxy's part 2 added health checks, the port-80 redirect, stats and rate
// limiting); the table stays so that an engine lacking a feature has its checks skipped with
// that reason, never passed.
import type { Engine } from "../topology";

export type EngineFeature = "health-checks" | "http-redirect" | "stats" | "rate-limit";

const ENGINE_NAMES: readonly Engine[] = ["haproxy", "ts"];

export const ENGINE_FEATURES: Readonly<Record<Engine, ReadonlySet<EngineFeature>>> = {
  haproxy: new Set<EngineFeature>(["health-checks", "http-redirect", "stats", "rate-limit"]),
  ts: new Set<EngineFeature>(["health-checks", "http-redirect", "stats", "rate-limit"]),
};

/** Why a check needing `feature` cannot run on `engine`, or undefined when it can. */
export function missingFeature(engine: Engine, feature: EngineFeature | undefined): string | undefined {
  if (feature === undefined || ENGINE_FEATURES[engine].has(feature)) return undefined;
  return `engine ${engine} has no ${feature} yet (embedded proxy, part 2)`;
}

/** SANDBOX_ENGINES (comma-separated) when set; otherwise every engine. */
export function sandboxEngines(env: NodeJS.ProcessEnv = process.env): Engine[] {
  const listed = env["SANDBOX_ENGINES"];
  if (listed === undefined || listed.trim() === "") return [...ENGINE_NAMES];
  const names = listed.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.filter((n) => !(ENGINE_NAMES as readonly string[]).includes(n));
  if (bad.length > 0) throw new Error(`SANDBOX_ENGINES: unknown engine(s) ${bad.join(", ")}; use ${ENGINE_NAMES.join(", ")}`);
  return [...new Set(names)] as Engine[];
}
