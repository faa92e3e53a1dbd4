// Pure readers of the files a Hetzner server's systemd would read: unit files and Quadlet
// `.container` files (INI sections, repeated keys; the podman run a unit stands for, in the
// foreground for a oneshot), systemd's command-line quoting and time spans, and podman run's
// options. The machine stand-ins (tools.ts) run what these describe. No I/O.

export type UnitFile = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

/** Sections of a systemd-style INI file; each key keeps every value it was given, in order. */
export function parseUnitFile(text: string): UnitFile {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]!) ?? new Map<string, string[]>();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || current === undefined) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    current.set(key, [...(current.get(key) ?? []), value]);
  }
  return sections;
}

export function unitValues(unit: UnitFile, section: string, key: string): readonly string[] {
  return unit.get(section)?.get(key) ?? [];
}

export function unitValue(unit: UnitFile, section: string, key: string): string | undefined {
  return unitValues(unit, section, key).at(-1);
}

/** Splits a command line as systemd does for Exec*= and Quadlet Exec=: whitespace, "..." and '...', backslash escapes. */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (inWord) words.push(word);
  return words;
}

/** systemd's prefixes on Exec lines ("-" ignore failure, "@", "+", "!", ":"): the flags and the rest. */
export function execLine(value: string): { readonly ignoreFailure: boolean; readonly argv: string[] } {
  const m = /^([-@+!:]*)(.*)$/.exec(value)!;
  return { ignoreFailure: m[1]!.includes("-"), argv: splitCommandLine(m[2]!) };
}

/** A unit whose start runs its command to completion: systemd's `Type=oneshot`. */
export function isOneshot(unit: UnitFile): boolean {
  return unitValue(unit, "Service", "Type") === "oneshot";
}

const SPAN_UNITS: Readonly<Record<string, number>> = {
  us: 0.001, usec: 0.001, ms: 1, msec: 1, s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000, w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

/** A systemd time span ("1800", "30min", "1h 30s") in ms; undefined for "infinity" (no limit). */
export function timeSpanMs(value: string): number | undefined {
  const text = value.trim();
  if (text === "infinity") return undefined;
  // A bare number is seconds, as systemd reads the *Sec= settings.
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy)];
  const read = parts.map((p) => p[0]).join("");
  if (text === "" || read !== text || parts.some((p) => SPAN_UNITS[p[2]!] === undefined)) throw new Error(`time span ${value} is not one the local machine reads`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * SPAN_UNITS[p[2]!]!, 0);
}

/**
 * The `podman run` a Quadlet `.container` file stands for, in the options this project's
 * units use (docs/local-engine.md lists them). Unknown [Container] keys are refused, so a new
 * key in a rendered unit is noticed here rather than silently dropped. As Quadlet does, a
 * `Type=oneshot` unit runs podman in the foreground (no `-d`): its start is the container's
 * whole run; any other type gets a detached container.
 */
export function podmanRunArgs(unitName: string, unit: UnitFile): string[] {
  const known = new Set([
    "ContainerName", "Image", "Network", "Volume", "EnvironmentFile", "Exec", "PodmanArgs",
    "DropCapability", "AddCapability", "NoNewPrivileges", "ReadOnly", "VolatileTmp", "Environment", "Tmpfs", "User", "Group",
  ]);
  const container = unit.get("Container");
  if (!container) throw new Error(`${unitName}.container has no [Container] section`);
  for (const key of container.keys()) if (!known.has(key)) throw new Error(`${unitName}.container: key ${key} is not modelled by the local machine`);
  const image = unitValue(unit, "Container", "Image");
  if (!image) throw new Error(`${unitName}.container has no Image=`);
  const args = ["run", "--name", containerNameOf(unitName, unit), ...(isOneshot(unit) ? [] : ["-d"]), "--replace", "--rm"];
  const network = unitValue(unit, "Container", "Network");
  if (network) args.push("--network", network);
  for (const v of unitValues(unit, "Container", "Volume")) args.push("-v", v);
  for (const f of unitValues(unit, "Container", "EnvironmentFile")) args.push("--env-file", f);
  for (const e of unitValues(unit, "Container", "Environment")) args.push("-e", e);
  for (const t of unitValues(unit, "Container", "Tmpfs")) args.push("--tmpfs", t);
  if (unitValue(unit, "Container", "ReadOnly") === "true") args.push("--read-only");
  const user = unitValue(unit, "Container", "User");
  if (user) args.push("--user", `${user}${unitValue(unit, "Container", "Group") ? `:${unitValue(unit, "Container", "Group")}` : ""}`);
  for (const cap of unitValues(unit, "Container", "AddCapability")) args.push("--cap-add", cap);
  for (const p of unitValues(unit, "Container", "PodmanArgs")) args.push(...splitCommandLine(p));
  args.push(image);
  const exec = unitValue(unit, "Container", "Exec");
  if (exec) args.push(...splitCommandLine(exec));
  return args;
}

/** The container a Quadlet unit runs: ContainerName=, else Quadlet's `systemd-<unit>`. */
export function containerNameOf(unitName: string, unit: UnitFile): string {
  return unitValue(unit, "Container", "ContainerName") ?? `systemd-${unitName}`;
}

export interface PodmanRun {
  readonly name: string | undefined;
  readonly detach: boolean;
  readonly replace: boolean;
  readonly network: string | undefined;
  readonly volumes: readonly { readonly source: string; readonly target: string; readonly readOnly: boolean }[];
  readonly envFiles: readonly string[];
  readonly env: readonly string[];
  readonly tmpfs: readonly { readonly target: string; readonly options: string }[];
  /** uid[:gid], numeric. */
  readonly user: string | undefined;
  readonly capAdd: readonly string[];
  /** The program that runs, given the command as its arguments (podman's entrypoint + command). */
  readonly entrypoint: string | undefined;
  readonly image: string;
  readonly command: readonly string[];
}

const WITH_VALUE = new Set(["--name", "--network", "--net", "--security-opt", "-v", "--volume", "--env-file", "-e", "--env", "--tmpfs", "--log-driver", "--cap-drop", "--cap-add", "--cidfile", "--cgroups", "--sdnotify", "--user", "-u", "--pull", "--entrypoint"]);
const FLAGS = new Set(["--rm", "-d", "--detach", "--replace", "--read-only", "--no-new-privileges", "-i", "--interactive"]);

/** `podman run` options as this project's units and checks give them. */
export function parsePodmanRun(argv: readonly string[]): PodmanRun {
  let name: string | undefined;
  let detach = false;
  let replace = false;
  let network: string | undefined;
  const volumes: { source: string; target: string; readOnly: boolean }[] = [];
  const envFiles: string[] = [];
  const env: string[] = [];
  const tmpfs: { target: string; options: string }[] = [];
  let user: string | undefined;
  const capAdd: string[] = [];
  let entrypoint: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-")) break;
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (FLAGS.has(flag)) {
      if (flag === "-d" || flag === "--detach") detach = true;
      if (flag === "--replace") replace = true;
      continue;
    }
    if (!WITH_VALUE.has(flag)) throw new Error(`podman run: option ${flag} is not modelled by the local machine`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`podman run: ${flag} needs a value`);
    switch (flag) {
      case "--name":
        name = value;
        break;
      case "--network":
      case "--net":
        network = value;
        break;
      case "-v":
      case "--volume": {
        const [source, target, opts] = value.split(":");
        if (!source || !target) throw new Error(`podman run: volume ${value} is not SOURCE:TARGET[:OPTIONS]`);
        volumes.push({ source, target, readOnly: (opts ?? "").split(",").includes("ro") });
        break;
      }
      case "--env-file":
        envFiles.push(value);
        break;
      case "--user":
      case "-u":
        if (!/^\d+(:\d+)?$/.test(value)) throw new Error(`podman run: --user ${value}: the local machine takes a numeric uid[:gid]`);
        user = value;
        break;
      case "--cap-add":
        capAdd.push(value);
        break;
      case "--entrypoint":
        // podman also reads a JSON array here (a program and its first arguments); no unit uses it.
        if (value.startsWith("[")) throw new Error(`podman run: --entrypoint ${value}: the JSON form is not modelled by the local machine`);
        // An empty entrypoint clears the image's: the command runs by itself.
        entrypoint = value === "" ? undefined : value;
        break;
      case "-e":
      case "--env":
        env.push(value);
        break;
      case "--tmpfs": {
        const colon = value.indexOf(":");
        tmpfs.push(colon < 0 ? { target: value, options: "rw,nosuid,nodev" } : { target: value.slice(0, colon), options: value.slice(colon + 1) });
        break;
      }
      default:
        break;
    }
  }
  const image = argv[i];
  if (image === undefined) throw new Error("podman run: no image");
  return { name, detach, replace, network, volumes, envFiles, env, tmpfs, user, capAdd, entrypoint, image, command: argv.slice(i + 1) };
}
