import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cleanupStale, haproxyConfigTest, nginxConfigTest, Sandbox, sandboxNginxMain, startHaproxy, startNginx, type Netns } from "../../lab";

describe("daemon helpers", { timeout: 30_000 }, () => {
  let sb: Sandbox;
  let ns: Netns;

  before(async () => {
    await cleanupStale();
    sb = await Sandbox.create();
    ns = await sb.namespace("host");
  });

  after(async () => {
    await sb.teardown();
    assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
  });

  it("a daemon that dies on start fails at once with its own log, not after the wait", async () => {
    const t0 = Date.now();
    await assert.rejects(
      startNginx(sb, ns, { name: "nginx", config: sandboxNginxMain({ http: "  server { listen 8080; bogus_directive on; }" }), waitFor: [{ port: 8080 }] }),
      /exited .* before listening on \*:8080:[\s\S]*unknown directive "bogus_directive"/,
    );
    assert.ok(Date.now() - t0 < 2000);
  });

  it("restarting a daemon under the same name gets a fresh dir and log", async () => {
    const config = sandboxNginxMain({ http: '  server { listen 8080; location / { return 200 "hi\\n"; } }' });
    const first = await startNginx(sb, ns, { name: "web", config, waitFor: [{ port: 8080 }] });
    await first.process.stop();
    const second = await startNginx(sb, ns, { name: "web", config, waitFor: [{ port: 8080 }] });
    assert.notEqual(first.dir, second.dir);
    assert.notEqual(first.process.logPath, second.process.logPath);
    assert.equal((await ns.exec(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8080/"])).stdout, "hi\n");
    await second.process.stop();
  });

  it("haproxy always gets an admin stats socket; configs are checked with the real binaries", async () => {
    const hap = await startHaproxy(sb, ns, { name: "haproxy", config: "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n" });
    assert.ok(hap.statsSocket.endsWith("/admin.sock"));
    await hap.process.stop();

    const bad = join(sb.dir, "bad-haproxy.cfg");
    await writeFile(bad, "backend b\n    server s 127.0.0.1:1 chekc\n");
    const h = await haproxyConfigTest(bad);
    assert.equal(h.ok, false);
    assert.match(h.output, /unknown keyword 'chekc'/);

    const nginxDir = await sb.subdir("nginx-test");
    const good = join(nginxDir, "nginx.conf");
    await writeFile(good, sandboxNginxMain({ stream: "  server { listen 9443; return ok; }" }));
    const n = await nginxConfigTest(good, nginxDir);
    assert.equal(n.ok, true, n.output);
  });
});
