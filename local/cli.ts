// npm run local -- up|preview|destroy --stack prod|demo [--replace NAME]... [--config FILE]
//                  status | down
// Runs the Pulumi program (index.ts) against the local cloud (local/cloud/), starting the cloud
// on first use. One program run per process, as Pulumi does it.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../components/program/program-files";
import { isLive } from "../lab/procfs";
import { CLIENT, type CloudInfo } from "./cloud/cloud";
import { callCloud, LOCAL_RUN_DIR } from "./cloud/protocol";
import { runEngine } from "./engine/engine";
import { configFromYaml, secretNamesOf } from "./engine/stack-config";
import { readStackFile } from "./engine/state-file";

export const LOCAL_STATE_DIR = process.env["HETZNER_INGRESS_LOCAL_STATE"] ?? join(PROJECT_ROOT, ".local-engine");
const PROJECT = "hetzner-ingress";

function usage(): never {
  process.stderr.write(
    "usage: npm run local -- up|preview|destroy --stack STACK [--replace NAME]... [--config FILE]\n" +
      "       npm run local -- status|down\n" +
      "       npm run local -- acme-ca start --resolve-to SERVER [--validity SECONDS] | stop | info | resolve IPV4\n",
  );
  process.exit(2);
}

async function cloudInfo(): Promise<CloudInfo | undefined> {
  try {
    return await callCloud<CloudInfo>("info");
  } catch {
    return undefined;
  }
}

/** The running local cloud, started (detached, logging to its run dir) when none answers. */
export async function ensureCloud(): Promise<CloudInfo> {
  const running = await cloudInfo();
  if (running) return running;
  mkdirSync(LOCAL_RUN_DIR, { recursive: true, mode: 0o700 });
  const log = openSync(join(LOCAL_RUN_DIR, "cloud.log"), "a");
  const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "local", "cloud", "daemon.ts")], { detached: true, stdio: ["ignore", log, log], cwd: PROJECT_ROOT });
  child.unref();
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const info = await cloudInfo();
    if (info) return info;
    if (child.exitCode !== null) break;
  }
  throw new Error(`the local cloud did not start; see ${join(LOCAL_RUN_DIR, "cloud.log")}`);
}

/** How to reach each site of the stack through the LB, from the cloud's internet client. */
function reachHint(stack: string, info: CloudInfo, outputs: Record<string, unknown>): string {
  const records = Array.isArray(outputs["dnsRecordsToCreate"]) ? (outputs["dnsRecordsToCreate"] as { name?: unknown; type?: unknown; value?: unknown }[]) : [];
  const v4 = records.filter((r) => r.type === "A");
  if (v4.length === 0) return "";
  const lines = v4.map((r) => `  ip netns exec ${info.clientNetns} curl -k --resolve ${String(r.name)}:443:${String(r.value)} https://${String(r.name)}/`);
  return [
    "",
    `Reach the sites of stack ${stack} through the LB, from the client on the local internet (${CLIENT.ipv4}), as root:`,
    ...lines,
    `Tear down: npm run local -- destroy --stack ${stack}   (all stacks and the local cloud: npm run local -- down)`,
    "",
  ].join("\n");
}

/**
 * A Pebble ACME CA on the local cloud's internet, its DNS resolving every name to one server
 * (the LB): for stacks whose acme.directory is this CA's (the sandbox's). Prints its info as JSON.
 */
async function acmeCaCommand(args: readonly string[]): Promise<void> {
  const [action, ...rest] = args;
  let value: unknown;
  if (action === "start") {
    let resolveToServer: string | undefined;
    let certificateValiditySeconds = 90 * 24 * 3600;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === "--resolve-to") resolveToServer = rest[++i];
      else if (rest[i] === "--validity") certificateValiditySeconds = Number(rest[++i]);
      else usage();
    }
    if (!resolveToServer || !Number.isInteger(certificateValiditySeconds) || certificateValiditySeconds <= 0) usage();
    await ensureCloud();
    value = await callCloud("acmeCa", "start", { resolveToServer, certificateValiditySeconds });
  } else if (action === "stop" || action === "info") {
    value = await callCloud("acmeCa", action);
  } else if (action === "resolve" && rest.length === 1) {
    value = await callCloud("acmeCa", "resolve", rest[0]);
  } else {
    usage();
  }
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const command = args[0];
  if (command === "acme-ca") {
    await acmeCaCommand(args.slice(1));
    return;
  }
  let stack: string | undefined;
  let configFile: string | undefined;
  const replace: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === "--stack" || a === "-s") stack = args[++i];
    else if (a === "--replace") replace.push(args[++i] ?? usage());
    else if (a === "--config") configFile = args[++i];
    else usage();
  }
  if (command === "status") {
    const info = await cloudInfo();
    process.stdout.write(info ? `${JSON.stringify(info, null, 2)}\n` : "the local cloud is not running\n");
    return;
  }
  if (command === "down") {
    if (await cloudInfo()) {
      const pid = Number(readFileSync(join(LOCAL_RUN_DIR, "cloud.pid"), "utf8"));
      await callCloud("shutdown");
      // Down means gone: wait for the cloud to finish tearing its machines down.
      for (let i = 0; i < 600 && isLive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (isLive(pid)) throw new Error(`the local cloud (pid ${pid}) is still tearing down after 60 s; see ${join(LOCAL_RUN_DIR, "cloud.log")}, and run down again`);
    }
    rmSync(LOCAL_STATE_DIR, { recursive: true, force: true });
    process.stdout.write("local cloud stopped; local stack state removed\n");
    return;
  }
  if (!stack || !["up", "preview", "destroy"].includes(command ?? "")) usage();
  const file = configFile ?? join(PROJECT_ROOT, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new Error(`no stack config ${file}`);
  const config = configFromYaml(file);
  const prior = readStackFile(LOCAL_STATE_DIR, stack);
  // Secret config: from the environment (STATSPASSWORD for statsPassword...), else the value
  // this stack already has, else a new random one; kept sealed in the stack's state.
  const secretConfig: Record<string, string> = {};
  for (const name of secretNamesOf(config, PROJECT)) {
    secretConfig[name] = process.env[name.toUpperCase()] ?? prior.secretConfig[name] ?? randomBytes(18).toString("base64url");
  }
  const info = command === "destroy" ? ((await cloudInfo()) ?? (await ensureCloud())) : await ensureCloud();
  const started = Date.now();
  const result = await runEngine(
    {
      stack,
      config,
      secrets: Object.fromEntries(Object.entries(secretConfig).map(([k, v]) => [`${PROJECT}:${k}`, v])),
      secretConfig,
      stateDir: LOCAL_STATE_DIR,
      operatorNetns: info.operatorNetns,
      cloudId: info.cloudId,
      replace,
      preview: command === "preview",
      log: (line) => process.stdout.write(`${line}\n`),
    },
    command === "destroy" ? "destroy" : "up",
  );
  if (command === "up" && result.ok) {
    const shown = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, result.secretOutputs.includes(k) ? "[secret]" : v]));
    process.stdout.write(`\nOutputs:\n${JSON.stringify(shown, null, 2)}\n`);
    process.stdout.write(reachHint(stack, info, result.outputs));
  }
  const c = result.counts;
  process.stdout.write(`\n${command} of stack ${stack}: ${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to delete, ${c.same} unchanged (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  if (!result.ok) {
    process.stderr.write(`\nerror: ${command} of stack ${stack} failed:\n${result.errors.map((e) => `  ${e}`).join("\n")}\n`);
    process.exitCode = 1;
  }
}

// Ctrl-C and kill end the run through process.exit, so exit handlers (temp keys) still run;
// the state file already names everything created so far.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));

main().catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
