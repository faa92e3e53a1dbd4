// The prod stack under Pulumi's mocks: the real index.ts with Pulumi.prod.yaml. Checks the
// exact resource set, every private IP and firewall rule, the deploy commands and their
// order, and that nothing secret travels in the clear.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, stackFile } from "../../scripts/stack-files";
import { renderCloudInit } from "../../render/cloud-init";
import { OWNER_OUTPUTS } from "../../components/deploy/outputs";
import { hostKeyFromBootOutput, waitForBootCommand, writeSecretsCommand } from "../../components/deploy/deploy-commands";
import { configFromYaml, isSecret, loadProgram, one, ofType, reveal, sent, urnOf, type Loaded, type Recorded } from "./harness";

const STATS_PASSWORD = "correct horse battery staple";
let loaded: Loaded;

test.before(async () => {
  loaded = await loadProgram({ stack: "prod", config: configFromYaml(stackFile("prod")), secrets: { statsPassword: STATS_PASSWORD } });
});
test.after(() => rmSync(loaded.bundleDir, { recursive: true, force: true }));

const HOSTS = ["loadbalancer", "monitoring", "frontend", "backend"] as const;
const T = {
  network: "hcloud:index/network:Network",
  subnet: "hcloud:index/networkSubnet:NetworkSubnet",
  server: "hcloud:index/server:Server",
  serverNetwork: "hcloud:index/serverNetwork:ServerNetwork",
  firewall: "hcloud:index/firewall:Firewall",
  placement: "hcloud:index/placementGroup:PlacementGroup",
  sshKey: "hcloud:index/sshKey:SshKey",
  key: "tls:index/privateKey:PrivateKey",
  command: "command:remote:Command",
  copy: "command:remote:CopyToRemote",
  primaryIp: "hcloud:index/primaryIp:PrimaryIp",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
};
const WEB = ["monitoring", "frontend", "backend"] as const;
const SITE_OF: Record<(typeof WEB)[number], string> = { monitoring: "monitoring.fiscalismia.com", frontend: "fiscalismia.com", backend: "backend.fiscalismia.com" };

test("the exact set of resources", () => {
  const expected = [
    "ingress:hetzner:PrivateNetwork network-prod",
    `${T.network} network-prod`,
    `${T.subnet} network-prod-subnet-172-24-0-0-24`,
    `${T.subnet} network-prod-subnet-172-24-1-0-24`,
    "ingress:hetzner:DeployKey deploy-key",
    `${T.key} deploy-key`,
    `${T.sshKey} deploy-key`,
    `${T.placement} spread`,
    ...HOSTS.flatMap((h) => [
      `ingress:hetzner:Firewall firewall-${h}`,
      `${T.firewall} firewall-${h}`,
      `ingress:hetzner:Server server-${h}`,
      `${T.server} server-${h}`,
      `${T.serverNetwork} server-${h}-network-prod`,
      `ingress:hetzner:HostDeploy deploy-${h}`,
      `${T.command} deploy-${h}-boot`,
      `${T.copy} deploy-${h}-bundle`,
      `${T.command} deploy-${h}-apply`,
    ]),
    `${T.command} deploy-loadbalancer-secrets`,
    // The LB's addresses outlive its server.
    "ingress:hetzner:PrimaryIps ips-loadbalancer",
    `${T.primaryIp} ips-loadbalancer-ipv4`,
    `${T.primaryIp} ips-loadbalancer-ipv6`,
    // demo may attach (ingress.attachedStacks): a key of its own, good for its routes only.
    "ingress:hetzner:RoutesKeys routes-key",
    `${T.key} routes-key-demo`,
    // Each web server gets a self-signed stand-in per site until certbot's certificate exists.
    ...WEB.flatMap((h) => {
      const key = SITE_OF[h].replace(/\./g, "-");
      return [`${T.command} deploy-${h}-secrets`, `${T.key} deploy-${h}-tls-key-${key}`, `${T.selfSigned} deploy-${h}-tls-cert-${key}`];
    }),
  ].sort();
  assert.deepEqual(loaded.resources.map((r) => `${r.type} ${r.name}`).sort(), expected);
});

test("the network: protected, with two cloud subnets in eu-central", () => {
  const net = one(loaded, T.network, "network-prod");
  assert.deepEqual(net.inputs, {
    name: "prod-prod",
    ipRange: "172.24.0.0/16",
    deleteProtection: true,
    labels: { stack: "prod", role: "network", "managed-by": "pulumi-hetzner-ingress" },
  });
  for (const range of ["172.24.0.0/24", "172.24.1.0/24"]) {
    const subnet = [...ofType(loaded, T.subnet).values()].find((s) => s.inputs["ipRange"] === range)!;
    assert.deepEqual(subnet.inputs, { networkId: Number(net.id), type: "cloud", networkZone: "eu-central", ipRange: range });
  }
});

test("every server: its firewall from first boot, the deploy key, the spread group, protection, stable user data", () => {
  const key = one(loaded, T.sshKey, "deploy-key");
  const placement = one(loaded, T.placement, "spread");
  assert.deepEqual(placement.inputs, { name: "prod-spread", type: "spread", labels: { stack: "prod", role: "placement", "managed-by": "pulumi-hetzner-ingress" } });
  for (const host of HOSTS) {
    const server = one(loaded, T.server, `server-${host}`);
    const firewall = one(loaded, T.firewall, `firewall-${host}`);
    assert.deepEqual(server.inputs, {
      name: `prod-${host}`,
      serverType: "cx23",
      image: "debian-13",
      location: "fsn1",
      labels: { stack: "prod", role: host === "loadbalancer" ? "ingress" : "web", "managed-by": "pulumi-hetzner-ingress" },
      sshKeys: [key.id],
      firewallIds: [Number(firewall.id)],
      placementGroupId: Number(placement.id),
      publicNets: [
        host === "loadbalancer"
          ? { ipv4Enabled: true, ipv6Enabled: true, ipv4: Number(one(loaded, T.primaryIp, "ips-loadbalancer-ipv4").id), ipv6: Number(one(loaded, T.primaryIp, "ips-loadbalancer-ipv6").id) }
          : { ipv4Enabled: true, ipv6Enabled: true },
      ],
      userData: renderCloudInit(),
      deleteProtection: true,
      rebuildProtection: true,
    });
    assert.ok(firewall.seq < server.seq, `${host}: the firewall exists before the server boots`);
  }
});

test("the LB's primary IPs: kept when a server is deleted, protected in prod, in the stack's location", () => {
  for (const type of ["ipv4", "ipv6"]) {
    assert.deepEqual(one(loaded, T.primaryIp, `ips-loadbalancer-${type}`).inputs, {
      name: `prod-loadbalancer-${type}`,
      type,
      location: "fsn1",
      assigneeType: "server",
      autoDelete: false,
      deleteProtection: true,
      labels: { stack: "prod", role: "primary-ip", "managed-by": "pulumi-hetzner-ingress" },
    });
    const o = sent(loaded, T.primaryIp, `ips-loadbalancer-${type}`);
    assert.equal(o.protect, true);
    assert.deepEqual(o.ignoreChanges, ["location"]);
  }
});

test("every server's private IP, in the subnet that holds it", () => {
  const net = one(loaded, T.network, "network-prod");
  const ips: Record<string, [string, string]> = {
    loadbalancer: ["172.24.1.3", "172.24.1.0/24"],
    monitoring: ["172.24.0.2", "172.24.0.0/24"],
    frontend: ["172.24.0.3", "172.24.0.0/24"],
    backend: ["172.24.0.4", "172.24.0.0/24"],
  };
  for (const host of HOSTS) {
    const [ip, range] = ips[host]!;
    const attachment = one(loaded, T.serverNetwork, `server-${host}-network-prod`);
    assert.deepEqual(attachment.inputs, { serverId: Number(one(loaded, T.server, `server-${host}`).id), subnetId: `${net.id}-${range}`, ip, aliasIps: [] });
  }
});

test("every cloud firewall rule, exactly", () => {
  const admin = ["198.51.100.7/32"];
  const ssh = { direction: "in", protocol: "tcp", port: "22", sourceIps: admin, description: "SSH for admins and deploys" };
  assert.deepEqual(one(loaded, T.firewall, "firewall-loadbalancer").inputs, {
    name: "prod-loadbalancer",
    labels: { stack: "prod", role: "ingress", "managed-by": "pulumi-hetzner-ingress" },
    rules: [
      { direction: "in", protocol: "tcp", port: "80", sourceIps: ["0.0.0.0/0", "::/0"], description: "HTTP to the LB (redirects to HTTPS)" },
      { direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0", "::/0"], description: "HTTPS to the LB (TLS passthrough)" },
      { direction: "in", protocol: "tcp", port: "8404", sourceIps: admin, description: "LB stats page" },
      ssh,
    ],
  });
  for (const host of ["monitoring", "frontend", "backend"]) {
    assert.deepEqual(one(loaded, T.firewall, `firewall-${host}`).inputs, {
      name: `prod-${host}`,
      labels: { stack: "prod", role: "web", "managed-by": "pulumi-hetzner-ingress" },
      rules: [ssh],
    });
  }
});

function steps(host: string): { boot: Recorded; bundle: Recorded; apply: Recorded; secrets?: Recorded } {
  const secrets = loaded.resources.find((r) => r.name === `deploy-${host}-secrets`);
  return {
    boot: one(loaded, T.command, `deploy-${host}-boot`),
    bundle: one(loaded, T.copy, `deploy-${host}-bundle`),
    apply: one(loaded, T.command, `deploy-${host}-apply`),
    ...(secrets ? { secrets } : {}),
  };
}

test("each deploy: wait for cloud-init, copy the bundle named by its hash, run apply.sh keyed by that hash", async () => {
  const hashes = loaded.exports["bundleHashes"] as Record<string, string>;
  for (const host of HOSTS) {
    const hash = hashes[host]!;
    const role = host === "loadbalancer" ? "ingress" : "web";
    const s = steps(host);
    assert.equal(s.boot.inputs["create"], waitForBootCommand());
    assert.equal(s.bundle.inputs["remotePath"], "/srv/ingress/incoming");
    const serverId = one(loaded, T.server, `server-${host}`).id;
    // The server's id too: a replaced server gets the bundle copied and applied again.
    assert.deepEqual(s.bundle.inputs["triggers"], [hash, serverId]);
    assert.deepEqual(s.boot.inputs["triggers"], [serverId]);
    const source = s.bundle.inputs["source"] as { path: Promise<string> };
    const localDir = await source.path;
    assert.equal(localDir, join(loaded.bundleDir, "prod", host, hash));
    assert.match(readFileSync(join(localDir, "MANIFEST"), "utf8"), /^apply\.sh 0755 [0-9a-f]{64}$/m);
    assert.deepEqual(s.apply.inputs["triggers"], [hash, serverId]);
    if (s.secrets) assert.deepEqual(s.secrets.inputs["triggers"], [serverId]);
    for (const step of [s.boot, s.apply, ...(s.secrets ? [s.secrets] : [])]) {
      assert.equal(step.inputs["addPreviousOutputInEnv"], false, `${step.name}: sends no PULUMI_COMMAND_* variables, which Debian's sshd refuses`);
    }
    assert.equal(
      s.apply.inputs["create"],
      `/bin/bash /srv/ingress/incoming/${hash}/apply.sh --bundle /srv/ingress/incoming/${hash} --role ${role} && ` +
        `find /srv/ingress/incoming -mindepth 1 -maxdepth 1 ! -name ${hash} -mmin +1440 -exec rm -rf -- {} +`,
    );
    const connection = reveal(s.apply.inputs["connection"]) as Record<string, unknown>;
    assert.equal(connection["host"], one(loaded, T.server, `server-${host}`).state["ipv4Address"]);
    // First contact (boot) records the host key; every later step insists on it.
    assert.equal("hostKey" in (reveal(s.boot.inputs["connection"]) as Record<string, unknown>), false);
    const recorded = hostKeyFromBootOutput(String(s.boot.state["stdout"]));
    for (const step of [s.bundle, s.apply, ...(s.secrets ? [s.secrets] : [])]) {
      assert.equal((reveal(step.inputs["connection"]) as Record<string, unknown>)["hostKey"], recorded, `${step.name} pins the host key`);
    }
    if (host === "loadbalancer") assert.equal(loaded.exports["lbHostKey"], recorded, "attached stacks read the LB's key");
    assert.equal(connection["user"], "root");
    // Five minutes of pulumi-command's backoff (components/ssh-retry.ts) for a booting server.
    assert.equal(connection["dialErrorLimit"], 68);
  }
});

test("registration order: firewall, server, ServerNetwork, then boot -> bundle -> (secrets) -> apply", () => {
  for (const host of HOSTS) {
    const s = steps(host);
    const attachment = one(loaded, T.serverNetwork, `server-${host}-network-prod`);
    const firewall = one(loaded, T.firewall, `firewall-${host}`);
    const server = one(loaded, T.server, `server-${host}`);
    assert.ok(firewall.seq < server.seq && server.seq < attachment.seq, host);
    assert.ok(attachment.seq < s.boot.seq, `${host}: the ServerNetwork is registered before the boot wait`);
    assert.ok(s.boot.seq < s.bundle.seq && s.bundle.seq < s.apply.seq, `${host}: boot -> bundle -> apply`);
    if (s.secrets) assert.ok(s.boot.seq < s.secrets.seq && s.secrets.seq < s.apply.seq, `${host}: secrets are on disk before apply validates`);
  }
});

test("stats.env reaches the LB only through secret stdin, mode 0600 under /srv/ingress/secrets, never logged", () => {
  const secrets = one(loaded, T.command, "deploy-loadbalancer-secrets");
  assert.equal(secrets.inputs["create"], writeSecretsCommand());
  assert.equal(secrets.inputs["update"], `${writeSecretsCommand()} && { test ! -e /etc/containers/systemd/haproxy.container || systemctl try-restart haproxy.service; }`);
  assert.equal(secrets.inputs["logging"], "none");
  const stdin = secrets.inputs["stdin"];
  assert.ok(isSecret(stdin), "stdin is a secret");
  const files = new Map(
    String(reveal(stdin))
      .trimEnd()
      .split("\n")
      .map((line) => line.split("\t") as [string, string])
      .map(([path, b64]) => [path, Buffer.from(b64, "base64").toString("utf8")]),
  );
  assert.deepEqual([...files.keys()], ["/srv/ingress/secrets/stats.env", "/srv/ingress/secrets/ssh/authorized_keys"]);
  assert.equal(files.get("/srv/ingress/secrets/stats.env"), `STATS_USER=admin\nSTATS_PASSWORD=${STATS_PASSWORD}\n`);
  // demo's routes key, bound to the forced command that handles demo's routes and nothing else.
  assert.equal(
    files.get("/srv/ingress/secrets/ssh/authorized_keys"),
    'restrict,command="/bin/bash /srv/ingress/current/apply.sh --attached demo" ssh-ed25519 AAAAmockrouteskeydemo routes-demo\n',
  );
  // The password appears nowhere else: not in another input, not in a local bundle file.
  const elsewhere = loaded.resources.filter((r) => r !== secrets && JSON.stringify(reveal(r.inputs)).includes(STATS_PASSWORD));
  assert.deepEqual(elsewhere.map((r) => r.name), []);
  const bundleText = Object.keys(loaded.exports["bundleHashes"] as object).map((h) => readFileSync(join(loaded.bundleDir, "prod", h, (loaded.exports["bundleHashes"] as Record<string, string>)[h]!, "MANIFEST"), "utf8"));
  assert.ok(bundleText.every((t) => !t.includes(STATS_PASSWORD)));
});

test("the deploy key: ed25519, its private half secret wherever it goes", () => {
  assert.deepEqual(one(loaded, T.key, "deploy-key").inputs, { algorithm: "ED25519" });
  assert.deepEqual(one(loaded, T.sshKey, "deploy-key").inputs, {
    name: "prod-deploy",
    // Without the generator's trailing newline: Hetzner stores the key trimmed, and publicKey is ForceNew.
    publicKey: "ssh-ed25519 AAAAmockdeploykey",
    labels: { stack: "prod", role: "deploy-key", "managed-by": "pulumi-hetzner-ingress" },
  });
  for (const r of [...ofType(loaded, T.command).values(), ...ofType(loaded, T.copy).values()]) {
    assert.ok(isSecret(r.inputs["connection"]), `${r.name}: connection (with the private key) is secret`);
    assert.match(String((reveal(r.inputs["connection"]) as Record<string, unknown>)["privateKey"]), /mock-deploy-key/);
  }
  // Not exported: demo reads prod's outputs, and the deploy key is root on every prod server.
  assert.equal(loaded.exports["deployPrivateKey"], undefined);
});

test("outputs: LB addresses, DNS records for every hostname, stats URL, SSH per host, each name's certificate, and what attached stacks read", () => {
  const lb = one(loaded, T.server, "server-loadbalancer");
  const v4 = String(lb.state["ipv4Address"]);
  const v6 = String(lb.state["ipv6Address"]);
  const e = loaded.exports;
  assert.equal(e["engine"], "haproxy");
  assert.equal(e["lbIpv4"], v4);
  assert.equal(e["lbIpv6"], v6);
  assert.equal(e["lbServerId"], lb.id);
  assert.equal(e["statsUrl"], `http://${v4}:8404/stats`);
  assert.deepEqual(
    e["dnsRecordsToCreate"],
    ["backend.fiscalismia.com", "fiscalismia.com", "monitoring.fiscalismia.com"].flatMap((name) => [
      { name, type: "A", value: v4 },
      { name, type: "AAAA", value: v6 },
    ]),
  );
  assert.deepEqual(
    e["sshCommands"],
    Object.fromEntries(HOSTS.map((h) => [h, `ssh -i ./deploy-key root@${String(one(loaded, T.server, `server-${h}`).state["ipv4Address"])}`])),
  );
  // Each name's certificate: from Let's Encrypt by lego on its own server, how it renews.
  const certificates = e["certificates"] as Record<string, { server: string; source: string; issuer: string; renewal: string }>;
  assert.deepEqual(Object.keys(certificates).sort(), ["backend.fiscalismia.com", "fiscalismia.com", "monitoring.fiscalismia.com"]);
  assert.deepEqual(certificates["fiscalismia.com"], {
    server: "frontend",
    source: "acme",
    issuer: "Let's Encrypt (ACME, http-01)",
    renewal: "lego on frontend (acme.timer), 30 days before expiry; a self-signed stand-in until the first",
  });
  // Attached stacks learn nothing of the LB's settings: they send data, the LB renders it.
  assert.equal(e["lbRouteSettings"], undefined);
  for (const name of Object.values(OWNER_OUTPUTS)) assert.ok(e[name] !== undefined, `owner output ${name} is exported`);
  assert.deepEqual([...loaded.secretExports], ["routesKeys"]);
  assert.deepEqual(Object.keys(e["routesKeys"] as object), ["demo"]);
  assert.equal(e["routesBundleHash"], undefined);
});

test("the program is the one Pulumi runs: Pulumi.yaml names this project with the nodejs runtime", () => {
  const yaml = readFileSync(join(REPO_ROOT, "Pulumi.yaml"), "utf8");
  assert.match(yaml, /^name: hetzner-ingress$/m);
  assert.match(yaml, /^ {2}name: nodejs$/m);
});

// The options the program really sent (read from the mock monitor's requests; see harness.ts).
test("sent options: prod protects what holds state, servers ignore replacing changes, deploy steps die with their server", () => {
  for (const subnet of ofType(loaded, T.subnet).keys()) assert.equal(sent(loaded, T.subnet, subnet).deleteBeforeReplace, true, `${subnet}: replaced delete first`);
  for (const [type, name] of [
    [T.network, "network-prod"],
    [T.subnet, "network-prod-subnet-172-24-0-0-24"],
    [T.key, "deploy-key"],
    [T.sshKey, "deploy-key"],
    [T.primaryIp, "ips-loadbalancer-ipv4"],
    [T.primaryIp, "ips-loadbalancer-ipv6"],
    ...HOSTS.flatMap((h) => [
      [T.firewall, `firewall-${h}`],
      [T.server, `server-${h}`],
      [T.serverNetwork, `server-${h}-network-prod`],
    ]),
  ] as const) {
    assert.equal(sent(loaded, type, name).protect, true, `${name} is protected`);
  }
  for (const host of HOSTS) {
    const server = urnOf(loaded, T.server, `server-${host}`);
    assert.deepEqual(sent(loaded, T.server, `server-${host}`).ignoreChanges, ["userData", "sshKeys", "image", "location", "serverType"]);
    // Delete first: the replacement needs the old one's name and private IP (and the LB its primary IPs).
    assert.equal(sent(loaded, T.server, `server-${host}`).deleteBeforeReplace, true, `${host}: server replaced delete first`);
    assert.equal(sent(loaded, T.serverNetwork, `server-${host}-network-prod`).deleteBeforeReplace, true, `${host}: ServerNetwork replaced delete first`);
    const s = steps(host);
    for (const step of [s.boot, s.bundle, s.apply, ...(s.secrets ? [s.secrets] : [])]) {
      const o = sent(loaded, step.type, step.name);
      assert.equal(o.deletedWith, server, `${step.name} is deletedWith its server`);
      assert.equal(o.protect, false, `${step.name} is not protected`);
    }
    const deps = (r: Recorded) => sent(loaded, r.type, r.name).dependencies;
    assert.ok(deps(s.boot).includes(urnOf(loaded, T.serverNetwork, `server-${host}-network-prod`)), `${host}: boot waits for the ServerNetwork`);
    assert.ok(deps(s.boot).includes(server), `${host}: boot waits for the server (and so for its firewall)`);
    assert.ok(deps(s.bundle).includes(urnOf(loaded, s.boot.type, s.boot.name)), `${host}: the copy waits for boot`);
    assert.ok(deps(s.apply).includes(urnOf(loaded, s.bundle.type, s.bundle.name)), `${host}: apply waits for the copy`);
    // apply.sh's output is validators' output: never in the state in clear text.
    assert.deepEqual(sent(loaded, s.apply.type, s.apply.name).additionalSecretOutputs.slice().sort(), ["connection", "stderr", "stdin", "stdout"]);
    if (s.secrets) {
      assert.ok(deps(s.apply).includes(urnOf(loaded, s.secrets.type, s.secrets.name)), `${host}: apply waits for the secret files`);
      assert.deepEqual(sent(loaded, s.secrets.type, s.secrets.name).additionalSecretOutputs.slice().sort(), ["connection", "stderr", "stdin", "stdout"]);
    }
    assert.ok(sent(loaded, T.server, `server-${host}`).dependencies.includes(urnOf(loaded, T.firewall, `firewall-${host}`)), `${host}: the server waits for its firewall`);
  }
});
