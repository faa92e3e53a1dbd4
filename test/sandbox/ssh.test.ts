import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { cleanupStale, RoutedNetwork, Sandbox, sshRun, startSshd, type Netns, type SshServer } from "../../lab";
import { hostKeyFromBootOutput, waitForBootCommand } from "../../components/deploy/deploy-commands";

// The deploy pushes files and runs the apply script over ssh; this is the
// real sshd and ssh client that its end-to-end test will use.
describe("sshd in a namespace", { timeout: 30_000 }, () => {
  let sb: Sandbox;
  let operator: Netns;
  let server: SshServer;

  before(async () => {
    await cleanupStale();
    sb = await Sandbox.create();
    const net = await RoutedNetwork.create(sb, { name: "prod", ipRange: "172.24.0.0/16" });
    operator = await sb.namespace("operator");
    const web = await sb.namespace("web");
    await net.attach(operator, { ip: "172.24.1.3" });
    await net.attach(web, { ip: "172.24.0.3" });
    server = await startSshd(sb, web, { address: "172.24.0.3" });
  });

  after(async () => {
    await sb.teardown();
    assert.deepEqual(sb.leftovers(), { namespaces: [], processes: [], files: [] });
  });

  it("runs a command as root on the server's side of the network, trusting the host key on first use", async () => {
    const r = await sshRun(operator, server, "id -u; ip -4 -br addr show dev eth-prod");
    assert.match(r.stdout, /^0\n/);
    assert.match(r.stdout, /172\.24\.0\.3\/32/);
    const known = await readFile(server.keys.knownHostsPath, "utf8");
    assert.ok(known.includes(server.keys.hostPublicKey), "accept-new remembered the host key");
  });

  it("feeds stdin to the remote command and reports its exit status", async () => {
    const r = await sshRun(operator, server, "sh -s", { input: "echo from-stdin; exit 7\n", allowFailure: true });
    assert.equal(r.stdout, "from-stdin\n");
    assert.equal(r.code, 7);
  });

  it("the deploy's boot step prints the server's own host key, and pinning what it printed admits that server", async () => {
    const incoming = `${await sb.subdir("boot")}/incoming`;
    const boot = await sshRun(operator, server, waitForBootCommand(incoming, `${server.keys.hostKeyPath}.pub`));
    const recorded = hostKeyFromBootOutput(boot.stdout);
    // What the server really presents, not what the file claims: the same key the client saw.
    assert.equal(recorded, server.keys.hostPublicKey.split(" ").slice(0, 2).join(" "));
    const pinned = await sshRun(operator, { ...server, keys: { ...server.keys, hostPublicKey: recorded } }, "true", { hostKey: "pinned" });
    assert.equal(pinned.code, 0);
    await writeFile(server.keys.knownHostsPath, "");
  });

  it("with a pinned host key, refuses a server whose key differs", async () => {
    const pinned = await sshRun(operator, server, "true", { hostKey: "pinned" });
    assert.equal(pinned.code, 0);
    const impostor: SshServer = { ...server, keys: { ...server.keys, hostPublicKey: server.keys.clientPublicKey } };
    const r = await sshRun(operator, impostor, "true", { hostKey: "pinned", allowFailure: true });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /host key verification failed/i);
    await writeFile(server.keys.knownHostsPath, ""); // leave no wrong pin behind for other cases
  });
});
