// On the LB, inside a container with no network and read-only mounts: turns the routes that
// attached stacks pushed (routes/<stack>/routes.json) into the config files of the engine the
// LB runs, with the owner's policy and renderer (render/attached-routes.ts). apply.sh runs it
// and installs what it prints; nothing here writes a file.
//
//   node render-routes.js --policy attached/policy.json --routes /srv/ingress/routes [--newcomer STACK]
//
// stdout: one line per file, "<release-relative path>\t<base64 content>".
// stderr: one line per reason a stack is left out, "stack <name>: <reason>".
// Exit 0: done (stacks may have been left out); 1: the newcomer was refused; 2: usage or policy error.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { renderAttachedStacks, type PushedRoutes } from "../render/attached-routes";
import { routesPolicySchema } from "../topology/attached-routes";
import { ROUTES_DATA_FILE } from "../topology/paths";
import { STACK_NAME } from "../topology/schema";

/** A routes.json larger than this is refused unread (apply.sh caps what it accepts the same way). */
const MAX_BYTES = 1024 * 1024;

function usage(message: string): never {
  process.stderr.write(`render-routes: ${message}\n`);
  process.exit(2);
}

function argsOf(argv: readonly string[]): { policy: string; routes: string; newcomer?: string } {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (!["--policy", "--routes", "--newcomer"].includes(flag) || value === undefined) usage(`unexpected argument ${flag}`);
    out[flag.slice(2)] = value;
  }
  if (!out.policy || !out.routes) usage("--policy FILE and --routes DIR are required");
  return { policy: out.policy, routes: out.routes, ...(out.newcomer ? { newcomer: out.newcomer } : {}) };
}

/** Reading errors become the data's refusal, naming the file and the fix. */
function pushedOf(dir: string, stack: string): PushedRoutes | { stack: string; error: string } {
  const file = join(dir, stack, ROUTES_DATA_FILE);
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { stack, error: `it has no ${ROUTES_DATA_FILE} (routes pushed by an older version); run \`pulumi up\` on stack ${stack}` };
  }
  if (size > MAX_BYTES) return { stack, error: `${ROUTES_DATA_FILE} is ${size} bytes, more than ${MAX_BYTES}` };
  try {
    return { stack, data: JSON.parse(readFileSync(file, "utf8")) as unknown };
  } catch (e) {
    return { stack, error: `${ROUTES_DATA_FILE} is not JSON: ${(e as Error).message.slice(0, 200)}` };
  }
}

function main(): void {
  // Anything unforeseen is a failure of the LB's own files, never a refusal of the newcomer.
  process.on("uncaughtException", (e) => usage(`internal error: ${e.message}`));
  const args = argsOf(process.argv.slice(2));
  let policyJson: unknown;
  try {
    policyJson = JSON.parse(readFileSync(args.policy, "utf8"));
  } catch (e) {
    usage(`cannot read the policy ${args.policy}: ${(e as Error).message}`);
  }
  const policy = routesPolicySchema.safeParse(policyJson);
  if (!policy.success) usage(`policy ${args.policy} is not valid: ${policy.error.message}`);

  const stacks = readdirSync(args.routes, { withFileTypes: true })
    .filter((d) => d.isDirectory() && STACK_NAME.test(d.name))
    .map((d) => d.name);
  const unreadable: { stack: string; error: string }[] = [];
  const pushed: PushedRoutes[] = [];
  for (const stack of stacks) {
    const p = pushedOf(args.routes, stack);
    if ("error" in p) unreadable.push(p);
    else pushed.push(p);
  }
  const result = renderAttachedStacks(policy.data, pushed, args.newcomer);
  for (const f of result.files) process.stdout.write(`${f.path}\t${Buffer.from(f.content).toString("base64")}\n`);
  const refused = [...unreadable.map((u) => ({ stack: u.stack, errors: [u.error] })), ...result.refused];
  // One line per reason, whatever a pushed value held: nothing it sends can forge a log line.
  // eslint-disable-next-line no-control-regex
  const oneLine = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  for (const r of refused) for (const e of r.errors) process.stderr.write(`stack ${r.stack}: ${oneLine(e)}\n`);
  process.exitCode = refused.some((r) => r.stack === args.newcomer) ? 1 : 0;
}

main();
