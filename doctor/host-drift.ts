// Per host of the named stacks: what the stack renders now (the bundle `pulumi up` would push,
// built as index.ts builds it) against what the host runs (doctor/drift.ts's script over SSH).
import { renderHostBundles } from "../components/deploy/host-bundles";
import { programBundles, readApplyScript } from "../components/program/program-files";
import { DRIFT_SCRIPT, driftFindings, type DriftFinding } from "./drift";
import { runProbe } from "./remote";
import type { StackTarget } from "./targets";

export interface HostDriftReport {
  readonly host: string;
  readonly stack: string;
  /** Why the host could not be compared (no key, ssh failed). */
  readonly error?: string;
  readonly findings: readonly DriftFinding[];
  /** Said, but not drift: a daemon with no record yet of the release it loaded (a host deployed before the record existed). */
  readonly notes: readonly DriftFinding[];
}

const NOTE_KINDS: ReadonlySet<DriftFinding["kind"]> = new Set(["daemon-unrecorded"]);

/** `only`: the hosts to compare (a --site run compares its server's only). */
export async function hostDrift(targets: readonly StackTarget[], only?: ReadonlySet<string>): Promise<HostDriftReport[]> {
  const applyScript = readApplyScript();
  const jobs: Promise<HostDriftReport>[] = [];
  for (const t of targets) {
    const rendered = renderHostBundles(t.plan, applyScript, programBundles(t.plan));
    for (const r of rendered) {
      if (only !== undefined && !only.has(r.host)) continue;
      const ip = r.host === t.plan.hosts.find((h) => h.role === "ingress")?.name ? (t.lbIpv4 ?? t.hostIps.get(r.host)) : t.hostIps.get(r.host);
      if (!ip || !t.privateKey) {
        jobs.push(Promise.resolve({ host: r.host, stack: t.stack, error: `no address or deploy key for ${r.host} in stack ${t.stack}'s state`, findings: [], notes: [] }));
        continue;
      }
      const isLb = t.plan.hosts.find((h) => h.name === r.host)?.role === "ingress";
      jobs.push(
        runProbe({ ip, privateKey: t.privateKey, ...(isLb && t.lbHostKey ? { hostKey: t.lbHostKey } : {}) }, DRIFT_SCRIPT).then((out): HostDriftReport => {
          if (!out.ok) return { host: r.host, stack: t.stack, error: `ssh: ${out.error ?? "failed"}`, findings: [], notes: [] };
          const all = driftFindings(r, out.stdout);
          return { host: r.host, stack: t.stack, findings: all.filter((f) => !NOTE_KINDS.has(f.kind)), notes: all.filter((f) => NOTE_KINDS.has(f.kind)) };
        }),
      );
    }
  }
  return Promise.all(jobs);
}
