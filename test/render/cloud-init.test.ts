import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { loadTopology, readStackConfig, stackFile } from "../../scripts/stack-files";
import { planStack, validateStackConfig } from "../../topology";
import { renderCloudInit, USER_DATA_LIMIT } from "../../render/cloud-init";
import { renderStack } from "../../render/stack";
import { withSandbox } from "./validators/sandbox";

interface CloudConfig {
  package_update: boolean;
  packages: string[];
  write_files: { path: string; permissions: string; content: string }[];
  runcmd: (string | string[])[];
}

const text = renderCloudInit();
const doc = parse(text) as CloudConfig;

test("user data is a #cloud-config YAML document well under Hetzner's 32 KiB", () => {
  assert.ok(text.startsWith("#cloud-config\n"));
  assert.ok(Buffer.byteLength(text) < USER_DATA_LIMIT / 4, `${Buffer.byteLength(text)} bytes`);
  assert.equal(USER_DATA_LIMIT, 32768);
  assert.deepEqual(doc.packages, ["podman", "nftables"]);
  assert.equal(doc.package_update, true);
});

test("it lays out /srv/ingress with a root-only secrets directory and enables the firewall unit", () => {
  const cmds = doc.runcmd.map((c) => (Array.isArray(c) ? c.join(" ") : c));
  assert.ok(cmds.includes("install -d -m 0755 /srv/ingress /srv/ingress/releases /srv/ingress/routes /var/www/acme /etc/containers/systemd"));
  assert.ok(cmds.includes("install -d -m 0700 /srv/ingress/secrets"));
  assert.ok(cmds.includes("systemctl enable --now ingress-firewall.service"));
  const files = new Map(doc.write_files.map((f) => [f.path, f]));
  assert.deepEqual([...files.keys()], ["/etc/sysctl.d/90-ingress.conf", "/etc/apt/apt.conf.d/20auto-upgrades", "/etc/ssh/sshd_config.d/50-ingress.conf", "/etc/ingress/firewall.nft", "/etc/systemd/system/ingress-firewall.service"]);
  assert.match(files.get("/etc/ingress/firewall.nft")!.content, /^include "\/srv\/ingress\/current\/nftables\/\*\.nft"$/m);
  assert.match(files.get("/etc/systemd/system/ingress-firewall.service")!.content, /^ExecStart=\/usr\/sbin\/nft -f \/etc\/ingress\/firewall\.nft$/m);
});

test("no sysctl touches forwarding: host networking needs none", () => {
  const sysctl = doc.write_files.find((f) => f.path.startsWith("/etc/sysctl.d/"))!.content;
  const settings = sysctl.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  assert.deepEqual(settings, ["net.core.somaxconn = 4096"]);
  assert.ok(!/forward/.test(text.replace(/^\s*#.*$/gm, "")));
});

test("the firewall entry point loads even before the first deploy (a glob include matching nothing)", { skip: process.getuid?.() === 0 && existsSync("/usr/sbin/nft") ? false : "needs root and nft" }, () =>
  withSandbox(async (sb) => {
    const entry = doc.write_files.find((f) => f.path === "/etc/ingress/firewall.nft")!.content;
    const ns = await sb.namespace("ci");
    const r = await ns.exec(["nft", "-c", "-f", "-"], { input: entry, allowFailure: true });
    assert.equal(r.code, 0, r.stderr);
  }));

test("user data does not change with sites, ports or routes, and is the same for every server", () => {
  const raw = readStackConfig(stackFile("prod")) as { sites: { port: number; hostname: string }[] };
  const changed = structuredClone(raw);
  changed.sites[1]!.port = 8443;
  changed.sites.pop();
  const a = renderStack(planStack(loadTopology("prod")));
  const b = renderStack(planStack(validateStackConfig("prod", changed)));
  const userData = new Set([...a, ...b].map((h) => h.userData));
  assert.deepEqual([...userData], [text]);
});

test("security updates install themselves: the runcmd line run with apt-get, then with dnf, stand-ins recording the calls", () => {
  const line = doc.runcmd.find((c) => Array.isArray(c) && c[0] === "sh" && String(c[2]).includes("unattended-upgrades")) as string[] | undefined;
  assert.ok(line, "a runcmd line sets up security updates");
  const apt = doc.write_files.find((f) => f.path === "/etc/apt/apt.conf.d/20auto-upgrades");
  assert.equal(apt?.content, 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n');
  // The package managers are the edge: stand-ins on PATH log their arguments; sh runs the rest.
  const dir = mkdtempSync(join(tmpdir(), "updates-"));
  try {
    const standin = (name: string) => writeFileSync(join(dir, "bin", name), `#!/bin/sh\necho "${name} $*" >>${dir}/calls\n`, { mode: 0o755 });
    mkdirSync(join(dir, "bin"));
    const run = (pm: "apt-get" | "dnf") => {
      rmSync(join(dir, "calls"), { force: true });
      for (const n of ["apt-get", "dnf", "sed", "systemctl"]) rmSync(join(dir, "bin", n), { force: true });
      standin(pm);
      if (pm === "dnf") for (const n of ["sed", "systemctl"]) standin(n);
      const r = spawnSync("/bin/sh", ["-c", line[2]!], { env: { PATH: join(dir, "bin") }, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return readFileSync(join(dir, "calls"), "utf8").trimEnd().split("\n");
    };
    assert.deepEqual(run("apt-get"), ["apt-get install -y unattended-upgrades"]);
    assert.deepEqual(run("dnf"), [
      "dnf install -y dnf-automatic",
      "sed -i s/^upgrade_type *=.*/upgrade_type = security/ /etc/dnf/automatic.conf",
      "systemctl enable --now dnf-automatic-install.timer",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
