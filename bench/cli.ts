// npm run bench: the ts proxy as a peer of HAProxy and nginx, per core, in one run.
//
//   sudo npm run bench -- [--rounds 3] [--seconds 5] [--idle 5000] [--bulk-mib 100] [--smoke]
//
// Every engine runs the LB's rendered files (prod's stack) on the LB's port 443, one at a time,
// pinned alone to the last core; the client, the web server and this script share the others.
// Rounds interleave the engines (each round in a rotated order) so that a change in machine load
// hits them alike; rows are medians with min-max. All traffic stays between namespaces this script
// creates (documentation and Pulumi.prod.yaml's private ranges).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { buildScript } from "../components/program/program-files";
import { benchTopology, createBenchLab, LB_PUBLIC, startEngine, type RunningEngine } from "./bench-lab";
import { renderChart } from "./chart";
import { allowedCpus } from "./proc-meter";
import { ENGINES, renderPreamble, renderTable, type BenchRun, type BenchSettings, type EngineName, type RoundSample } from "./results";
import { bulk, idleConnections, keepAlive, newConnections, pacedLatency, type WorkloadContext } from "./workloads";

const REPO = join(__dirname, "..");
const README = join(__dirname, "README.md");
const CHART = join(REPO, "docs", "bench.svg");
const MARK_START = "<!-- bench:latest -->";
const MARK_END = "<!-- /bench:latest -->";

/** A binary's version line (nginx -v prints it on stderr). */
function versionOf(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0]!.replace(/ - https?:.*$/, "").trim() || "unknown";
}

function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error("the bench builds network namespaces: run it as root (sudo npm run bench)");
  for (const bin of ["wrk", "haproxy", "nginx", "curl", "taskset"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin} || test -x /usr/sbin/${bin}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${bin} is missing: run scripts/setup.sh --test (it installs wrk, haproxy, nginx and the stream module)`);
    }
  }
}

/** This script, its children (wrk, the web server, the clients) on every allowed core but the engine's. */
function pinSelf(cpus: readonly number[]): { engineCore: number; allCores: string } {
  const all = cpus.join(",");
  const engineCore = cpus[cpus.length - 1]!;
  if (cpus.length < 2) {
    process.stderr.write("bench: one CPU only: the engine shares it with the load, CPU figures include the load's\n");
    return { engineCore, allCores: all };
  }
  execFileSync("taskset", ["-a", "-p", "-c", cpus.slice(0, -1).join(","), String(process.pid)], { stdio: "ignore" });
  return { engineCore, allCores: all };
}

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string" },
      seconds: { type: "string" },
      connections: { type: "string" },
      idle: { type: "string" },
      "bulk-mib": { type: "string" },
      paced: { type: "string" },
      engines: { type: "string" },
      smoke: { type: "boolean", default: false },
      json: { type: "string" },
      "no-write": { type: "boolean", default: false },
    },
  });
  const smoke = values.smoke === true;
  const num = (v: string | undefined, full: number, quick: number): number => {
    const n = v === undefined ? (smoke ? quick : full) : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`bench: ${v} is not a positive number`);
    return n;
  };
  const settings: BenchSettings = {
    rounds: num(values.rounds, 3, 1),
    seconds: num(values.seconds, 5, 1),
    connections: num(values.connections, 32, 8),
    idleConnections: num(values.idle, 5000, 100),
    bulkMiB: num(values["bulk-mib"], 100, 4),
    pacedRequestsPerSecond: num(values.paced, 1000, 200),
    smoke,
  };
  const engines = (values.engines?.split(",") ?? [...ENGINES]) as EngineName[];
  for (const e of engines) if (!ENGINES.includes(e)) throw new Error(`bench: unknown engine ${e} (one of ${ENGINES.join(", ")})`);
  requireTools();
  const allowed = allowedCpus();
  const pinning = pinSelf(allowed);

  const proxyScript = buildScript(join(REPO, "proxy", "main.ts"));
  const lab = await createBenchLab(benchTopology("ts", settings.idleConnections), settings.bulkMiB);
  const rounds: Partial<Record<EngineName, RoundSample[]>> = {};
  try {
    const wrkDir = await lab.sb.subdir("wrk");
    for (let round = 0; round < settings.rounds; round++) {
      for (const name of rotate(engines, round)) {
        process.stderr.write(`bench: round ${round + 1}/${settings.rounds}, ${name}\n`);
        const engine: RunningEngine = await startEngine(name, {
          lab,
          idleConnections: settings.idleConnections,
          proxyScript,
          nodePath: process.execPath,
          engineCore: pinning.engineCore,
          allCores: pinning.allCores,
        });
        try {
          const c: WorkloadContext = { client: lab.client, engine, seconds: settings.seconds, connections: settings.connections, dir: wrkDir };
          const sample: { -readonly [K in keyof RoundSample]: RoundSample[K] } = {};
          // Memory first, while the engine is fresh.
          if (name !== "direct") sample.idle = await idleConnections(c, settings.idleConnections, process.execPath, LB_PUBLIC, smoke ? 1000 : 5000);
          // One unmeasured second, so each engine is measured warm (Node's JIT, every cache).
          if (!smoke) await newConnections({ ...c, seconds: 1 });
          sample.newConnection = await newConnections(c);
          sample.keepAlive = await keepAlive(c);
          sample.bulk = await bulk(c);
          sample.latency = await pacedLatency(c, settings.pacedRequestsPerSecond);
          (rounds[name] ??= []).push(sample);
        } finally {
          await engine.stop();
        }
      }
    }
  } finally {
    await lab.sb.teardown();
  }

  const run: BenchRun = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    machine: { cpus: allowed.length, model: os.cpus()[0]?.model.trim() ?? "unknown", kernel: os.release() },
    versions: { node: process.versions.node, haproxy: versionOf(["haproxy", "-v"]), nginx: versionOf(["nginx", "-v"]) },
    settings,
    rounds,
  };
  const table = `${renderPreamble(run)}\n\n${renderTable(run)}\n`;
  process.stdout.write(table);
  const jsonPath = values.json ?? (smoke || values["no-write"] ? undefined : join(__dirname, "results", `${run.date.slice(0, 10)}.json`));
  if (jsonPath !== undefined) {
    mkdirSync(dirname(jsonPath), { recursive: true });
    writeFileSync(jsonPath, JSON.stringify(run, null, 2) + "\n");
    process.stderr.write(`bench: results in ${jsonPath}\n`);
  }
  if (!smoke && !values["no-write"]) {
    writeFileSync(CHART, renderChart(run, `ts proxy vs HAProxy and nginx, per core (${run.date.slice(0, 10)})`));
    const readme = readFileSync(README, "utf8");
    const start = readme.indexOf(MARK_START);
    const end = readme.indexOf(MARK_END);
    if (start >= 0 && end > start) {
      writeFileSync(README, `${readme.slice(0, start + MARK_START.length)}\n${table}${readme.slice(end)}`);
      process.stderr.write(`bench: table in ${README}, chart in ${CHART}\n`);
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
