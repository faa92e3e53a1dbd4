import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { ContainerName, HostPlan, planStack, StackPlan } from "../../topology";
import { quoteSystemdArg, renderQuadletUnit } from "../../render/quadlet";

const plans: StackPlan[] = [
  planStack(loadTopology("prod")),
  planStack(loadTopology("demo")),
  planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples/Pulumi.standalone-demo.yaml"))),
];

/** The [Container] keys podman 4.4's Quadlet accepts (pkg/systemd/quadlet supportedContainerKeys, v4.4.0). */
const PODMAN_4_4_CONTAINER_KEYS = new Set([
  "ContainerName", "Image", "Environment", "EnvironmentFile", "EnvironmentHost", "Exec", "NoNewPrivileges",
  "DropCapability", "AddCapability", "ReadOnly", "RemapUsers", "RemapUid", "RemapGid", "RemapUidSize", "Notify",
  "ExposeHostPort", "PublishPort", "User", "Group", "Volume", "PodmanArgs", "Label", "Annotation", "RunInit",
  "VolatileTmp", "Timezone", "SeccompProfile", "AddDevice", "Network",
]);
/** systemd keys this project uses in the sections Quadlet passes through untouched. */
const SYSTEMD_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  Unit: new Set(["Description", "Documentation", "Wants", "Requires", "After", "Before", "Conflicts"]),
  Service: new Set(["Restart", "RestartSec", "TimeoutStartSec", "TimeoutStopSec", "ExecReload", "Type", "ExecStopPost", "Environment"]),
  Install: new Set(["WantedBy", "RequiredBy"]),
};
const BOOLEAN_KEYS = new Set(["NoNewPrivileges", "ReadOnly", "VolatileTmp", "RunInit", "Notify", "EnvironmentHost"]);
const SYSTEMD_BOOLEANS = new Set(["1", "yes", "true", "on", "0", "no", "false", "off"]);

type Ini = { section: string; entries: [string, string][] }[];

/** A unit-file reader strict enough to catch what systemd and Quadlet would reject or misread. */
function parseUnit(text: string): Ini {
  const out: Ini = [];
  text.split("\n").forEach((line, i) => {
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      out.push({ section: header[1]!, entries: [] });
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(kv, `line ${i + 1} is neither a section, a comment nor Key=Value: ${JSON.stringify(line)}`);
    assert.ok(out.length > 0, `line ${i + 1} comes before any section`);
    assert.ok(!line.endsWith("\\"), `line ${i + 1} continues onto the next line`);
    out.at(-1)!.entries.push([kv[1]!, kv[2]!]);
  });
  return out;
}

/** systemd's command-line splitting: whitespace outside quotes, "…" and '…' with backslash escapes. */
function splitCommand(text: string): string[] {
  const args: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\") {
      current = (current ?? "") + text[++i];
    } else if (quote) {
      if (ch === quote) quote = undefined;
      else current = (current ?? "") + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current = current ?? "";
    } else if (ch === " ") {
      if (current !== undefined) args.push(current);
      current = undefined;
    } else {
      current = (current ?? "") + ch;
    }
  }
  assert.equal(quote, undefined, `unterminated quote in ${text}`);
  if (current !== undefined) args.push(current);
  return args;
}

function all(ini: Ini, section: string, key: string): string[] {
  return ini.filter((s) => s.section === section).flatMap((s) => s.entries.filter(([k]) => k === key).map(([, v]) => v));
}

function one(ini: Ini, section: string, key: string): string | undefined {
  const values = all(ini, section, key);
  assert.ok(values.length <= 1, `[${section}] ${key} is set ${values.length} times`);
  return values[0];
}

const units = plans.flatMap((plan) => plan.hosts.flatMap((host) => host.containers.map((c) => ({ host, name: c.name }))));

const EXPECTED_CAPS: Readonly<Record<ContainerName, readonly string[]>> = {
  haproxy: ["CAP_NET_BIND_SERVICE"],
  proxy: ["CAP_NET_BIND_SERVICE"],
  // nginx's root master also needs these to start its workers as user nginx (see render/quadlet.ts).
  nginx: ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"],
  // The ACME client binds nothing and writes only root's own directories.
  acme: [],
};

test("every unit of prod, demo and the standalone example uses only keys podman 4.4 knows, each in its section", () => {
  assert.ok(units.length >= 7);
  for (const { host, name } of units) {
    const ini = parseUnit(renderQuadletUnit(host, name));
    const where = `${host.stack}/${host.name}/${name}.container`;
    // A job (the ACME client) is started by its timer, never at boot: no [Install].
    const job = host.containers.find((c) => c.name === name)?.job !== undefined;
    assert.deepEqual(ini.map((s) => s.section), job ? ["Unit", "Container", "Service"] : ["Unit", "Container", "Service", "Install"], where);
    for (const { section, entries } of ini) {
      const known = section === "Container" ? PODMAN_4_4_CONTAINER_KEYS : SYSTEMD_KEYS[section]!;
      for (const [key, value] of entries) {
        assert.ok(known.has(key), `${where}: [${section}] ${key} is not a key podman 4.4 / systemd accepts there`);
        if (BOOLEAN_KEYS.has(key)) assert.ok(SYSTEMD_BOOLEANS.has(value), `${where}: ${key}=${value} is not a boolean`);
      }
    }
  }
});

test("every unit runs its container with host networking, read-only mounts and the plan's command", () => {
  for (const { host, name } of units) {
    const c = host.containers.find((x) => x.name === name)!;
    const ini = parseUnit(renderQuadletUnit(host, name));
    const where = `${host.stack}/${host.name}/${name}`;
    assert.equal(one(ini, "Container", "ContainerName"), name, where);
    assert.equal(one(ini, "Container", "Image"), c.image, where);
    assert.match(c.image, /:[^/]+$|@sha256:[0-9a-f]{64}$/, `${where}: image pinned by tag or digest`);
    assert.equal(one(ini, "Container", "Network"), "host", where);
    // Read-only unless the plan says writable (the ACME job's own state and the challenge webroot).
    assert.deepEqual(all(ini, "Container", "Volume"), c.mounts.map((m) => `${m.host}:${m.container}${m.writable ? "" : ":ro"}`), where);
    assert.ok(c.mounts.every((m) => !m.writable || c.job !== undefined), `${where}: only a job writes to the host`);
    assert.deepEqual(splitCommand(one(ini, "Container", "Exec")!), [...c.command], where);
    assert.equal(one(ini, "Container", "EnvironmentFile"), c.envFile, where);
    assert.deepEqual(all(ini, "Container", "DropCapability"), ["ALL"], where);
    assert.deepEqual(all(ini, "Container", "AddCapability"), EXPECTED_CAPS[name], where);
    assert.equal(one(ini, "Container", "NoNewPrivileges"), "true", where);
    assert.equal(one(ini, "Container", "ReadOnly"), "true", where);
    assert.equal(one(ini, "Container", "VolatileTmp"), "true", where);
    if (c.job) {
      // A job runs to its end when its timer starts it, then hands its certificates to nginx.
      assert.equal(one(ini, "Service", "Type"), "oneshot", where);
      assert.equal(one(ini, "Service", "Restart"), undefined, where);
      assert.equal(one(ini, "Service", "ExecReload"), undefined, where);
      assert.match(one(ini, "Service", "ExecStopPost")!, /^-\/bin\/sh -c ".*\/bin\/bash \/srv\/ingress\/current\/apply\.sh --switch-certs.*"$/, where);
    } else {
      assert.equal(one(ini, "Service", "Type"), undefined, where);
      assert.equal(one(ini, "Service", "Restart"), "always", where);
      assert.equal(one(ini, "Service", "ExecReload"), `/usr/bin/podman kill --signal ${c.reloadSignal} ${name}`, where);
      assert.equal(one(ini, "Install", "WantedBy"), "multi-user.target", where);
    }
    assert.match(one(ini, "Unit", "After")!, /\bingress-firewall\.service\b/, where);
  }
});

test("the reload signal is USR2 for HAProxy's master-worker and HUP for nginx and the proxy", () => {
  const signal = (name: ContainerName) => units.find((u) => u.name === name)!;
  const reload = (u: { host: HostPlan; name: ContainerName }) => one(parseUnit(renderQuadletUnit(u.host, u.name)), "Service", "ExecReload");
  assert.equal(reload(signal("haproxy")), "/usr/bin/podman kill --signal USR2 haproxy");
  assert.equal(reload(signal("nginx")), "/usr/bin/podman kill --signal HUP nginx");
  assert.equal(reload(signal("proxy")), "/usr/bin/podman kill --signal HUP proxy");
});

test("the proxy runs as the node image's unprivileged user, numerically as podman 4.4 requires", () => {
  const u = units.find((x) => x.name === "proxy")!;
  const ini = parseUnit(renderQuadletUnit(u.host, u.name));
  assert.equal(one(ini, "Container", "User"), "1000");
  assert.equal(one(ini, "Container", "Group"), "1000");
});

test("nginx gets a tmpfs for its compiled-in temp paths; the acme job an empty one over the host's secrets; haproxy and the proxy none", () => {
  const expected: Readonly<Record<ContainerName, readonly string[]>> = { nginx: ["/var/cache/nginx"], acme: ["/srv/ingress/secrets"], haproxy: [], proxy: [] };
  for (const { host, name } of units) {
    const args = splitCommand(one(parseUnit(renderQuadletUnit(host, name)), "Container", "PodmanArgs")!);
    const tmpfs = args.filter((a) => a.startsWith("--tmpfs="));
    assert.deepEqual(tmpfs.map((a) => a.split("=")[1]!.split(":")[0]), expected[name], `${host.name}/${name}`);
    assert.ok(args.includes("--log-driver=journald"));
  }
});

test("on an SELinux host every bind mount is relabelled: :Z when one container mounts it, the shared :z when two do", () => {
  const seen = { private: 0, shared: 0 };
  for (const { host, name } of units) {
    const selinux = { ...host, selinux: true };
    const volumes = all(parseUnit(renderQuadletUnit(selinux, name)), "Container", "Volume");
    const c = host.containers.find((x) => x.name === name)!;
    assert.equal(volumes.length, c.mounts.length);
    c.mounts.forEach((m, i) => {
      // Each start of a container relabels a :Z tree for itself alone: a tree nginx and the acme
      // job both mount would be taken from whichever ran first.
      const shared = host.containers.filter((o) => o.mounts.some((x) => x.host === m.host)).length > 1;
      assert.equal(volumes[i], `${m.host}:${m.container}:${m.writable ? "" : "ro,"}${shared ? "z" : "Z"}`, `${host.name}/${name}`);
      seen[shared ? "shared" : "private"]++;
    });
  }
  assert.ok(seen.private > 0 && seen.shared > 0, JSON.stringify(seen));
});

test("arguments are quoted the way systemd splits them, and % or $ are refused", () => {
  assert.equal(quoteSystemdArg("/srv/ingress/current/haproxy/routes.d"), "/srv/ingress/current/haproxy/routes.d");
  assert.equal(quoteSystemdArg("daemon off;"), '"daemon off;"');
  assert.equal(quoteSystemdArg('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoteSystemdArg(""), '""');
  assert.deepEqual(splitCommand(["x", "daemon off;", 'a"b\\c', ""].map(quoteSystemdArg).join(" ")), ["x", "daemon off;", 'a"b\\c', ""]);
  assert.throws(() => quoteSystemdArg("100%"), /contains %/);
  assert.throws(() => quoteSystemdArg("$HOME"), /contains %, \$/);
});

// podman's own, or the one scripts/setup.sh takes from Debian 13's podman (Debian 12's predates Quadlet).
const QUADLET = ["/usr/libexec/podman/quadlet", join(__dirname, "..", "..", ".tools", "quadlet", "quadlet")].find((p) => existsSync(p));
test("Quadlet's own generator accepts every unit (-dryrun)", () => {
  assert.ok(QUADLET, "no Quadlet generator: run scripts/setup.sh, which installs one into .tools/quadlet/");
  const dir = mkdtempSync(join(tmpdir(), "quadlet-"));
  try {
    units.forEach(({ host, name }, i) => writeFileSync(join(dir, `u${i}-${name}.container`), renderQuadletUnit(host, name)));
    execFileSync(QUADLET, ["-dryrun"], { env: { ...process.env, QUADLET_UNIT_DIRS: dir }, stdio: "pipe" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every unit requires the host firewall unit: if the firewall failed, no PROXY listener opens", () => {
  for (const { host, name } of units) {
    const ini = parseUnit(renderQuadletUnit(host, name));
    assert.equal(one(ini, "Unit", "Requires"), "ingress-firewall.service", `${host.stack}/${host.name}/${name}`);
    assert.match(one(ini, "Unit", "After") ?? "", /\bingress-firewall\.service\b/);
  }
});
