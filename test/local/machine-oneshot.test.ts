// The machine image's systemd for oneshot Quadlet units (the ACME job) and timers, on one real
// machine of the local cloud, so the stand-ins write its own /etc and /var and never this
// machine's: a start runs the container to its end, then ExecStopPost; a failure fails the start
// as systemctl does; two starts share one run; --no-block returns at once; a stop cancels the
// run; a timer only records its state (nothing fires: a test starts the job).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildScript, PROJECT_ROOT } from "../../components/program/program-files";
import { Sandbox, type RunResult } from "../../lab";
import { Machine, STANDIN_DIR } from "../../local/cloud/machine";
import { said, waitFor } from "./support";

/** Where the test's containers write (a volume), on the machine. */
const DIR = "/var/lib/job-test";
const LOGS = "/var/lib/local-machine/containers";

let sb: Sandbox | undefined;
let m: Machine;

function on(argv: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return m.exec(argv, { allowFailure: true, timeoutMs });
}

function systemctl(...args: string[]): Promise<RunResult> {
  return on([`${STANDIN_DIR}/systemctl`, ...args]);
}

async function writeOn(path: string, content: string): Promise<void> {
  const r = await on(["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf %s "$2" >"$1"', "sh", path, content]);
  assert.equal(r.code, 0, said(r));
}

/** Lines of a file on the machine (none if it does not exist). */
async function linesOf(path: string): Promise<string[]> {
  const r = await on(["cat", path]);
  return r.code === 0 ? r.stdout.split("\n").filter((l) => l !== "") : [];
}

/**
 * A oneshot Quadlet unit shaped as the renderer's acme.container: the image's program replaced
 * by --entrypoint, Exec= its arguments (a shell script without $ or %, as the renderer allows).
 */
function jobUnit(name: string, script: string): string {
  return [
    "[Unit]",
    `Description=test job ${name}`,
    "Wants=network-online.target",
    "After=network-online.target nginx.service",
    "",
    "[Container]",
    `ContainerName=${name}`,
    "Image=docker.io/library/alpine:3.20",
    "Network=host",
    "Volume=/etc/ssh:/etc/ssh:ro",
    `Volume=${DIR}:${DIR}`,
    `Exec=-c "${script}"`,
    "DropCapability=ALL",
    "NoNewPrivileges=true",
    "ReadOnly=true",
    "VolatileTmp=true",
    "PodmanArgs=--entrypoint=/bin/sh --log-driver=journald",
    "",
    "[Service]",
    "Type=oneshot",
    "TimeoutStartSec=60",
    `ExecStopPost=-/bin/sh -c "echo ${name} >> ${DIR}/stopped"`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

const TIMER = ["[Unit]", "Description=runs ok.service", "[Timer]", "OnActiveSec=1s", "OnCalendar=hourly", "RandomizedDelaySec=15min", "Persistent=true", "[Install]", "WantedBy=timers.target", ""].join("\n");

before(async () => {
  sb = await Sandbox.create({ prefix: "mjob" });
  const toolsScript = join(sb.dir, "machine-tools.js");
  writeFileSync(toolsScript, buildScript(join(PROJECT_ROOT, "local", "machine", "tools.ts")), { mode: 0o755 });
  m = await Machine.create(sb, await sb.namespace("m"), { id: 1, name: "job-test", authorizedKeys: [], userData: "#cloud-config\n", toolsScript });
  await on(["mkdir", "-p", DIR]);
  await writeOn("/etc/containers/systemd/ok.container", jobUnit("ok", `sleep 2; echo ran >> ${DIR}/ok.runs; echo hello from ok`));
  await writeOn("/etc/containers/systemd/bad.container", jobUnit("bad", `echo ran >> ${DIR}/bad.runs; echo about to fail; exit 3`));
  await writeOn("/etc/containers/systemd/slow.container", jobUnit("slow", `sleep 30; echo ran >> ${DIR}/slow.runs`));
  // Its env file does not exist: podman refuses to start it.
  await writeOn("/etc/containers/systemd/noenv.container", jobUnit("noenv", `echo ran >> ${DIR}/noenv.runs`).replace("[Container]\n", "[Container]\nEnvironmentFile=/srv/ingress/secrets/absent.env\n"));
});

after(async () => {
  await sb?.teardown();
});

describe("a oneshot Quadlet unit on the local machine", () => {
  test("start runs the container to its end (foreground, with the entrypoint), then ExecStopPost; the unit is inactive after", async () => {
    const started = Date.now();
    const r = await systemctl("start", "ok.service");
    assert.equal(r.code, 0, said(r));
    assert.equal(r.stderr, "");
    assert.ok(Date.now() - started >= 2000, "start returned only when the job had ended");
    assert.deepEqual(await linesOf(`${DIR}/ok.runs`), ["ran"]);
    assert.deepEqual(await linesOf(`${DIR}/stopped`), ["ok"]);
    const active = await systemctl("is-active", "ok.service");
    assert.deepEqual([active.code, active.stdout], [3, "inactive\n"]);
    const quiet = await systemctl("is-active", "--quiet", "ok.service");
    assert.deepEqual([quiet.code, quiet.stdout], [3, ""]);
    assert.match((await linesOf(`${LOGS}/ok.log`)).join("\n"), /hello from ok\n.*ok\.service: Deactivated successfully\./);
  });

  test("a run that exits non-zero fails the start with systemctl's line; ExecStopPost runs all the same; the unit is failed", async () => {
    const r = await systemctl("start", "bad.service");
    assert.equal(r.code, 1, said(r));
    assert.equal(r.stderr.split("\n")[0], "Job for bad.service failed because the control process exited with error code.");
    assert.deepEqual(await linesOf(`${DIR}/bad.runs`), ["ran"]);
    assert.deepEqual((await linesOf(`${DIR}/stopped`)).filter((l) => l === "bad"), ["bad"]);
    const active = await systemctl("is-active", "bad.service");
    assert.deepEqual([active.code, active.stdout], [3, "failed\n"]);
    const log = (await linesOf(`${LOGS}/bad.log`)).join("\n");
    assert.match(log, /about to fail/);
    assert.match(log, /Main process exited, code=exited, status=3/);

    // podman's own refusal (an env file that does not exist) fails it the same way, before the program runs.
    const noenv = await systemctl("start", "noenv.service");
    assert.equal(noenv.code, 1, said(noenv));
    assert.match(noenv.stderr, /^Job for noenv\.service failed because the control process exited with error code\./);
    assert.deepEqual(await linesOf(`${DIR}/noenv.runs`), []);
    assert.deepEqual((await linesOf(`${DIR}/stopped`)).filter((l) => l === "noenv"), ["noenv"]);
    assert.match((await linesOf(`${LOGS}/noenv.log`)).join("\n"), /Error: open \/srv\/ingress\/secrets\/absent\.env: no such file or directory/);
  });

  test("two starts at once run the job once, and both return its result; the unit is activating meanwhile", async () => {
    const before = (await linesOf(`${DIR}/ok.runs`)).length;
    const both = Promise.all([systemctl("start", "ok.service"), systemctl("start", "ok.service")]);
    const activating = await waitFor("ok.service activating", async () => ((await systemctl("is-active", "ok.service")).stdout === "activating\n" ? true : undefined), 10_000);
    assert.equal(activating, true);
    const [a, b] = await both;
    assert.equal(a.code, 0, said(a));
    assert.equal(b.code, 0, said(b));
    assert.equal((await linesOf(`${DIR}/ok.runs`)).length, before + 1, "one run for the two starts");

    const failing = await Promise.all([systemctl("start", "bad.service"), systemctl("start", "bad.service")]);
    assert.deepEqual(failing.map((r) => r.code), [1, 1], failing.map(said).join("\n"));
    assert.ok((await linesOf(`${DIR}/bad.runs`)).length <= 3, "at most one run per start");
  });

  test("start --no-block returns at once; the job runs on and ends as a blocking start's would", async () => {
    const before = (await linesOf(`${DIR}/ok.runs`)).length;
    const stopped = (await linesOf(`${DIR}/stopped`)).length;
    const r = await systemctl("start", "--no-block", "ok.service");
    assert.equal(r.code, 0, said(r));
    assert.equal((await linesOf(`${DIR}/ok.runs`)).length, before, "the program (2 s) has not written yet");
    await waitFor("the job's run", async () => ((await linesOf(`${DIR}/ok.runs`)).length === before + 1 ? true : undefined), 10_000);
    await waitFor("its ExecStopPost", async () => ((await linesOf(`${DIR}/stopped`)).length === stopped + 1 ? true : undefined), 10_000);
    await waitFor("ok.service inactive", async () => ((await systemctl("is-active", "ok.service")).stdout === "inactive\n" ? true : undefined), 10_000);
  });

  test("a stop while it runs cancels the job: the container is stopped, ExecStopPost runs, the waiting start says canceled", async () => {
    const start = systemctl("start", "slow.service");
    await waitFor("slow.service activating", async () => ((await systemctl("is-active", "slow.service")).stdout === "activating\n" ? true : undefined), 10_000);
    // The container is up (podman run has its pid file) before it is stopped.
    await waitFor("slow's container", async () => ((await on(["test", "-s", `${LOGS}/slow.pid`])).code === 0 ? true : undefined), 10_000);
    const stop = await systemctl("stop", "slow.service");
    assert.equal(stop.code, 0, said(stop));
    assert.deepEqual((await linesOf(`${DIR}/stopped`)).filter((l) => l === "slow"), ["slow"], "ExecStopPost ran before the stop returned");
    const r = await start;
    assert.equal(r.code, 1, said(r));
    assert.equal(r.stderr, "Job for slow.service canceled.\n");
    assert.deepEqual(await linesOf(`${DIR}/slow.runs`), []);
    const active = await systemctl("is-active", "slow.service");
    assert.deepEqual([active.code, active.stdout], [3, "inactive\n"]);
    // Stopping it again, inactive, runs nothing.
    assert.equal((await systemctl("stop", "slow.service")).code, 0);
    assert.deepEqual((await linesOf(`${DIR}/stopped`)).filter((l) => l === "slow"), ["slow"]);
  });
});

describe("timers on the local machine record their state; nothing fires", () => {
  test("a timer without its file fails as systemctl does", async () => {
    const enable = await systemctl("enable", "--now", "ok.timer");
    assert.deepEqual([enable.code, enable.stderr], [1, "Failed to enable unit: Unit file ok.timer does not exist.\n"]);
    const start = await systemctl("start", "ok.timer");
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /Unit ok\.timer not found\./);
    const active = await systemctl("is-active", "ok.timer");
    assert.deepEqual([active.code, active.stdout], [3, "inactive\n"]);
    assert.equal((await systemctl("disable", "--now", "ok.timer")).code, 1);
    assert.equal((await systemctl("is-enabled", "ok.timer")).code, 1);
  });

  test("enable --now, is-active, is-enabled, disable --now, start and stop", async () => {
    await writeOn("/etc/systemd/system/ok.timer", TIMER);
    const runs = (await linesOf(`${DIR}/ok.runs`)).length;
    assert.equal((await systemctl("daemon-reload")).code, 0);
    const enable = await systemctl("enable", "--now", "ok.timer");
    assert.equal(enable.code, 0, said(enable));
    const active = await systemctl("is-active", "ok.timer");
    assert.deepEqual([active.code, active.stdout], [0, "active\n"]);
    const enabled = await systemctl("is-enabled", "ok.timer");
    assert.deepEqual([enabled.code, enabled.stdout], [0, "enabled\n"]);
    // OnActiveSec=1s has passed: systemd would have started ok.service; here only a test does.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await linesOf(`${DIR}/ok.runs`)).length, runs);
    assert.equal((await systemctl("is-active", "ok.service")).stdout, "inactive\n");

    const disable = await systemctl("disable", "--now", "ok.timer");
    assert.equal(disable.code, 0, said(disable));
    const inactive = await systemctl("is-active", "ok.timer");
    assert.deepEqual([inactive.code, inactive.stdout], [3, "inactive\n"]);
    const disabled = await systemctl("is-enabled", "ok.timer");
    assert.deepEqual([disabled.code, disabled.stdout], [1, "disabled\n"]);

    assert.equal((await systemctl("start", "ok.timer")).code, 0);
    assert.equal((await systemctl("is-active", "ok.timer")).code, 0);
    assert.equal((await systemctl("stop", "ok.timer")).code, 0);
    assert.equal((await systemctl("is-active", "ok.timer")).code, 3);
    assert.equal((await systemctl("is-enabled", "ok.timer")).stdout, "disabled\n");
  });

  test("a timer whose service does not exist is enabled but fails to start", async () => {
    await writeOn("/etc/systemd/system/orphan.timer", TIMER);
    const r = await systemctl("enable", "--now", "orphan.timer");
    assert.equal(r.code, 1, said(r));
    assert.match(r.stderr, /^Job for orphan\.timer failed\.\norphan\.timer: Refusing to start, unit orphan\.service to trigger not loaded\./);
    assert.equal((await systemctl("is-enabled", "orphan.timer")).stdout, "enabled\n");
    assert.equal((await systemctl("is-active", "orphan.timer")).stdout, "inactive\n");
  });
});
