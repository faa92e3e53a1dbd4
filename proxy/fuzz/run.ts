/**
 * `npm run fuzz -- [--count N] [--seed S]` (defaults: 1,000,000 inputs, seed 1).
 * Exits 1 and prints the failing input when any check fails.
 */
import { FuzzFailure, runFuzz } from "./fuzz-parsers";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`);
  return value;
}

const count = option("count", 1_000_000);
const seed = option("seed", 1);
try {
  const report = runFuzz({ count, seed, onProgress: (n) => n > 0 && process.stderr.write(`  ${n} inputs...\n`) });
  const rate = Math.round(report.inputs / (report.elapsedMs / 1000));
  process.stdout.write(`fuzz: ${report.inputs} inputs, seed ${seed}, ${report.elapsedMs} ms (${rate}/s), heap growth ${(report.heapGrowthBytes / 1048576).toFixed(1)} MiB\n`);
  for (const [outcome, n] of Object.entries(report.outcomes).sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(n).padStart(8)}  ${outcome}\n`);
} catch (error) {
  process.stderr.write(`fuzz FAILED (seed ${seed}): ${error instanceof FuzzFailure ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
