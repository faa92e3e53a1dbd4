// Faults injected into a deployed sandbox, one at a time, each with what `npm run doctor` must
// say about it: the hop that fails, why, and the fix. Every fault is put back before the next,
// and the doctor must then find the route healthy again.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pollUntil } from "../lab/command";
import { STANDIN_DIR } from "../local/cloud/machine";
import * as paths from "../topology/paths";
import type { Hop, RouteReport } from "../doctor/verdicts";
import type { HostDriftReport } from "../doctor/host-drift";
import { publishThroughDnat } from "./dnat-scenario";
import type { IngressSandbox } from "./ingress-sandbox";

const DOCTOR = join(__dirname, "..", "doctor", "cli.ts");

export interface DoctorRun {
  readonly code: number | null;
  readonly out: string;
  readonly report?: { readonly ok: boolean; readonly routes: readonly RouteReport[]; readonly drift: readonly HostDriftReport[] };
}

/** `npm run doctor -- --sandbox RUN_DIR --json [--site HOST]`, as an operator runs it. */
export function runDoctor(runDir: string, site?: string): DoctorRun {
  const r = spawnSync(process.execPath, ["--import", "tsx", DOCTOR, "--sandbox", runDir, "--json", ...(site ? ["--site", site] : [])], { encoding: "utf8", timeout: 120_000 });
  let report: DoctorRun["report"];
  try {
    report = JSON.parse(r.stdout) as DoctorRun["report"];
  } catch {
    report = undefined;
  }
  return { code: r.status, out: `${r.stdout}${r.stderr}`, ...(report ? { report } : {}) };
}

export function hopOf(run: DoctorRun, hostname: string, hop: string): Hop {
  const route = run.report?.routes.find((r) => r.hostname === hostname);
  assert.ok(route, `no route ${hostname} in the doctor's report: ${run.out.slice(0, 3000)}`);
  const h = route.hops.find((x) => x.hop === hop);
  assert.ok(h, `no hop "${hop}" for ${hostname}: ${JSON.stringify(route.hops)}`);
  return h;
}

/** Asserts the doctor finds `hostname` broken at `hop`, for the reason and with the fix given. */
export function assertBroken(run: DoctorRun, hostname: string, hop: string, detail: RegExp, fix: RegExp): string {
  assert.equal(run.code, 1, `the doctor exits 1 on a broken route: ${run.out.slice(0, 3000)}`);
  const route = run.report!.routes.find((r) => r.hostname === hostname)!;
  const h = hopOf(run, hostname, hop);
  assert.equal(h.status, "fail", `${hop}: ${JSON.stringify(h)}`);
  assert.match(h.detail, detail);
  assert.match(h.fix ?? "", fix);
  const first = route.hops.find((x) => x.status === "fail");
  return `${hostname}: FAIL ${hop}: ${h.detail} (first failing hop: ${first?.hop}); fix: ${h.fix}`;
}

/** Waits until the doctor finds every route healthy and no drift (after a fault was put back). */
export async function waitHealthy(runDir: string): Promise<DoctorRun> {
  let last: DoctorRun | undefined;
  return pollUntil(
    "the doctor to find every route healthy",
    async () => {
      last = runDoctor(runDir);
      return last.code === 0 ? last : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1000 },
  ).catch((e: Error) => {
    throw new Error(`${e.message}: ${last?.out.slice(0, 4000)}`);
  });
}

async function onHost(s: IngressSandbox, server: string, script: string): Promise<void> {
  const r = await s.onHost(server, ["sh", "-c", script]);
  assert.equal(r.code, 0, `${server}: ${script}: ${r.stderr}`);
}

const systemctl = `${STANDIN_DIR}/systemctl`;
const siteFile = (hostname: string) => `${paths.CURRENT}/nginx/sites/${hostname}.conf`;

/** Edits files of the live release in place (a sed expression) and reloads nginx; the returned function puts them back. */
async function editRelease(s: IngressSandbox, server: string, files: readonly string[], sed: string): Promise<() => Promise<void>> {
  const keep = files.map((f, i) => `cp -p ${f} /run/doctor-fault-${i} && sed -i '${sed}' ${f}`).join(" && ");
  await onHost(s, server, `${keep} && ${systemctl} reload nginx.service`);
  const back = files.map((f, i) => `cp -p /run/doctor-fault-${i} ${f} && rm -f /run/doctor-fault-${i}`).join(" && ");
  return () => onHost(s, server, `${back} && ${systemctl} reload nginx.service`);
}

export interface Fault {
  readonly name: string;
  run(s: IngressSandbox, runDir: string): Promise<string>;
}

export const doctorFaults: readonly Fault[] = [
  {
    name: "the original failure: nginx behind podman-style DNAT with forwarding off",
    async run(s, runDir) {
      const published = await publishThroughDnat(s, "frontend");
      try {
        return assertBroken(runDoctor(runDir, "fiscalismia.com"), "fiscalismia.com", "tcp LB -> server", /timeout \(L4TOUT\): port 443 is DNATed .*net\.ipv4\.ip_forward is 0/, /host networking.*Network=host/);
      } finally {
        await published.restore();
      }
    },
  },
  {
    name: "an nftables rule on the server drops the site's port",
    async run(s, runDir) {
      await onHost(s, "backend", "nft add table inet doctor_fault && nft add chain inet doctor_fault input '{ type filter hook input priority -10; }' && nft add rule inet doctor_fault input tcp dport 443 drop");
      try {
        const run = runDoctor(runDir, "backend.fiscalismia.com");
        const said = assertBroken(run, "backend.fiscalismia.com", "tcp LB -> server", /timeout \(L4TOUT\): on backend, nftables inet doctor_fault: tcp dport 443 drop/, /remove that rule/);
        assert.equal(hopOf(run, "backend.fiscalismia.com", "server firewall").status, "fail");
        return said;
      } finally {
        await onHost(s, "backend", "nft delete table inet doctor_fault");
      }
    },
  },
  {
    name: "nginx stopped",
    async run(s, runDir) {
      await s.stopNginx("monitoring");
      try {
        // The engine calls it DOWN after `fall` failed checks; until then it says "UP 1/2", L4CON.
        const run = await pollUntil(
          "the engine to mark monitoring DOWN",
          async () => {
            const r = runDoctor(runDir, "monitoring.fiscalismia.com");
            return /^DOWN/.test(r.report?.routes[0]?.hops.find((h) => h.hop === "engine view")?.detail ?? "") ? r : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        );
        const said = assertBroken(run, "monitoring.fiscalismia.com", "tcp LB -> server", /refused \(L4CON\): nothing listens on port 443 of monitoring; nginx\.service is (inactive|failed)/, /systemctl start nginx\.service on monitoring/);
        assert.match(hopOf(run, "monitoring.fiscalismia.com", "engine view").detail, /^DOWN, last check L4CON/);
        return said;
      } finally {
        await s.startNginx("monitoring");
      }
    },
  },
  {
    name: "set_real_ip_from does not cover the LB",
    async run(s, runDir) {
      const restore = await editRelease(s, "frontend", [siteFile("fiscalismia.com")], "/set_real_ip_from/d");
      try {
        return assertBroken(runDoctor(runDir, "fiscalismia.com"), "fiscalismia.com", "real client address", /nginx trusts PROXY headers from no address, not from the LB \(172\.24\.1\.3\): it logs the LB as every client/, /set_real_ip_from 172\.24\.1\.3;/);
      } finally {
        await restore();
      }
    },
  },
  {
    name: "a listener without proxy_protocol",
    async run(s, runDir) {
      // Both server blocks on the port: nginx takes a socket's options from any listen line of it.
      const restore = await editRelease(s, "backend", [siteFile("backend.fiscalismia.com"), `${paths.CURRENT}/nginx/nginx.conf`], "s/ ssl proxy_protocol/ ssl/");
      try {
        return assertBroken(runDoctor(runDir, "backend.fiscalismia.com"), "backend.fiscalismia.com", "PROXY header", /TLS works without the PROXY header and fails after it.*does not expect PROXY/, /listen 443 ssl proxy_protocol;/);
      } finally {
        await restore();
      }
    },
  },
  {
    name: "an expired certificate",
    async run(s, runDir) {
      const host = "backend.demo.fiscalismia.com";
      const link = paths.hostCertPaths(host).link;
      const { certFile, keyFile } = paths.acmeCertPaths(host);
      // A pair that expired in 2024, signed by itself (openssl ca can backdate; req -x509 cannot).
      const make = [
        "d=$(mktemp -d) && cd $d && touch index.txt && echo 01 >serial",
        `printf '[ca]\\ndefault_ca = x\\n[x]\\ndatabase = %s/index.txt\\nserial = %s/serial\\nnew_certs_dir = %s\\npolicy = p\\ndefault_md = sha256\\ncopy_extensions = copy\\n[p]\\ncommonName = supplied\\n' $d $d $d >ca.cnf`,
        `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -subj /CN=${host} -addext subjectAltName=DNS:${host} -out req.csr 2>/dev/null`,
        "openssl ca -batch -config ca.cnf -selfsign -keyfile key.pem -in req.csr -startdate 20240101000000Z -enddate 20240201000000Z -out cert.pem -notext 2>/dev/null",
        `t=$(readlink -f ${link}) && cp -p $t/${certFile} /run/doctor-fault.crt && cp -p $t/${keyFile} /run/doctor-fault.key`,
        `cp cert.pem $t/${certFile} && cp key.pem $t/${keyFile} && rm -rf $d && ${systemctl} reload nginx.service`,
      ].join(" && ");
      await onHost(s, "demo", make);
      try {
        return assertBroken(runDoctor(runDir, host), host, "TLS (SNI)", /the certificate served for backend\.demo\.fiscalismia\.com expired \d+ days ago: CN=backend\.demo\.fiscalismia\.com.*expires 2024-02-01/, /journalctl -u acme\.service on demo/);
      } finally {
        await onHost(s, "demo", `t=$(readlink -f ${link}) && cp -p /run/doctor-fault.crt $t/${certFile} && cp -p /run/doctor-fault.key $t/${keyFile} && rm -f /run/doctor-fault.crt /run/doctor-fault.key && ${systemctl} reload nginx.service`);
      }
    },
  },
  {
    name: "a file of the live release edited by hand (drift), repaired by the command the doctor gives",
    async run(s, runDir) {
      const file = `${paths.CURRENT}/nginx/nginx.conf`;
      await onHost(s, "monitoring", `cp -p ${file} /run/doctor-fault-drift && printf '# tuned by hand\\n' >>${file}`);
      // Put back whatever happens below, so the next fault starts from a clean host.
      const putBack = () => onHost(s, "monitoring", `if [ -e /run/doctor-fault-drift ]; then cp -p /run/doctor-fault-drift ${file} && rm -f /run/doctor-fault-drift; fi`);
      try {
        const run = runDoctor(runDir, "monitoring.fiscalismia.com");
        assert.equal(run.code, 1, `drift alone makes the doctor exit 1: ${run.out.slice(0, 3000)}`);
        assert.ok(run.report!.routes.every((r) => !r.broken), "the route itself still serves");
        const host = run.report!.drift.find((d) => d.host === "monitoring");
        const differs = host?.findings.find((f) => f.kind === "differs");
        assert.ok(differs, JSON.stringify(run.report!.drift));
        assert.equal(differs.path, file);
        // The fix names the deployed bundle run again: run it, exactly as given, on the host.
        const command = /`([^`]*apply\.sh --bundle [^`]*)`/.exec(differs.fix)?.[1];
        assert.ok(command, differs.fix);
        await onHost(s, "monitoring", `${command} && rm -f /run/doctor-fault-drift`);
        const after = runDoctor(runDir, "monitoring.fiscalismia.com");
        assert.deepEqual(after.report?.drift.find((d) => d.host === "monitoring")?.findings, [], after.out.slice(0, 3000));
        return `monitoring: ${differs.kind} ${differs.path}: ${differs.detail}; fix run as given: ${command}`;
      } finally {
        await putBack();
      }
    },
  },
];

/** The LB's engine stopped: every route broken at the LB, naming the unit and how to start it. */
export async function engineDownFault(s: IngressSandbox, runDir: string, engine: "haproxy" | "ts"): Promise<string> {
  const unit = engine === "haproxy" ? "haproxy" : "proxy";
  const stopped = await s.onLb([systemctl, "stop", `${unit}.service`]);
  assert.equal(stopped.code, 0, stopped.stderr);
  try {
    const run = runDoctor(runDir);
    assert.equal(run.code, 1, run.out);
    const said: string[] = [];
    for (const r of s.rows) {
      said.push(assertBroken(run, r.hostname, "lb listens", new RegExp(`:443 (refused|timeout); ${unit}\\.service is (inactive|failed)`), new RegExp(`systemctl start ${unit}\\.service on the LB`)));
      assert.equal(hopOf(run, r.hostname, "engine view").status, "fail");
    }
    return said[0]!;
  } finally {
    const started = await s.onLb([systemctl, "start", `${unit}.service`]);
    assert.equal(started.code, 0, started.stderr);
  }
}
