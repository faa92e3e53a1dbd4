// End to end, the way production takes it: `npm run sandbox -- up` (the local engine's `up` of
// prod, then demo: the program's own commands over ssh into apply.sh on fresh machines), the
// checks of sandbox/ingress-checks.ts against it (the same ones `npm run sandbox -- test` runs),
// then `down`, for each engine. Nothing in between deploys anything by another path.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cleanupStale, listNetns } from "../../lab";
import { sandboxEngines } from "../../sandbox/engines";
import { ingressChecks } from "../../sandbox/ingress-checks";
import { CHECK_PREFIX, IngressSandbox } from "../../sandbox/ingress-sandbox";
import { planIngressSandbox, writeSandboxConfigs } from "../../sandbox/ingress-plan";
import { missingPrerequisites } from "../../sandbox/prerequisites";
import { sandboxRun } from "../../sandbox/sandbox-run";
import { doctorFaults, engineDownFault, waitHealthy } from "../../sandbox/doctor-faults";
import { cloudNetnsPrefix, type CloudInfo } from "../../local/cloud/cloud";
import { callCloudIn } from "../../local/cloud/protocol";

const CLI = join(__dirname, "..", "..", "scripts", "sandbox.ts");
const missing = missingPrerequisites();
const engines = sandboxEngines();

/** The cloud's namespace prefix (undefined when no cloud answers). */
function cloudPrefixOf(runDir: string): Promise<string | undefined> {
  return callCloudIn<CloudInfo>(runDir, "info").then(cloudNetnsPrefix, () => undefined);
}

function sandboxCli(runDir: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], {
    encoding: "utf8",
    timeout: 5 * 60_000,
    env: { ...process.env, HETZNER_INGRESS_SANDBOX_RUN: runDir },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

for (const engine of engines) {
  describe(`e2e: npm run sandbox -- up (prod, then demo), engine ${engine}`, { skip: missing.length > 0 && `needs ${missing.join("; ")}`, timeout: 10 * 60_000 }, () => {
    const runDir = `/run/hetzner-ingress-sandbox-test-${process.pid}-${engine}`;
    let s: IngressSandbox | undefined;
    /** The local cloud's namespace prefix (inglc-<pid>-<rand>-), read from its operator namespace. */
    let cloudPrefix: string | undefined;

    before(async () => {
      await cleanupStale(CHECK_PREFIX);
      const up = sandboxCli(runDir, "up", "--engine", engine);
      cloudPrefix = await cloudPrefixOf(runDir);
      assert.equal(up.code, 0, up.out);
      // What a user is told: each stack's up, and how to reach every site from the client.
      assert.match(up.out, /up of stack prod: \d+ to create/);
      assert.match(up.out, /up of stack demo: \d+ to create/);
      s = await IngressSandbox.attach(sandboxRun(runDir));
      assert.ok(up.out.includes(`curl -k --resolve demo.fiscalismia.com:443:${s.lb4} https://demo.fiscalismia.com/`), up.out.slice(-3000));
      assert.equal(sandboxCli(runDir, "up").code, 1, "a second up is refused while one is up");
    });

    after(async () => {
      // down runs whatever happened before: a failed up must not leave a cloud running.
      let session: Error | undefined;
      try {
        if (s) {
          await s.close();
          assert.deepEqual(s.sb.leftovers(), { namespaces: [], processes: [], files: [] }, "the check session leaves nothing");
        }
      } catch (e) {
        session = e as Error;
      }
      const down = sandboxCli(runDir, "down");
      assert.equal(down.code, 0, down.out);
      assert.match(down.out, /sandbox down/);
      assert.ok(cloudPrefix !== undefined, "the sandbox's cloud was seen running");
      assert.deepEqual(listNetns().filter((n) => n.startsWith(cloudPrefix ?? "-")), [], "down leaves no namespace of the cloud behind");
      assert.equal(existsSync(runDir), false, `${runDir} is removed`);
      assert.equal(sandboxCli(runDir, "test").code, 1, "test without a sandbox says so");
      if (session) throw session;
    });

    // The checks are known before the sandbox is up: the plan is the configs' (the same files up deploys).
    const plan = (() => {
      const dir = mkdtempSync(join(tmpdir(), "sandbox-plan-"));
      try {
        writeSandboxConfigs(dir, engine);
        return planIngressSandbox(dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    for (const check of ingressChecks(plan)) {
      it(check.name, async (t) => {
        if (!s) throw new Error("the sandbox did not come up");
        t.diagnostic(await check.run(s));
      });
    }

    // npm run doctor against the live sandbox: every route healthy, then each fault it must name
    // (the faults once, with the first engine; the engine's own fault with each).
    it("npm run doctor: every route healthy hop by hop, exit 0", async (t) => {
      if (!s) throw new Error("the sandbox did not come up");
      const run = await waitHealthy(runDir);
      assert.equal(run.report?.routes.length, s.rows.length, run.out);
      for (const r of run.report!.routes) for (const h of r.hops) assert.notEqual(h.status, "fail", `${r.hostname} ${h.hop}: ${h.detail}`);
      t.diagnostic(`${run.report!.routes.length} routes, ${run.report!.routes.reduce((n, r) => n + r.hops.filter((h) => h.status === "ok").length, 0)} hops ok`);
    });
    if (engine === engines[0]) {
      for (const fault of doctorFaults) {
        it(`npm run doctor names the fault: ${fault.name}`, async (t) => {
          if (!s) throw new Error("the sandbox did not come up");
          t.diagnostic(await fault.run(s, runDir));
          await waitHealthy(runDir);
        });
      }
    }
    it(`npm run doctor names the fault: the LB's engine (${engine}) stopped`, async (t) => {
      if (!s) throw new Error("the sandbox did not come up");
      t.diagnostic(await engineDownFault(s, runDir, engine));
      await waitHealthy(runDir);
    });

    // Once is enough for the CLI's own path (attach, run, report, exit status).
    if (engine === engines[0]) {
      it("`npm run sandbox -- test` runs the same checks and reports each as passed", () => {
        const r = sandboxCli(runDir, "test");
        assert.equal(r.code, 0, r.out);
        for (const check of ingressChecks(plan)) assert.ok(r.out.includes(`PASS ${check.name} (`), `${check.name}\n${r.out}`);
        assert.match(r.out, new RegExp(`^${ingressChecks(plan).length} passed, 0 failed in `, "m"));
      });

      it("a dead LB engine is named first, not left for every check to fail its own way", async () => {
        if (!s) throw new Error("the sandbox did not come up");
        const container = engine === "haproxy" ? "haproxy" : "proxy";
        const killed = await s.onLb(["sh", "-c", `read -r pid _ </var/lib/local-machine/containers/${container}.pid && kill -9 "$pid"`]);
        assert.equal(killed.code, 0, killed.stderr);
        try {
          const r = sandboxCli(runDir, "test");
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, new RegExp(`the LB's engine \\(${engine}, container ${container}\\) is not running on prod-loadbalancer: its process is gone`));
          assert.doesNotMatch(r.out, /^(PASS|FAIL) /m, "no check ran against a dead LB");
        } finally {
          const started = await s.onLb(["/usr/local/sbin/systemctl", "start", `${container}.service`]);
          assert.equal(started.code, 0, started.stderr);
        }
        // Back: the engine runs again, and attaching says so.
        const again = await IngressSandbox.attach(sandboxRun(runDir));
        await again.close();
      });
    }
  });
}
