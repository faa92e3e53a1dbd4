// npm run sandbox -- up [--engine haproxy|ts] | test | down
//
// up    the local engine's `up` of prod, then of demo (npm run local, with the sandbox's own
//       local cloud and state in /run/hetzner-ingress-sandbox, and short health check timers),
//       and prints how to reach the sites. Nothing here deploys: the program's own commands do.
// test  runs the end-to-end checks against it, pass/fail per check.
// down  stops its local cloud: every machine and namespace goes, and the run dir with them.
// See docs/sandbox.md.
import { parseArgs } from "node:util";
import type { Engine } from "../topology";
import { listNetns } from "../lab/sandbox";
import { cloudNetnsPrefix, type CloudInfo } from "../local/cloud/cloud";
import { callCloudIn } from "../local/cloud/protocol";
import { ingressChecks, runChecks } from "../sandbox/ingress-checks";
import { IngressSandbox } from "../sandbox/ingress-sandbox";
import { missingPrerequisites } from "../sandbox/prerequisites";
import { sandboxDown, sandboxExists, sandboxRun, sandboxUp } from "../sandbox/sandbox-run";

const USAGE = "usage: npm run sandbox -- up [--engine haproxy|ts] | test | down";
const ENGINES: readonly Engine[] = ["haproxy", "ts"];

function fail(message: string): number {
  console.error(message);
  return 1;
}

async function up(engine: Engine): Promise<number> {
  const r = sandboxRun();
  if (sandboxExists(r)) return fail(`a sandbox is already up in ${r.dir}; run \`npm run sandbox -- down\` first`);
  const t0 = Date.now();
  const result = await sandboxUp(r, engine, (command) => console.log(`${command} ...`));
  for (const { command, result: run } of result.runs) {
    console.log(`--- ${command}`);
    process.stdout.write(run.stdout);
    process.stderr.write(run.stderr);
  }
  if (!result.ok) return fail(`\nsandbox up failed; what is up stays up: \`npm run sandbox -- down\` removes it`);
  console.log(`\nsandbox up in ${((Date.now() - t0) / 1000).toFixed(1)} s (engine ${engine}; health checks: interval 1s, timeout 1s, fall 2, rise 1)`);
  console.log("npm run sandbox -- test   runs the end-to-end checks; npm run sandbox -- down   removes everything");
  return 0;
}

async function test(): Promise<number> {
  const r = sandboxRun();
  if (!sandboxExists(r)) return fail("no sandbox is up: run `npm run sandbox -- up` first");
  const s = await IngressSandbox.attach(r);
  let failed = 0;
  const t0 = Date.now();
  try {
    console.log(`checks against the sandbox (engine ${s.plan.engine}, LB ${s.lb4}):`);
    const results = await runChecks(s, ingressChecks(s.plan), ({ status, name, detail, ms }) => {
      console.log(`${status.toUpperCase().padEnd(4)} ${name} (${ms} ms)\n       ${detail.split("\n").join("\n       ")}`);
    });
    failed = results.filter((x) => x.status === "fail").length;
    console.log(`\n${results.length - failed} passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await s.close();
  }
  return failed === 0 ? 0 : 1;
}

async function down(): Promise<number> {
  const r = sandboxRun();
  const info = await callCloudIn<CloudInfo>(r.dir, "info").catch(() => undefined);
  const prefix = info === undefined ? undefined : cloudNetnsPrefix(info);
  const ours = () => (prefix === undefined ? [] : listNetns().filter((n) => n.startsWith(prefix)));
  const before = ours().length;
  const result = await sandboxDown(r);
  if (result.code !== 0) return fail(`down failed:\n${result.stdout}${result.stderr}`);
  const left = ours();
  if (left.length > 0) return fail(`down left namespaces of the sandbox's cloud behind:\n  ${left.join("\n  ")}`);
  console.log(`sandbox down: ${info ? `its local cloud stopped, ${before} namespaces gone` : "no local cloud was running"}, ${r.dir} removed`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { engine: { type: "string" }, help: { type: "boolean", short: "h" } } });
  const [command] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const engine = (values.engine ?? "haproxy") as Engine;
  if (!ENGINES.includes(engine)) return fail(`--engine must be one of ${ENGINES.join(", ")}\n${USAGE}`);
  if (command !== "up" && command !== "test" && command !== "down") return fail(USAGE);
  const missing = missingPrerequisites();
  if (missing.length > 0) return fail(`the sandbox needs:\n  - ${missing.join("\n  - ")}`);
  switch (command) {
    case "up":
      return up(engine);
    case "test":
      return test();
    case "down":
      return down();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
