// listeners: the TCP ports the release's own daemons listen on, from the plan (not parsed
// back out of their configs), as "<address> <port> <daemon> <purpose>" lines. apply.sh probes
// each after a reload and rolls back when one does not answer. Every listener of this project
// binds the wildcard address, which answers on loopback. Pure: no I/O.
import type { HostPlan } from "../topology";

export function renderListeners(host: HostPlan): string {
  // A web server without sites listens nowhere yet: an empty list, nothing to probe.
  const own = host.listens.filter((l) => l.by !== "sshd");
  return [
    "# <address> <port> <daemon> <purpose>: apply.sh's health probe connects to each.",
    ...own.map((l) => `127.0.0.1 ${l.port} ${l.by} ${l.purpose}`),
    "",
  ].join("\n");
}
