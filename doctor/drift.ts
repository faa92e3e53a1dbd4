// Drift: what each host runs against what the stack renders now. DRIFT_SCRIPT lists, read-only,
// every file of the live release, every Quadlet unit, every top-level timer of systemd's unit
// directory, and which release each daemon last loaded (apply.sh's .loaded/ records);
// driftFindings names each file that differs, is missing or is extra, and each daemon that does
// not run the live release, with what an operator does about it. docs/doctor.md, "Drift". Pure.
import { createHash } from "node:crypto";
import { bundleHash, type RenderedHost } from "../render/stack";

export type DriftKind =
  /** Content differs from the rendering (or the path is not a regular file). */
  | "differs"
  | "missing"
  | "extra"
  /** Same content, another mode. */
  | "mode"
  /** The live release's files are not what apply.sh built: its content hash is not the one `.release` records. */
  | "release-modified"
  /** No live release (`current` missing or dangling). */
  | "no-release"
  /** A daemon last loaded another release than the live one. */
  | "daemon-not-live"
  /** apply.sh never recorded which release a daemon loaded. */
  | "daemon-unrecorded"
  /** The script's output was cut off: nothing can be judged. */
  | "incomplete";

export interface DriftFinding {
  readonly host: string;
  /** The on-host path: a file, `current`, or a daemon's record in .loaded/. */
  readonly path: string;
  readonly kind: DriftKind;
  readonly detail: string;
  /** What an operator does about it. */
  readonly fix: string;
}

// Each output line is a record of tab-separated fields; paths are canonical bundle paths (as in a
// MANIFEST: srv/ingress/current/X, etc/containers/systemd/U, etc/systemd/system/T) whatever
// INGRESS_ROOT, QUADLET_DIR and SYSTEMD_UNIT_DIR say (the tests set them; a host does not).
// Control characters in a name or value are printed as "?". Lines, in this order:
//
//   drift   1                                    format version
//   current <readlink of current>                empty when there is none
//   meta    <id|hash|role|source|fragment> <value>    the live release's .release
//   plan    <unit|job|map|timer> <fields>...     the live release's apply.plan records
//   file    <path> <mode as find %m> <sha256>    a regular file
//   other   <path> <find %y letter>              anything else that is not a directory
//   loaded  <unit> <release id>                  .loaded/<unit>, apply.sh's record
//   end                                          the output is complete
//
// It writes nothing (not even a temp file: no sort, no here-document, no redirect into a file),
// reads only regular files (a FIFO or device where a file should be is listed, never opened),
// follows no link but `current`, and reads nothing from stdin, so `bash -s` can feed it. Timers
// are listed whoever installed them (systemd's directory is shared): driftFindings reports as
// extra only one the live release installed (its .timers/ and `timer` records).
export const DRIFT_SCRIPT = `set -u
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
shopt -s nullglob
CLEAN=""
clean() { CLEAN=\${1//[[:cntrl:]]/?}; }

# One record per entry below $1 (not directories), named $2<path below $1>; the rest are find's tests.
list() {
  local dir=$1 prefix=$2 rec type mode path sum
  shift 2
  while IFS= read -r -d '' rec; do
    type=\${rec%% *}
    rec=\${rec#* }
    mode=\${rec%% *}
    path=\${rec#* }
    clean "$prefix$path"
    if [[ $type == f ]]; then
      if sum=$(sha256sum <"$dir/$path" 2>/dev/null); then sum=\${sum%% *}; else sum=unreadable; fi
      printf 'file\\t%s\\t%s\\t%s\\n' "$CLEAN" "$mode" "$sum"
    else
      printf 'other\\t%s\\t%s\\n' "$CLEAN" "$type"
    fi
  done < <(find -H "$dir" -mindepth 1 "$@" ! -type d -printf '%y %m %P\\0' 2>/dev/null)
}

drift_report() {
  local root=\${INGRESS_ROOT:-/srv/ingress} quadlet=\${QUADLET_DIR:-/etc/containers/systemd} systemd=\${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
  local target line key f name value
  printf 'drift\\t1\\n'
  target=$(readlink "$root/current" 2>/dev/null) || target=""
  clean "$target"
  printf 'current\\t%s\\n' "$CLEAN"
  if [[ -d $root/current/ ]]; then
    if [[ -f $root/current/.release && ! -L $root/current/.release ]]; then
      while IFS= read -r line || [[ -n $line ]]; do
        key=\${line%%=*}
        case $key in
          id | hash | role | source | fragment)
            clean "\${line#*=}"
            printf 'meta\\t%s\\t%s\\n' "$key" "$CLEAN"
            ;;
        esac
      done <"$root/current/.release"
    fi
    if [[ -f $root/current/apply.plan && ! -L $root/current/apply.plan ]]; then
      while IFS= read -r line || [[ -n $line ]]; do
        case $line in
          unit$'\\t'* | job$'\\t'* | map$'\\t'* | timer$'\\t'*) printf 'plan\\t%s\\n' "\${line//[![:print:]$'\\t']/?}" ;;
        esac
      done <"$root/current/apply.plan"
    fi
    list "$root/current" srv/ingress/current/
  fi
  list "$quadlet" etc/containers/systemd/ -maxdepth 1 -name '*.container'
  list "$systemd" etc/systemd/system/ -maxdepth 1 -name '*.timer'
  for f in "$root"/.loaded/*; do
    [[ -f $f && ! -L $f ]] || continue
    value=""
    IFS= read -r -n 128 value <"$f" || true
    clean "\${f##*/}"
    name=$CLEAN
    clean "$value"
    printf 'loaded\\t%s\\t%s\\n' "$name" "$CLEAN"
  done
  printf 'end\\n'
}

drift_report </dev/null
`;

const RELEASE = "srv/ingress/current/";
const QUADLET = "etc/containers/systemd/";
const SYSTEMD = "etc/systemd/system/";
const ROOT = "/srv/ingress";

type Entry = { readonly kind: "file"; readonly mode: string; readonly sha: string } | { readonly kind: "other"; readonly type: string };

interface HostState {
  readonly complete: boolean;
  /** The link's target; "" when there is no `current`. */
  readonly current: string;
  readonly meta: ReadonlyMap<string, string>;
  readonly fragments: readonly string[];
  readonly units: readonly { readonly name: string; readonly dir: string }[];
  readonly maps: readonly string[];
  readonly timers: readonly string[];
  /** Canonical path -> what is there. */
  readonly entries: ReadonlyMap<string, Entry>;
  readonly loaded: ReadonlyMap<string, string>;
}

function parseOutput(output: string): HostState {
  const meta = new Map<string, string>();
  const fragments: string[] = [];
  const units: { name: string; dir: string }[] = [];
  const maps: string[] = [];
  const timers: string[] = [];
  const entries = new Map<string, Entry>();
  const loaded = new Map<string, string>();
  let current = "";
  let header = false;
  let end = false;
  for (const line of output.split("\n")) {
    const f = line.split("\t");
    switch (f[0]) {
      case "drift":
        header = f[1] === "1";
        break;
      case "current":
        current = f[1] ?? "";
        break;
      case "meta":
        if (f[1] === "fragment") {
          // "<stack> <path>", as build_and_apply writes it.
          const path = (f[2] ?? "").split(" ")[1];
          if (path) fragments.push(path);
        } else if (f[1] !== undefined) meta.set(f[1], f[2] ?? "");
        break;
      case "plan":
        if (f[1] === "unit" && f[2]) units.push({ name: f[2], dir: f[3] ?? "" });
        if (f[1] === "map" && f[2]) maps.push(f[2]);
        if (f[1] === "timer" && f[2]) timers.push(f[2]);
        break;
      case "file":
        if (f[1] && f[2] && f[3]) entries.set(f[1], { kind: "file", mode: f[2], sha: f[3] });
        break;
      case "other":
        if (f[1]) entries.set(f[1], { kind: "other", type: f[2] ?? "?" });
        break;
      case "loaded":
        if (f[1]) loaded.set(f[1], f[2] ?? "");
        break;
      case "end":
        end = true;
        break;
    }
  }
  return { complete: header && end, current, meta, fragments, units, maps, timers, entries, loaded };
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** find's %m: octal without leading zeros. */
function findMode(mode: number): string {
  return mode.toString(8);
}

/**
 * apply.sh's tree_manifest hashed as build_and_apply hashes it (the `hash=` of .release): "<path>
 * <mode> <sha256>" per file below the release but .release, ordered as `sort` orders "<path>
 * <mode>" under LC_ALL=C (bytes), then sha256 of the lines.
 */
function treeHash(files: ReadonlyMap<string, { readonly mode: string; readonly sha: string }>): string {
  const lines = [...files].map(([path, f]) => ({ key: `${path} ${f.mode}`, sha: f.sha }));
  lines.sort((a, b) => Buffer.compare(Buffer.from(a.key, "utf8"), Buffer.from(b.key, "utf8")));
  return sha256(lines.map((l) => `${l.key} ${l.sha}\n`).join(""));
}

const TYPES: Readonly<Record<string, string>> = { l: "a symbolic link", p: "a FIFO", s: "a socket", c: "a character device", b: "a block device", D: "a door" };

function what(e: Entry): string {
  return e.kind === "file" ? `mode ${e.mode.padStart(4, "0")}, sha256 ${e.sha.slice(0, 12)}` : TYPES[e.type] ?? `a file of type ${e.type}`;
}

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Findings for one host: `expected` is the host as this checkout renders it
 * (renderHostBundles(plan, applyScript, programBundles(plan)) from components/deploy/host-bundles,
 * the bundle's files at their on-host paths), `hostOutput` what DRIFT_SCRIPT printed on it.
 */
export function driftFindings(expected: RenderedHost, hostOutput: string): DriftFinding[] {
  const host = expected.host;
  const state = parseOutput(hostOutput);
  const finding = (path: string, kind: DriftKind, detail: string, fix: string): DriftFinding => ({ host, path, kind, detail, fix });
  if (!state.complete) {
    return [finding(`${ROOT}/current`, "incomplete", "the drift script's output ended early (no end record): nothing was compared", "run the doctor again; if it persists, run the drift script by hand over ssh and read its error")];
  }
  const liveId = state.current.replace(/\/+$/, "").split("/").pop() ?? "";
  const hasRelease = state.entries.size > 0 && [...state.entries.keys()].some((p) => p.startsWith(RELEASE));
  if (state.current === "" || !hasRelease) {
    return [
      finding(
        `${ROOT}/current`,
        "no-release",
        state.current === "" ? "there is no live release (no current link)" : `current points at ${state.current}, which holds no release`,
        "pulumi up deploys the stack's release (a host without one has had no successful apply)",
      ),
    ];
  }

  // What the bundle installs, by canonical path: each unit and timer twice, as apply.sh keeps a
  // copy in the release (.units/, .timers/) besides the installed one.
  const want = new Map<string, { readonly mode: string; readonly sha: string }>();
  for (const f of expected.files) {
    const path = f.path.replace(/^\//, "");
    const e = { mode: findMode(f.mode), sha: sha256(f.content) };
    want.set(path, e);
    if (path.startsWith(QUADLET)) want.set(`${RELEASE}.units/${path.slice(QUADLET.length)}`, e);
    else if (path.startsWith(SYSTEMD)) want.set(`${RELEASE}.timers/${path.slice(SYSTEMD.length)}`, e);
    else if (!path.startsWith(RELEASE)) throw new Error(`${host}: ${f.path} is outside what apply.sh installs (${RELEASE}, ${QUADLET}, ${SYSTEMD})`);
  }

  // Files apply.sh writes into a release itself, never in a bundle: .release (the release's id,
  // hash, role, source and merged fragments: build_and_apply), each `map` record's output
  // (haproxy/routes.map: assemble_maps), and attached stacks' routes.d/<stack>.* (merge_fragments,
  // rendered on the LB from their routes.json; .release lists them as fragment=). Not extra, and
  // not compared with the rendering, which cannot know them; the release's hash covers them.
  const generated = new Set([`${RELEASE}.release`, ...state.maps.map((m) => RELEASE + m), ...state.fragments.map((f) => RELEASE + f)]);

  const releaseFiles = new Map<string, { mode: string; sha: string }>();
  for (const [path, e] of state.entries) if (path.startsWith(RELEASE) && path !== `${RELEASE}.release` && e.kind === "file") releaseFiles.set(path.slice(RELEASE.length), e);
  const recorded = state.meta.get("hash") ?? "";
  const now = treeHash(releaseFiles);
  const intact = recorded !== "" && now === recorded;
  // The release this rendering builds with the generated files the host has: equal to the
  // recorded hash, the live release was built from exactly this rendering.
  const rendered = new Map<string, { mode: string; sha: string }>();
  for (const [path, e] of want) if (path.startsWith(RELEASE)) rendered.set(path.slice(RELEASE.length), e);
  for (const path of generated) {
    const e = state.entries.get(path);
    if (path !== `${RELEASE}.release` && e?.kind === "file") rendered.set(path.slice(RELEASE.length), e);
  }
  const built = recorded !== "" && treeHash(rendered) === recorded;

  const role = state.meta.get("role") ?? (expected.files.some((f) => /\/current\/(haproxy\/haproxy\.cfg|proxy\/proxy\.json)$/.test(f.path)) ? "ingress" : "web");
  const incoming = `${ROOT}/incoming/${bundleHash(expected.files)}`;
  const rerun = `/bin/bash ${incoming}/apply.sh --bundle ${incoming} --role ${role}`;
  // Whatever reads a release file once it is put back: the daemon whose `unit` directory holds
  // it, or nft for a ruleset; apply.sh itself reads the rest at its next run.
  const reloadAfter = (rel: string): string => {
    const units = state.units.filter((u) => u.dir !== "" && rel.startsWith(`${u.dir}/`)).map((u) => `systemctl reload-or-restart ${u.name}.service`);
    if (rel.startsWith("nftables/")) units.push(`nft -f ${ROOT}/current/${rel}`);
    return units.map((u) => ` && ${u}`).join("");
  };
  // stage_bundle's mapping backwards: the release keeps units as .units/ and timers as .timers/.
  const bundlePath = (rel: string): string =>
    rel.startsWith(".units/") ? QUADLET + rel.slice(".units/".length) : rel.startsWith(".timers/") ? SYSTEMD + rel.slice(".timers/".length) : RELEASE + rel;
  const NOT_REPAIRED = `pulumi up does not repair this: its apply step runs only for a new bundle hash. Run the deployed bundle again on the host, which rebuilds a release changed on the host from what was deployed: \`${rerun}\`; or put back just this file`;

  const findings: DriftFinding[] = [];
  const releaseFix = (rel: string, kind: "differs" | "missing" | "extra" | "mode", e: { mode: string } | undefined): string => {
    const restore =
      kind === "extra"
        ? `rm ${shq(`${ROOT}/current/${rel}`)}${reloadAfter(rel)}`
        : kind === "mode"
          ? `chmod ${e?.mode.padStart(4, "0")} ${shq(`${ROOT}/current/${rel}`)}`
          : `install -m ${e?.mode.padStart(4, "0")} ${shq(`${incoming}/${bundlePath(rel)}`)} ${shq(`${ROOT}/current/${rel}`)}${reloadAfter(rel)}`;
    if (intact) return `pulumi up ${kind === "extra" ? "builds a release without it" : "deploys it"}: the stack renders a change this host has not received (the live release is as apply.sh built it)`;
    if (built) return `changed on the host after the deploy; ${NOT_REPAIRED}. Put back what the deploy installed, on the host: \`${restore}\``;
    // A new bundle builds a new release from scratch, so the hand change goes with the rest.
    return "pulumi up replaces the whole release: the stack renders a change this host has not received, and the live release was changed on the host as well (see release-modified)";
  };

  // The release, against the rendering.
  for (const [path, w] of want) {
    if (!path.startsWith(RELEASE)) continue;
    const rel = path.slice(RELEASE.length);
    const got = state.entries.get(path);
    const at = `${ROOT}/current/${rel}`;
    if (!got) findings.push(finding(at, "missing", `the stack renders ${rel} (mode ${w.mode.padStart(4, "0")}); the live release ${liveId} has no such file`, releaseFix(rel, "missing", w)));
    else if (got.kind === "other" || got.sha !== w.sha) findings.push(finding(at, "differs", `${what(got)} on the host; the stack renders mode ${w.mode.padStart(4, "0")}, sha256 ${w.sha.slice(0, 12)}`, releaseFix(rel, "differs", w)));
    else if (got.mode !== w.mode) findings.push(finding(at, "mode", `mode ${got.mode.padStart(4, "0")} on the host; the stack renders ${w.mode.padStart(4, "0")}`, releaseFix(rel, "mode", w)));
  }
  for (const [path, got] of state.entries) {
    if (!path.startsWith(RELEASE) || want.has(path) || generated.has(path)) continue;
    const rel = path.slice(RELEASE.length);
    findings.push(finding(`${ROOT}/current/${rel}`, "extra", `${what(got)}: in the live release ${liveId}, neither rendered by the stack nor written by apply.sh`, releaseFix(rel, "extra", undefined)));
  }
  if (!intact) {
    const made = [...generated].filter((p) => p !== `${RELEASE}.release`).map((p) => p.slice(RELEASE.length));
    let fix: string;
    if (findings.length > 0) fix = "see the files named for this host";
    else if (made.length === 0) fix = "every file is as the stack renders it, so the hash in .release was changed; put back the line hash=<its hash above>, or deploy a new bundle";
    else {
      // Nothing rendered differs, so what changed is a file apply.sh made: the same bundle, or the
      // same routes, make the same files again, whose hash is the recorded one: "unchanged".
      fix = `every file the stack renders is as rendered, so one apply.sh generates (${made.join(", ")}) was changed on the host. pulumi up does not repair it (its apply step runs only for a new bundle hash); running the deployed bundle again rebuilds the release, and the file with it: \`${rerun}\``;
    }
    findings.unshift(
      finding(
        `${ROOT}/current`,
        "release-modified",
        recorded === ""
          ? `the live release ${liveId} has no hash in .release: apply.sh did not finish it, or its .release was changed`
          : `the files of the live release ${liveId} changed after apply.sh built it: their hash is ${now}, .release recorded ${recorded}`,
        fix,
      ),
    );
  }

  // Quadlet units and timers, against the rendering. apply.sh installs them from the live
  // release's copies; when those are what the stack renders, the installed file was changed on
  // the host, and running the deployed bundle again installs it again: apply.sh calls a release
  // unchanged only while every unit and timer is installed as the release has it.
  const installed = (prefix: string, copyDir: string, noun: string, owned: (name: string) => boolean) => {
    const copyIsRendered = (path: string) => {
      const copy = state.entries.get(`${RELEASE}${copyDir}/${path.slice(prefix.length)}`);
      const w = want.get(path);
      return w !== undefined && copy?.kind === "file" && copy.sha === w.sha && copy.mode === w.mode;
    };
    const fixOf = (path: string, verb: string) =>
      copyIsRendered(path)
        ? `changed on the host after the deploy; pulumi up does not run its apply step again for the same bundle, but running the deployed bundle again repairs it: apply.sh finds the ${noun} not installed as the live release has it, builds the release again from the bundle and ${verb}. On the host: \`${rerun}\``
        : `pulumi up ${verb}: the stack renders a ${noun} this host has not received`;
    for (const [path, w] of want) {
      if (!path.startsWith(prefix)) continue;
      const got = state.entries.get(path);
      const at = `/${path}`;
      if (!got) findings.push(finding(at, "missing", `the stack renders ${path.slice(prefix.length)}; it is not installed`, fixOf(path, "installs it")));
      else if (got.kind === "other" || got.sha !== w.sha) findings.push(finding(at, "differs", `${what(got)} on the host; the stack renders mode ${w.mode.padStart(4, "0")}, sha256 ${w.sha.slice(0, 12)}`, fixOf(path, noun === "unit" ? "installs it with a restart" : "installs and enables it")));
      else if (got.mode !== w.mode) findings.push(finding(at, "mode", `mode ${got.mode.padStart(4, "0")} on the host; the stack renders ${w.mode.padStart(4, "0")}`, fixOf(path, "installs it")));
    }
    for (const [path, got] of state.entries) {
      if (!path.startsWith(prefix) || want.has(path)) continue;
      const name = path.slice(prefix.length).replace(/\.(container|timer)$/, "");
      const mine = owned(name);
      // A timer the release does not own is another package's: systemd's unit directory is shared.
      if (noun === "timer" && !mine) continue;
      findings.push(
        finding(
          `/${path}`,
          "extra",
          `${what(got)}: installed, but the stack renders no such ${noun}${mine ? ` (the live release ${liveId} still has it)` : ""}`,
          mine
            ? `pulumi up ${noun === "unit" ? "stops and removes it" : "disables and removes it"}: the stack dropped this ${noun}`
            : `no release of this stack installed it, and apply.sh never removes what it did not install. If nothing else needs it, on the host: \`systemctl stop ${name}.service && rm /${path} && systemctl daemon-reload\``,
        ),
      );
    }
  };
  installed(QUADLET, ".units", "unit", (name) => state.entries.has(`${RELEASE}.units/${name}.container`));
  installed(SYSTEMD, ".timers", "timer", (name) => state.timers.includes(name) || state.entries.has(`${RELEASE}.timers/${name}.timer`));

  // Daemons: apply.sh records in .loaded/<unit> the release `current` named when it last
  // restarted or reloaded the unit, or carried it to a release that left its files alone.
  for (const { name } of state.units) {
    const record = `${ROOT}/.loaded/${name}`;
    const settle = `systemctl reload-or-restart ${name}.service && printf '%s\\n' ${liveId} >${record}`;
    const loaded = state.loaded.get(name);
    if (loaded === undefined) {
      findings.push(
        finding(
          record,
          "daemon-unrecorded",
          `no record of which release ${name}.service loaded: apply.sh has not restarted or reloaded it since it began keeping one`,
          `the next deploy that changes its files records it. To settle it now (it reads its config through ${ROOT}/current, the live release), on the host: \`${settle}\``,
        ),
      );
    } else if (loaded !== liveId) {
      findings.push(
        finding(
          record,
          "daemon-not-live",
          `${name}.service last loaded release ${loaded || "(empty record)"} (apply.sh's record); the live release is ${liveId}: a deploy cut off between its swap and its reload, or a rollback whose reload failed`,
          `no deploy reloads it while its files do not change (apply.sh reloads a daemon when its files change, and calls the same bundle unchanged). Reload it onto the live release, which passed its checks when it was built, and record that, on the host: \`${settle}\``,
        ),
      );
    }
  }
  // The release's own finding first, then files by path (the release's, then units and timers), then daemons.
  const group = (f: DriftFinding): number => (f.kind === "release-modified" ? 0 : f.kind.startsWith("daemon-") ? 3 : f.path.startsWith(`${ROOT}/`) ? 1 : 2);
  return findings.sort((a, b) => group(a) - group(b) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
