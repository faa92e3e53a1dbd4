/** Command line: `proxy --config FILE [--routes-dir DIR] [--stats-socket PATH] [--check]`. */
export type CliCommand =
  | { readonly kind: "run" | "check"; readonly configPath: string; readonly routesDir?: string; readonly statsSocket?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage-error"; readonly message: string };

export const USAGE = [
  "usage: node proxy.js --config FILE [--routes-dir DIR] [--stats-socket PATH] [--check]",
  "  --routes-dir DIR  merge every DIR/*.json routes file ({kind: \"proxy-routes\", stack, routes, backends}) into the config",
  "  --stats-socket PATH  also serve the stats pages on this unix socket (mode 0600, no auth), like HAProxy's admin socket",
  "  --check           validate the config (and routes files) and exit (0 valid, 1 invalid)",
].join("\n");

export function parseArgs(argv: readonly string[]): CliCommand {
  let configPath: string | null = null;
  let routesDir: string | null = null;
  let statsSocket: string | null = null;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    else if (arg === "--check") check = true;
    else if (arg === "--config" || arg === "--routes-dir" || arg === "--stats-socket") {
      const value = argv[++i];
      if (value === undefined) return { kind: "usage-error", message: `${arg} needs a ${arg === "--routes-dir" ? "directory" : "file"} path` };
      if (arg === "--config") configPath = value;
      else if (arg === "--routes-dir") routesDir = value;
      else statsSocket = value;
    } else if (arg.startsWith("--stats-socket=")) statsSocket = arg.slice("--stats-socket=".length); else if (arg.startsWith("--config=")) configPath = arg.slice("--config=".length);
    else if (arg.startsWith("--routes-dir=")) routesDir = arg.slice("--routes-dir=".length);
    else return { kind: "usage-error", message: `unknown argument: ${arg}` };
  }
  if (configPath === null) return { kind: "usage-error", message: "--config FILE is required" };
  if (configPath === "" || routesDir === "" || statsSocket === "") return { kind: "usage-error", message: "--config, --routes-dir and --stats-socket need a non-empty path" };
  return { kind: check ? "check" : "run", configPath, ...(routesDir !== null ? { routesDir } : {}), ...(statsSocket !== null ? { statsSocket } : {}) };
}
