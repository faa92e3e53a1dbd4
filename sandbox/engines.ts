// Which LB engines the sandbox and the e2e suite run: every engine, unless SANDBOX_ENGINES
// names some. Both pass the same checks; none is skipped for an engine.
import type { Engine } from "../topology";

const ENGINE_NAMES: readonly Engine[] = ["haproxy", "ts"];

/** SANDBOX_ENGINES (comma-separated) when set; otherwise every engine. */
export function sandboxEngines(env: NodeJS.ProcessEnv = process.env): Engine[] {
  const listed = env["SANDBOX_ENGINES"];
  if (listed === undefined || listed.trim() === "") return [...ENGINE_NAMES];
  const names = listed.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.filter((n) => !(ENGINE_NAMES as readonly string[]).includes(n));
  if (bad.length > 0) throw new Error(`SANDBOX_ENGINES: unknown engine(s) ${bad.join(", ")}; use ${ENGINE_NAMES.join(", ")}`);
  return [...new Set(names)] as Engine[];
}
