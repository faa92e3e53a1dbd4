// npm run render -- --stack <name> [--out DIR] [--config FILE] [--proxy-bundle FILE]
//
// Writes what each host of the stack receives, without Pulumi and without any secret:
//   <out>/<host>/<on-host path>...   every file at its path on the host (an overlay)
//   <out>/<host>/MANIFEST.json       path, mode and sha256 of each file, and the bundle hash
//   <out>/<host>/user-data.yaml      cloud-init user data (goes through the Hetzner API)
//   <out>/_routes-for-<lb stack>/... for an attached stack: its routes on the other stack's LB
// All rendering is renderStack's; this file only reads the config and writes the result.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { planStack } from "../topology";
import { lbSettingsOf, renderManifest, renderStack, stackOfReference } from "../render";
import type { LbSettings, RenderedHost } from "../render";
import { loadTopology, stackFile } from "./stack-files";

const USAGE = "usage: npm run render -- --stack <name> [--out DIR] [--config Pulumi.<name>.yaml] [--proxy-bundle dist/proxy.js]";

function attachedLb(configFile: string, reference: string): { settings: LbSettings; from: string } {
  const owner = stackOfReference(reference);
  const file = join(dirname(configFile), `Pulumi.${owner}.yaml`);
  if (!existsSync(file)) return { settings: lbSettingsOf(undefined), from: `defaults (no ${file})` };
  return { settings: lbSettingsOf(loadTopology(owner, file)), from: file };
}

function writeHost(out: string, rendered: RenderedHost): void {
  const root = join(out, rendered.host);
  rmSync(root, { recursive: true, force: true });
  for (const file of rendered.files) {
    const target = join(root, file.path);
    const rel = relative(root, target);
    if (!isAbsolute(file.path) || rel.startsWith("..") || isAbsolute(rel)) throw new Error(`refusing to write ${file.path} outside ${root}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, file.mode);
  }
  writeFileSync(join(root, "MANIFEST.json"), renderManifest(rendered));
  if (rendered.userData !== undefined) writeFileSync(join(root, "user-data.yaml"), rendered.userData);
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      out: { type: "string" },
      config: { type: "string" },
      "proxy-bundle": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.stack) {
    console.error(USAGE);
    return 2;
  }
  const stack = values.stack;
  const configFile = resolve(values.config ?? stackFile(stack));
  const out = resolve(values.out ?? join("out", stack));
  const plan = planStack(loadTopology(stack, configFile));

  let lb: LbSettings | undefined;
  if (plan.attach) {
    const found = attachedLb(configFile, plan.attach.stack);
    lb = found.settings;
    console.log(`routes go to the LB of ${plan.attach.stack}: engine ${lb.engine}, settings from ${found.from}`);
  }
  const proxyBundle = values["proxy-bundle"] === undefined ? undefined : readFileSync(values["proxy-bundle"], "utf8");
  const hosts = renderStack(plan, { ...(lb ? { attachedLb: lb } : {}), ...(proxyBundle !== undefined ? { proxyBundle } : {}) });

  for (const rendered of hosts) {
    writeHost(out, rendered);
    console.log(`${join(out, rendered.host)}: ${rendered.files.length} files`);
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
