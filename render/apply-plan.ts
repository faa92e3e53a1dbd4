// apply.plan: what the on-host apply does with a release, from the plan, so files/apply.sh
// executes records instead of reading facts back out of haproxy, nginx or Quadlet text.
// One record per line, fields separated by a tab (a field never holds a tab or a line break):
//
//   unit   <name> <dir>                  the Quadlet unit <name>.container; a change of the
//                                        release's <dir>/ reloads it, a change of the unit
//                                        file restarts it
//   job    <name> <dir>                  the Quadlet unit <name>.container is a oneshot job:
//                                        never restarted, reloaded or probed; started without
//                                        waiting once the release is committed, when its unit
//                                        file or <dir>/ changed (or on the first release)
//   timer  <name>                        <name>.timer (etc/systemd/system/ in the bundle) is
//                                        installed and enabled once the release is committed
//   check  <name> <file> <argv>...       checks <name>'s config (<file>, named in messages)
//                                        before the release goes live; in each argv word
//                                        "{dir}" is the root of the release being checked,
//                                        and a word "{env:<path>}" is a copy of that env file
//                                        with placeholder values (no checker sees a secret)
//   probe  <address> <port> <daemon> <purpose>   a TCP connect after the reload
//   nft    <file> <table>                 an nftables file to check and load, and the inet
//                                        table it defines (which must then be loaded)
//   map    <output> <dir>                 <output> = every <dir>/*.map, in name order
//   volume <path>                         a host directory a unit binds: created (empty) when
//                                        missing, since podman refuses a bind whose source
//                                        does not exist (a fresh server has no /etc/letsencrypt)
//
// Files are relative to the release root. Pure: no I/O.
import * as paths from "../topology/paths";
import type { ContainerPlan, HostPlan } from "../topology";
import { NFT_TABLE } from "./nftables";
import { containerUser } from "./quadlet";

/** The podman command apply.sh checks a config with: the unit's image, mounts, env and user, no network. */
function checkArgv(host: HostPlan, c: ContainerPlan): string[] {
  const inRelease = (arg: string) => (arg === paths.CURRENT || arg.startsWith(`${paths.CURRENT}/`) ? `{dir}${arg.slice(paths.CURRENT.length)}` : arg);
  const user = containerUser(c.name);
  return [
    "podman", "run", "--rm", "--network", "none",
    // label=disable, not :Z: relabelling a shared mount for a throwaway container would take it
    // away from the running service on SELinux hosts.
    "--security-opt", "label=disable",
    ...(user ? ["--user", user] : []),
    ...c.mounts.flatMap((m) => ["-v", `${m.host}:${m.container}:ro`]),
    ...(c.envFile !== undefined ? ["--env-file", `{env:${c.envFile}}`] : []),
    ...(c.entrypoint !== undefined ? ["--entrypoint", c.entrypoint] : []),
    c.image,
    ...c.check.map(inRelease),
  ];
}

function relative(path: string): string {
  if (!path.startsWith(`${paths.CURRENT}/`)) throw new Error(`${path} is not in the release`);
  return path.slice(paths.CURRENT.length + 1);
}

function record(...fields: readonly (string | number)[]): string {
  for (const f of fields) {
    if (/[\t\n\r]/.test(String(f)) || String(f) === "") throw new Error(`apply.plan field ${JSON.stringify(f)} is empty or holds a tab or line break`);
  }
  return fields.join("\t");
}

export function renderApplyPlan(host: HostPlan): string {
  const lines = [`# apply.plan for ${host.name} (stack ${host.stack}), generated from the plan; files/apply.sh executes it.`];
  for (const c of host.containers) {
    const config = relative(c.config);
    lines.push(record(c.job ? "job" : "unit", c.name, config.slice(0, config.indexOf("/"))), record("check", c.name, config, ...checkArgv(host, c)));
  }
  for (const c of host.containers) if (c.job) lines.push(record("timer", c.job.timer));
  // A listener on the wildcard address answers on loopback; one bound to a private address (the
  // metrics endpoint) only there. A web server without sites listens nowhere yet: nothing to probe.
  for (const l of host.listens.filter((x) => x.by !== "sshd")) lines.push(record("probe", l.address ?? "127.0.0.1", l.port, l.by, l.purpose));
  for (const f of host.files.filter((x) => x.kind === "nftables")) lines.push(record("nft", relative(f.path), NFT_TABLE));
  const volumes = [...new Set(host.containers.flatMap((c) => c.mounts.map((m) => m.host)))].sort();
  for (const v of volumes) lines.push(record("volume", v));
  if (host.ingress?.engine === "haproxy") lines.push(record("map", relative(paths.HAPROXY_ROUTES_MAP), relative(paths.HAPROXY_ROUTES_D)));
  return lines.join("\n") + "\n";
}
