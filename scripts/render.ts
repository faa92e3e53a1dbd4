// npm run render -- --stack <name> [--out DIR] [--config FILE] [--proxy-script FILE]
// npm run render -- --stack <name> --diff <git-ref> [--format text|md]   (scripts/render-diff.ts)
//
// Writes what each host of the stack receives, without Pulumi and without any secret, in the
// very layout the deploy uploads and files/apply.sh reads (render/host-bundle.ts):
//   <out>/<host>/<on-host path>...   every file at its path on the host (an overlay)
//   <out>/<host>/apply.sh, MANIFEST  the apply script and "<path> <mode> <sha256>" per file
//   <out>/<host>.user-data.yaml      cloud-init user data (goes through the Hetzner API)
//   <out>/_routes-for-<lb stack>/routes.json  for an attached stack: its routes, as data, for the
//                                    other stack's LB, which renders config from them itself
// So `bash <out>/<host>/apply.sh --bundle <out>/<host> --role web` on a host applies it by hand.
// All rendering is renderStack's; this file only reads the config and writes the result.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { planStack } from "../topology";
import { hostBundleFiles, renderStack, withApplyScript } from "../render";
import type { RenderedHost, UploadFile } from "../render";
import { programBundles } from "../components/program/program-files";
import { formatMarkdown, formatText, renderDiff } from "./render-diff";
import { loadTopology, stackFile } from "./stack-files";

const USAGE =
  "usage: npm run render -- --stack <name> [--out DIR] [--config Pulumi.<name>.yaml] [--proxy-script dist/proxy.js]\n" +
  "       npm run render -- --stack <name> --diff <git-ref> [--format text|md] [--config Pulumi.<name>.yaml]";

function writeTree(root: string, files: readonly UploadFile[]): void {
  rmSync(root, { recursive: true, force: true });
  for (const file of files) {
    const target = join(root, file.path);
    const rel = relative(root, target);
    if (isAbsolute(file.path) || rel.startsWith("..") || isAbsolute(rel)) throw new Error(`refusing to write ${file.path} outside ${root}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, file.mode);
  }
}

function writeHost(out: string, rendered: RenderedHost, applyScript: string): number {
  const routesOnly = rendered.userData === undefined;
  const files = routesOnly
    ? rendered.files.map((f) => ({ path: f.path.slice(f.path.lastIndexOf("/") + 1), mode: f.mode, content: f.content }))
    : hostBundleFiles(withApplyScript(rendered, applyScript));
  writeTree(join(out, rendered.host), files);
  if (rendered.userData !== undefined) writeFileSync(join(out, `${rendered.host}.user-data.yaml`), rendered.userData);
  return files.length;
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      out: { type: "string" },
      config: { type: "string" },
      "proxy-script": { type: "string" },
      diff: { type: "string" },
      format: { type: "string" },
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
  if (values.diff !== undefined) {
    const format = values.format ?? "text";
    if (format !== "text" && format !== "md") {
      console.error(`--format ${format}: use text or md`);
      return 2;
    }
    const repo = process.cwd();
    const config = values.config === undefined ? undefined : relative(repo, resolve(values.config));
    const changes = renderDiff({ repo, stack, ref: values.diff, config });
    process.stdout.write(format === "md" ? formatMarkdown(stack, values.diff, changes) : formatText(stack, values.diff, changes));
    return 0;
  }
  const configFile = resolve(values.config ?? stackFile(stack));
  const out = resolve(values.out ?? join("out", stack));
  const plan = planStack(loadTopology(stack, configFile));

  if (plan.attach) console.log(`routes go to the LB of ${plan.attach.stack} as data; that LB renders them with its own settings`);
  // What the program ships: the built scripts of this checkout, or a given proxy script.
  const programs = programBundles(plan);
  const proxyScript = values["proxy-script"] === undefined ? programs.proxyScript : readFileSync(values["proxy-script"], "utf8");
  const hosts = renderStack(plan, { ...programs, ...(proxyScript !== undefined ? { proxyScript } : {}) });

  const applyScript = readFileSync(join(__dirname, "..", "files", "apply.sh"), "utf8");
  for (const rendered of hosts) {
    const count = writeHost(out, rendered, applyScript);
    console.log(`${join(out, rendered.host)}: ${count} files`);
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
