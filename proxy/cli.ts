/** Command line: `proxy --config FILE [--check]`. */
export type CliCommand = { readonly kind: "run" | "check"; readonly configPath: string } | { readonly kind: "help" } | { readonly kind: "usage-error"; readonly message: string };

export const USAGE = "usage: node proxy.js --config FILE [--check]\n  --check  validate the config and exit (0 valid, 1 invalid)";

export function parseArgs(argv: readonly string[]): CliCommand {
  let configPath: string | null = null;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    else if (arg === "--check") check = true;
    else if (arg === "--config") {
      const value = argv[++i];
      if (value === undefined) return { kind: "usage-error", message: "--config needs a file path" };
      configPath = value;
    } else if (arg.startsWith("--config=")) configPath = arg.slice("--config=".length);
    else return { kind: "usage-error", message: `unknown argument: ${arg}` };
  }
  if (configPath === null) return { kind: "usage-error", message: "--config FILE is required" };
  return { kind: check ? "check" : "run", configPath };
}
