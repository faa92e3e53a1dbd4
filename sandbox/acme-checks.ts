// The sandbox's ACME checks: certificates that Pebble issued through the LB's port 80 (real
// http-01 validations, PEBBLE_VA_ALWAYS_VALID never set), checked by a client that trusts only
// Pebble's roots; a renewal under a client loop; a CA that is down and a challenge that cannot be
// reached, each leaving the certificate in use serving and the failure logged and backed off.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RoutingRow } from "../topology";
import * as paths from "../topology/paths";
import { pollUntil, run } from "../lab/command";
import type { Netns } from "../lab";
import { STANDIN_DIR } from "../local/cloud/machine";
import { CERTIFICATE_WARNING_DAYS, HAPROXY_CHECK_TEXT_MAX } from "../contract/certificate-info";
import { re, rowState, type IngressCheck } from "./check-helpers";
import { containerLog, INTERNET, type IngressSandbox } from "./ingress-sandbox";

/** An address on the local internet where nothing answers: a name resolved here cannot be validated. */
const NOWHERE = "198.51.100.99";
/** Where the acme job's output lands on a machine. */
const JOB_LOG = containerLog("acme");

/** Pebble's roots (every one it had), in a file the client namespace reads. */
async function pebbleRoots(s: IngressSandbox): Promise<string> {
  const info = await s.acmeCa("info");
  assert.ok(info.issuerRootsPem.includes("BEGIN CERTIFICATE"), "the sandbox's CA has no issuing root");
  const file = join(s.sb.dir, "pebble-roots.pem");
  writeFileSync(file, info.issuerRootsPem);
  return file;
}

/** GET / of `hostname` through the LB over TLS 1.3, trusting only `caFile`: status and body. */
async function verifiedGet(from: Netns, lb4: string, hostname: string, caFile: string): Promise<{ status: number; body: string; err: string }> {
  const r = await from.exec(
    ["curl", "-sS", "--max-time", "3", "--tlsv1.3", "--cacert", caFile, "--resolve", `${hostname}:443:${lb4}`, "-w", "\n%{http_code}", `https://${hostname}/`],
    { allowFailure: true, timeoutMs: 6000 },
  );
  const cut = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(cut + 1)) || 0, body: r.stdout.slice(0, Math.max(cut, 0)), err: r.stderr.trim() };
}

interface ServedCertificate {
  readonly fingerprint: string;
  readonly issuer: string;
  readonly notAfter: string;
}

/** The certificate the LB's path serves for `hostname` (whatever signs it); a slow handshake is tried again. */
async function servedCertificate(s: IngressSandbox, hostname: string): Promise<ServedCertificate> {
  const script = `openssl s_client -connect ${s.lb4}:443 -servername ${hostname} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 -issuer -enddate`;
  let last = "";
  return pollUntil(
    `the certificate ${hostname} serves through the LB`,
    async () => {
      const r = await s.clients.client.exec(["sh", "-c", script], { allowFailure: true, timeoutMs: 10_000 });
      const field = (pattern: RegExp) => pattern.exec(r.stdout)?.[1]?.trim() ?? "";
      const cert = { fingerprint: field(/Fingerprint=(\S+)/), issuer: field(/^issuer=(.*)$/m), notAfter: field(/^notAfter=(.*)$/m) };
      last = r.stderr;
      return cert.fingerprint !== "" ? cert : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 250 },
  ).catch((e: Error) => {
    throw new Error(`${e.message}: ${last}`);
  });
}


/**
 * The engine's last check of `row`'s server, as the operator reads it on the stats page, once it
 * says what `want` accepts (the check runs every few seconds; nginx reloads a moment after the job).
 */
async function statsSay(s: IngressSandbox, row: RoutingRow, want: { readonly test: (text: string) => boolean; readonly what: string }): Promise<string> {
  let last = "";
  return pollUntil(
    `the stats page's last check of ${row.backend}/${row.server} to say ${want.what}`,
    async () => {
      last = rowState(await s.serverStates(), row)?.lastCheck ?? "";
      return want.test(last) ? last : undefined;
    },
    // The job's ExecStopPost checks the release (podman) and reloads nginx; the next check reads it.
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((e: Error) => {
    throw new Error(`${e.message}; it says ${JSON.stringify(last)}`);
  });
}

/**
 * What a passed check says of a certificate Pebble issued for `row` until `notAfter` (openssl's
 * "Dec  9 06:46:33 2026 GMT") with ACME state `acme`. HAProxy keeps 127 characters of it, so
 * the issuer and names, last, may be cut there; the ts proxy keeps it whole.
 */
function pebbleCertificateText(row: RoutingRow, notAfter: string, acme: string): { test: (text: string) => boolean; what: string } {
  const left = Date.parse(notAfter) - Date.now();
  const days = Math.trunc(left / 86_400_000);
  const warning = left < CERTIFICATE_WARNING_DAYS * 86_400_000 ? "WARNING" : "ok";
  const head = (d: number) => `cert ${d}d left (${warning}) until ${new Date(Date.parse(notAfter)).toISOString().slice(0, 10)}; acme ${acme}; `;
  const tail = new RegExp(`^issuer Pebble Intermediate CA [0-9a-f]+; names ${re(row.hostname)}$`);
  // The day count may tick over between the two readings.
  const test = (text: string) =>
    [head(days), head(days - 1)].some((h) => {
      if (!text.startsWith(h)) return false;
      const rest = text.slice(h.length);
      if (tail.test(rest)) return true;
      const whole = `issuer Pebble Intermediate CA ${/^issuer Pebble Intermediate CA ([0-9a-f]+)/.exec(rest)?.[1] ?? ""}; names ${row.hostname}`;
      return text.length === HAPROXY_CHECK_TEXT_MAX && whole.startsWith(rest);
    });
  return { test, what: `"${head(days)}issuer Pebble Intermediate CA ...; names ${row.hostname}"` };
}

function hostsOf(row: RoutingRow): { server: string; attempts: string } {
  return { server: row.server, attempts: `${paths.ACME_STATE_DIR}/${row.hostname}/attempts` };
}

/** What the timer does: start acme.service and wait for it (systemctl start of a oneshot blocks). */
async function runJob(s: IngressSandbox, server: string): Promise<{ code: number | null; log: string }> {
  const before = (await s.onHost(server, ["cat", JOB_LOG])).stdout.length;
  const r = await s.onHost(server, [`${STANDIN_DIR}/systemctl`, "start", "acme.service"]);
  const log = (await s.onHost(server, ["cat", JOB_LOG])).stdout.slice(before);
  return { code: r.code, log: `${log}${r.stderr}` };
}

/** Makes the job look at `hostname` now, as it does twice a day (its record says when). */
async function dueNow(s: IngressSandbox, row: RoutingRow): Promise<void> {
  const { server, attempts } = hostsOf(row);
  const r = await s.onHost(server, ["sh", "-c", `printf '0 0\\n' >${attempts}`]);
  assert.equal(r.code, 0, r.stderr);
}

async function attemptsOf(s: IngressSandbox, row: RoutingRow): Promise<{ failures: number; next: number; nextInS: number }> {
  const { server, attempts } = hostsOf(row);
  const [failures, next] = (await s.onHost(server, ["cat", attempts])).stdout.trim().split(" ").map(Number);
  return { failures: failures ?? NaN, next: next ?? NaN, nextInS: (next ?? NaN) - Math.floor(Date.now() / 1000) };
}

/** A client that trusts only Pebble's roots, requesting `hostname` through the LB every 50 ms. */
function verifiedLoop(s: IngressSandbox, hostname: string, caFile: string): { stop(): Promise<{ ok: number; failed: string[] }> } {
  const log = join(s.sb.dir, `loop-${hostname}.log`);
  writeFileSync(log, "");
  const script = `while :; do c=$(curl -s --tlsv1.3 --cacert ${caFile} --connect-timeout 2 --max-time 5 --resolve ${hostname}:443:${s.lb4} -o /dev/null -w '%{http_code}' https://${hostname}/); echo "$c" >>${log}; sleep 0.05; done`;
  const loop = s.clients.client.exec(["setsid", "bash", "-c", script], { allowFailure: true, timeoutMs: 10 * 60_000 });
  return {
    async stop() {
      await run(["pkill", "-f", log], { allowFailure: true });
      await loop;
      const codes = (await run(["cat", log])).stdout.split("\n").filter((l) => l !== "");
      return { ok: codes.filter((c) => c === "200").length, failed: codes.filter((c) => c !== "200") };
    },
  };
}

export const acmeIssuedCheck: IngressCheck = {
  name: "ACME: every hostname serves a certificate Pebble issued through the LB's port 80; TLS 1.3 trusting only Pebble, nginx sees the client",
  async run(s) {
    const caFile = await pebbleRoots(s);
    const seen: string[] = [];
    // Issued at the first deploy, or a minute later on the job's second try (the LB routes a
    // stack's challenges only once that stack's deploy has reached it).
    for (const row of s.rows) {
      const r = await pollUntil(
        `a Pebble certificate on ${row.hostname}`,
        async () => {
          const got = await verifiedGet(s.clients.client, s.lb4, row.hostname, caFile);
          return got.status === 200 ? got : undefined;
        },
        { timeoutMs: 150_000, intervalMs: 1000 },
      ).catch(async (e: Error) => {
        const job = await s.onHost(row.server, ["tail", "-n", "30", JOB_LOG]);
        throw new Error(`${e.message}\nlast try: ${(await verifiedGet(s.clients.client, s.lb4, row.hostname, caFile)).err}\n${row.server}'s acme job log:\n${job.stdout}`);
      });
      assert.match(r.body, new RegExp(`real client IP is ${INTERNET.client4.replace(/\./g, "\\.")}\\b`), `body: ${r.body}`);
      const cert = await servedCertificate(s, row.hostname);
      assert.match(cert.issuer, /Pebble/i, `${row.hostname}: issuer ${cert.issuer}`);
      // The engine's stats page names it: names, issuer, expiry, days left (a warning under 14:
      // the sandbox's CA issues for 7 days), and the ACME job's state.
      const said = await statsSay(s, row, pebbleCertificateText(row, cert.notAfter, "ok"));
      seen.push(`${row.hostname}: stats say "${said}"`);
    }
    return seen.join("; ");
  },
};

export const acmeRenewalCheck = (row: RoutingRow): IngressCheck => ({
  name: `ACME renewal of ${row.hostname}: a new certificate by reload, no failed request from a client loop`,
  async run(s) {
    const caFile = await pebbleRoots(s);
    const before = await servedCertificate(s, row.hostname);
    const loop = verifiedLoop(s, row.hostname, caFile);
    let job: { code: number | null; log: string };
    let after: ServedCertificate;
    let result: { ok: number; failed: string[] };
    try {
      // Pebble's certificates here live 7 days and the stack renews 30 days ahead: a look renews.
      await dueNow(s, row);
      job = await runJob(s, row.server);
      // nginx's reload (SIGHUP) hands new connections to new workers a moment after the job ends.
      after = await pollUntil(
        `a new certificate on ${row.hostname}`,
        async () => {
          const now = await servedCertificate(s, row.hostname);
          return now.fingerprint !== before.fingerprint ? now : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      ).catch(() => servedCertificate(s, row.hostname));
      // Requests after the switch, on the new certificate.
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      result = await loop.stop();
    }
    assert.equal(job.code, 0, job.log);
    const name = re(row.hostname);
    assert.match(job.log, new RegExp(`acme: ${name}: renewal check .*\\n(.*\\n)*acme: ${name}: new certificate; nginx moves to it by reload; next check at `));
    assert.notEqual(after.fingerprint, before.fingerprint, "the served certificate is the renewed one");
    assert.deepEqual(result.failed, [], `the client loop saw ${result.failed.length} failed requests`);
    assert.ok(result.ok >= 5, `the loop ran (${result.ok} requests)`);
    const applyLog = (await s.onHost(row.server, ["tail", "-n", "20", `${paths.INGRESS_ROOT}/apply.log`])).stdout;
    // apply.sh linked a checked copy of the new pair and reloaded nginx (not a restart).
    assert.match(applyLog, new RegExp(`certificate ${re(paths.hostCertPaths(row.hostname).link)} -> ${re(paths.acmeCertPaths(row.hostname).real)} \\(its checked copy secrets/tls/copies/${re(row.hostname)}/[0-9a-f]{16}\\)[\\s\\S]*nginx reloaded with the switched certificates`));
    return `${before.fingerprint.slice(0, 17)}... -> ${after.fingerprint.slice(0, 17)}... (until ${after.notAfter}); client loop ${result.ok} requests, 0 failed`;
  },
});

export const acmeFailureCheck = (row: RoutingRow): IngressCheck => ({
  name: `ACME failures on ${row.hostname}: CA down, then its challenge unreachable; the certificate in use keeps serving, each failure logged and backed off`,
  async run(s) {
    const caFile = await pebbleRoots(s);
    const name = re(row.hostname);
    const before = await servedCertificate(s, row.hostname);
    const notes: string[] = [];
    try {
      await s.acmeCa("stop");
      await dueNow(s, row);
      const down = await runJob(s, row.server);
      assert.notEqual(down.code, 0, `the job reports its failure: ${down.log}`);
      assert.match(down.log, new RegExp(`acme: ${name}: FAILED \\(lego exited \\d+, run 1\\); the certificate in use stays; next attempt at `));
      // For the reason given: the directory refused the connection.
      assert.match(down.log, /198\.51\.100\.30:14000.*connection refused/);
      const backoff = await attemptsOf(s, row);
      assert.equal(backoff.failures, 1);
      assert.ok(backoff.nextInS > 3000 && backoff.nextInS <= 3600, `a renewal retries in an hour, not at once: ${backoff.nextInS} s`);
      assert.equal((await servedCertificate(s, row.hostname)).fingerprint, before.fingerprint, "the old certificate keeps serving");
      assert.equal((await verifiedGet(s.clients.client, s.lb4, row.hostname, caFile)).status, 200);
      // The failure is on the stats page, beside the certificate still in use.
      const nextAt = `${new Date(backoff.next * 1000).toISOString().slice(0, 16)}Z`;
      await statsSay(s, row, pebbleCertificateText(row, before.notAfter, `failing: 1 run(s), next ${nextAt}`));
      // The timer fires again: no new attempt, no crash loop, the wait is said.
      const again = await runJob(s, row.server);
      assert.equal(again.code, 0, again.log);
      assert.match(again.log, new RegExp(`acme: ${name}: backing off after 1 failed run\\(s\\); next attempt at `));
      assert.doesNotMatch(again.log, new RegExp(`acme: ${name}: renewal check`));
      notes.push(`CA down: job failed, next attempt in ${backoff.nextInS} s, a second run backed off`);

      // The CA is back but the name resolves where nothing answers: its http-01 validation fails.
      await s.acmeCa("start");
      await s.acmeCa("resolve", NOWHERE);
      await dueNow(s, row);
      const unreachable = await runJob(s, row.server);
      assert.notEqual(unreachable.code, 0, unreachable.log);
      assert.match(unreachable.log, new RegExp(`acme: ${name}: FAILED \\(lego exited \\d+, run 1\\)`));
      // For the reason given: Pebble could not fetch the token from where the name pointed.
      assert.match(unreachable.log, new RegExp(`urn:ietf:params:acme:error:(connection|unauthorized).*${re(NOWHERE)}|${re(NOWHERE)}.*urn:ietf:params:acme:error`));
      assert.equal((await servedCertificate(s, row.hostname)).fingerprint, before.fingerprint, "the old certificate keeps serving");
      notes.push("challenge unreachable: job failed, old certificate serving");
    } finally {
      await s.acmeCa("start");
      await s.acmeCa("resolve", s.lb4);
    }
    // Both causes gone: the next due look renews.
    await dueNow(s, row);
    const recovered = await runJob(s, row.server);
    assert.equal(recovered.code, 0, recovered.log);
    const after = await pollUntil(
      `the renewed certificate on ${row.hostname}`,
      async () => {
        const now = await servedCertificate(s, row.hostname);
        return now.fingerprint !== before.fingerprint ? now : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.notEqual(after.fingerprint, before.fingerprint);
    assert.equal((await verifiedGet(s.clients.client, s.lb4, row.hostname, await pebbleRoots(s))).status, 200);
    await statsSay(s, row, pebbleCertificateText(row, after.notAfter, "ok"));
    notes.push("recovered: renewed at the next look, stats say ok");
    return notes.join("; ");
  },
});
