import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigValidationError, DEFAULT_IMAGES, validateStackConfig } from "../../topology";
import { validConfig } from "./fixtures";
import { REMOVED_SERVER_TYPES } from "../../topology/server-types";

function issuesOf(cfg: unknown): Array<{ path: string; message: string }> {
  try {
    validateStackConfig("t", cfg);
  } catch (e) {
    assert.ok(e instanceof ConfigValidationError, `expected ConfigValidationError, got ${String(e)}`);
    return e.issues.map((i) => ({ path: i.path, message: i.message }));
  }
  return [];
}

/** Asserts exactly one issue, at `path`, whose message matches. */
function rejects(mutate: (c: ReturnType<typeof validConfig>) => void, path: string, message: RegExp | string): void {
  const cfg = validConfig();
  mutate(cfg);
  const issues = issuesOf(cfg);
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues, null, 2)}`);
  assert.equal(issues[0]!.path, path);
  if (typeof message === "string") assert.equal(issues[0]!.message, message);
  else assert.match(issues[0]!.message, message);
}

test("the fixture is valid", () => {
  assert.deepEqual(issuesOf(validConfig()), []);
});

test("an IP outside its network", () => {
  rejects((c) => (c.servers[0].networks.prod = "172.25.0.3"), "servers[0].networks.prod", '172.25.0.3 is outside network "prod" (172.24.0.0/16); choose an address inside it');
});

test("an IP inside the network but in no subnet", () => {
  rejects((c) => (c.servers[0].networks.prod = "172.24.9.3"), "servers[0].networks.prod", '172.24.9.3 is not in any subnet of network "prod" (172.24.0.0/24, 172.24.1.0/24); add a subnet that holds it or choose an address in one');
});

test("the subnet gateway address is reserved", () => {
  rejects((c) => (c.servers[0].networks.prod = "172.24.0.1"), "servers[0].networks.prod", "172.24.0.1 is reserved in subnet 172.24.0.0/24 (network, gateway or broadcast address); use 172.24.0.2 or above");
});

test("two servers with the same IP", () => {
  rejects((c) => (c.servers[1].networks.prod = "172.24.0.3"), "servers[1].networks.prod", '172.24.0.3 in network "prod" is already taken by servers[0].networks.prod; give each server its own address');
});

test("the LB's IP colliding with a server's", () => {
  rejects((c) => (c.ingress.server.networks.prod = "172.24.0.4"), "ingress.server.networks.prod", '172.24.0.4 in network "prod" is already taken by servers[1].networks.prod; give each server its own address');
});

test("an attached LB's IP colliding with a server's", () => {
  rejects(
    (c) => (c.ingress = { mode: "attach", stack: "organization/hetzner-ingress/prod", network: "prod", ip: "172.24.0.3" }),
    "ingress.ip",
    '172.24.0.3 in network "prod" is already taken by servers[0].networks.prod; give each server its own address',
  );
});

test("overlapping network ranges", () => {
  rejects(
    (c) => c.networks.push({ name: "demo", ipRange: "172.24.128.0/17", subnets: [{ ipRange: "172.24.128.0/24" }] }),
    "networks[1].ipRange",
    '172.24.128.0/17 overlaps network "prod" (172.24.0.0/16); private networks must not overlap, or the LB cannot route to both',
  );
});

test("a subnet outside its network", () => {
  rejects((c) => c.networks[0].subnets.push({ ipRange: "172.25.0.0/24" }), "networks[0].subnets[2].ipRange", 'subnet 172.25.0.0/24 is not inside network "prod" (172.24.0.0/16); pick a subnet of it');
});

test("a public network range", () => {
  rejects((c) => (c.networks[0].ipRange = "8.8.0.0/16"), "networks[0].ipRange", /is not in a private range/);
});

test("a site naming an unknown server", () => {
  rejects((c) => (c.sites[0].server = "frontend2"), "sites[0].server", 'unknown server "frontend2"; declared servers are: frontend, backend');
});

test("a site on the load balancer itself", () => {
  rejects((c) => (c.sites[0].server = "loadbalancer"), "sites[0].server", '"loadbalancer" is the load balancer; sites run on backend servers listed under servers');
});

test("a site on the port of the server's ACME responder or of SSH", () => {
  rejects((c) => (c.sites[0].port = 8402), "sites[0].port", "port 8402 is the server's ACME challenge responder (plain HTTP for the LB); choose another port for the site");
  rejects((c) => (c.sites[0].port = 22), "sites[0].port", "port 22 is the server's SSH; choose another port for the site");
});

test("a duplicate SNI hostname, also after normalisation", () => {
  rejects((c) => (c.sites[1].hostname = "Fiscalismia.COM."), "sites[1].hostname", 'hostname "fiscalismia.com" is already routed by sites[0]; each hostname goes to exactly one server:port');
});

test("hostnames are lowercased and one trailing dot is stripped", () => {
  const c = validConfig();
  c.sites[0].hostname = "FISCALISMIA.com.";
  assert.equal(validateStackConfig("t", c).sites[0]!.hostname, "fiscalismia.com");
});

for (const [hostname, reason] of [
  ["172.24.0.3", 'it is an IP literal; TLS clients never send an address as SNI, use a DNS name'],
  ["[2001:db8::1]", "it is an IP literal; TLS clients never send an address as SNI, use a DNS name"],
  ["my_host.fiscalismia.com", 'label "my_host" contains an underscore, which is not valid in a hostname'],
  ["a..fiscalismia.com", 'it has an empty label (".." or a leading dot)'],
  ["bücher.fiscalismia.com", "it contains non-ASCII characters; write internationalised names as A-labels (xn--...)"],
  ["", "it is empty"],
  ["fiscalismia.com..", 'it has an empty label (".." or a leading dot)'],
] as const) {
  test(`an invalid hostname: ${JSON.stringify(hostname)}`, () => {
    rejects((c) => (c.sites[0].hostname = hostname), "sites[0].hostname", `"${hostname}" is not a valid SNI hostname: ${reason}`);
  });
}

test("a port out of range", () => {
  rejects((c) => (c.sites[0].port = 70000), "sites[0].port", "must be between 1 and 65535");
  rejects((c) => (c.sites[0].port = 0), "sites[0].port", "must be between 1 and 65535");
});

test("two sites on one server:port with different certificates", () => {
  rejects(
    (c) => c.sites.push({ hostname: "www.fiscalismia.com", server: "frontend", port: 443, tls: { source: "host", path: "/etc/letsencrypt/live/www.fiscalismia.com" } }),
    "sites[2].tls",
    "frontend:443 is also served by sites[0] with a different certificate; one listener has one certificate here, so give this site its own port or use one certificate (e.g. with both names as SANs) for both",
  );
});

test("two sites on one server:port with different TLS protocols", () => {
  rejects(
    (c) => c.sites.push({ hostname: "www.fiscalismia.com", server: "frontend", port: 443, tls: { source: "self-signed" }, tlsProtocols: ["TLSv1.3"] }),
    "sites[2].tlsProtocols",
    "frontend:443 is also served by sites[0] with TLS protocols TLSv1.2 TLSv1.3; sites on one listener share their TLS versions, so use the same list or another port",
  );
});

test("two sites on one server:port with the same certificate are fine", () => {
  const c = validConfig();
  c.sites.push({ hostname: "www.fiscalismia.com", server: "frontend", port: 443, tls: { source: "self-signed" } });
  assert.deepEqual(issuesOf(c), []);
});

test("more than 3 networks on one server", () => {
  rejects(
    (c) => {
      for (const n of [20, 21, 22]) c.networks.push({ name: `n${n}`, ipRange: `10.${n}.0.0/16`, subnets: [{ ipRange: `10.${n}.0.0/24` }] });
      c.servers[0].networks = { prod: "172.24.0.3", n20: "10.20.0.3", n21: "10.21.0.3", n22: "10.22.0.3" };
    },
    "servers[0].networks",
    'server "frontend" is in 4 networks; Hetzner allows at most 3 per server',
  );
});

test("an engine other than haproxy or ts", () => {
  rejects((c) => (c.ingress.engine = "nginx"), "ingress.engine", 'unknown engine "nginx"; use "haproxy" or "ts"');
});

test("stats enabled without a password secret", () => {
  rejects(
    (c) => delete c.ingress.stats.passwordSecret,
    "ingress.stats.passwordSecret",
    "stats is enabled without a password; name a secret config key (pulumi config set --secret statsPassword ...) or set stats.enabled: false",
  );
});

for (const cidr of ["0.0.0.0/0", "::/0"]) {
  test(`SSH open to ${cidr} without an explicit override`, () => {
    rejects(
      (c) => c.ssh.adminCidrs.push(cidr),
      "ssh.adminCidrs[1]",
      `${cidr} opens SSH to the whole internet; list your admin addresses instead, or set ssh.allowFromAnywhere: true to accept that risk explicitly`,
    );
  });
}

test("SSH open to the world is accepted with the override", () => {
  const c = validConfig();
  c.ssh = { adminCidrs: ["0.0.0.0/0", "::/0"], allowFromAnywhere: true };
  assert.deepEqual(issuesOf(c), []);
});

test("an image whose podman lacks Quadlet", () => {
  rejects(
    (c) => (c.servers[1].image = "debian-12"),
    "servers[1].image",
    'image "debian-12" ships podman 4.3, which lacks Quadlet (needs podman >= 4.4) so the rendered units cannot run; use one of ubuntu-24.04, debian-13, fedora-41, fedora-42, centos-stream-9, centos-stream-10, rocky-9, rocky-10, alma-9, alma-10',
  );
});

test("a location outside the network zone", () => {
  rejects((c) => (c.location = "ash"), "networkZone", "location ash is in network zone us-east, not eu-central; set networkZone: us-east");
});

test("an unknown ingress mode names both choices", () => {
  rejects((c) => (c.ingress.mode = "share"), "ingress.mode", 'ingress.mode must be "own" (this stack runs the LB) or "attach" (routes go to another stack\'s LB)');
});

test("a plaintext secret key in the project namespace is refused by name", () => {
  const issues = issuesOf({ ...validConfig(), statsPassword: "hunter2" });
  assert.deepEqual(issues, [
    {
      path: "(root)",
      message: 'unknown key "statsPassword"; if it holds a secret, set it with `pulumi config set --secret statsPassword ...` so it is stored encrypted',
    },
  ]);
});

test("every error is reported at once", () => {
  const c = validConfig();
  c.servers[0].networks.prod = "172.25.0.3";
  c.sites[1].server = "nope";
  c.ingress.engine = "nginx";
  c.ssh.adminCidrs = ["0.0.0.0/0"];
  const issues = issuesOf(c);
  assert.deepEqual(issues.map((i) => i.path).sort(), ["ingress.engine", "servers[0].networks.prod", "sites[1].server", "ssh.adminCidrs[0]"]);
});

test("the error message lists every issue with its path", () => {
  const c = validConfig();
  c.sites[0].server = "nope";
  assert.throws(() => validateStackConfig("prod", c), (e: Error) => {
    assert.match(e.message, /^stack "prod" config has 1 error:\n  - sites\[0\]\.server: unknown server "nope"/);
    return true;
  });
});

test("values rendered into files cannot smuggle in directives", () => {
  rejects(
    (c) => (c.sites[0].tls = { source: "host", path: "/etc/letsencrypt/live/x\nPodmanArgs=--privileged" }),
    "sites[0].tls.path",
    "must be an absolute path of letters, digits, '.', '_', '-' and '/'",
  );
  rejects((c) => (c.sites[0].tls = { source: "host", path: "/etc/letsencrypt/../../root" }), "sites[0].tls.path", "must not contain '..'");
  rejects(
    (c) => (c.containerImages = { nginx: "nginx:1.28\nVolume=/:/host" }),
    "containerImages.nginx",
    "must be an image reference such as docker.io/library/nginx:1.28-alpine, optionally @sha256:<digest>",
  );
  rejects((c) => (c.servers[0].serverType = "cx22; reboot"), "servers[0].serverType", "must be a Hetzner server type such as cx23");
});

test("an image pinned by digest is accepted", () => {
  const c = validConfig();
  c.containerImages = { nginx: `docker.io/library/nginx:1.28-alpine@sha256:${"a".repeat(64)}` };
  assert.deepEqual(issuesOf(c), []);
});

test("a server type Hetzner removed is refused by name, with its successor, for servers and the LB", () => {
  rejects(
    (c) => (c.servers[0].serverType = "cx22"),
    "servers[0].serverType",
    "server type cx22 was removed by Hetzner (its changelog, 2025-10-16; list checked 2026-12-01); use cx23, its successor",
  );
  rejects(
    (c) => (c.ingress.server.serverType = "cpx21"),
    "ingress.server.serverType",
    "server type cpx21 was removed by Hetzner (its changelog, 2025-10-16; list checked 2026-12-01); use cpx22, its successor",
  );
  // Every successor is itself a current type: the table never sends a user to another removed one.
  for (const [removed, successor] of Object.entries(REMOVED_SERVER_TYPES)) {
    assert.equal(REMOVED_SERVER_TYPES[successor], undefined, `${removed} -> ${successor}`);
  }
});

test("ingress.stack: the owning stack's bare name or a full <org>/<project>/<stack>, nothing in between", () => {
  const attach = (stack: string) => (c: ReturnType<typeof validConfig>) => (c.ingress = { mode: "attach", stack, network: "prod", ip: "172.24.1.3" });
  for (const stack of ["prod", "organization/hetzner-ingress/prod"]) {
    const c = validConfig();
    attach(stack)(c);
    assert.deepEqual(issuesOf(c), [], stack);
  }
  rejects(attach("organization/prod"), "ingress.stack", 'write the owning stack\'s name, e.g. "prod", or "<org>/<project>/<stack>" for a stack of another organization or project');
});

test("allow-lists are measured, not matched: halves of the internet are the internet", () => {
  rejects(
    (c) => (c.ssh.adminCidrs = ["0.0.0.0/1", "128.0.0.0/1"]),
    "ssh.adminCidrs",
    "together these cover 2^32 IPv4 addresses (the whole IPv4 internet), not an operator's networks; list your admin addresses instead, or set ssh.allowFromAnywhere: true to accept that risk explicitly",
  );
  rejects(
    (c) => (c.ssh.adminCidrs = ["198.51.100.7/32", "::/1", "8000::/2"]),
    "ssh.adminCidrs",
    "together these cover about 2^127 IPv6 addresses (as much as a /1), not an operator's networks; list your admin addresses instead, or set ssh.allowFromAnywhere: true to accept that risk explicitly",
  );
  // A /8 is still an operator's network (a large company's); overlaps count once.
  for (const cidrs of [["10.0.0.0/8"], ["10.0.0.0/8", "10.1.0.0/16"], ["2001:db8::/32"]]) {
    const c = validConfig();
    c.ssh.adminCidrs = cidrs;
    assert.deepEqual(issuesOf(c), [], cidrs.join(","));
  }
  const open = validConfig();
  open.ssh.adminCidrs = ["0.0.0.0/1", "128.0.0.0/1"];
  open.ssh.allowFromAnywhere = true;
  assert.deepEqual(issuesOf(open), [], "the explicit override still works");
});

test("the stats page, basic auth in clear text, is never open to a large part of the internet", () => {
  rejects(
    (c) => {
      c.ingress.stats = { enabled: true, passwordSecret: "statsPassword", allowedCidrs: ["0.0.0.0/0"] };
    },
    "ingress.stats.allowedCidrs",
    "together these cover 2^32 IPv4 addresses (the whole IPv4 internet), and the stats page sends its password in clear text (HTTP basic auth); list your admin networks, or reach it through SSH from wherever SSH is allowed: ssh -L 8404:127.0.0.1:8404 root@<lb>",
  );
  const tunnel = validConfig();
  tunnel.ingress.stats = { enabled: true, passwordSecret: "statsPassword", allowedCidrs: ["198.51.100.7/32"] };
  assert.deepEqual(issuesOf(tunnel), []);
});

test("ingress.metrics: scrapers are servers of the stack or addresses inside the LB's networks; each error names the field and the fix", () => {
  const metrics = (c: ReturnType<typeof validConfig>, m: Record<string, unknown>) => (c.ingress.metrics = m);
  const ok = validConfig();
  metrics(ok, { enabled: true, scrapers: ["frontend", "172.24.0.0/24", "172.24.0.9"] });
  assert.deepEqual(issuesOf(ok), []);
  // Off by default, on 8405 once enabled.
  const defaults = validateStackConfig("t", validConfig()).ingress;
  assert.ok(defaults.mode === "own");
  assert.deepEqual(defaults.metrics, { enabled: false, port: 8405, scrapers: [] });

  const where = "prod (172.24.0.0/16)";
  rejects((c) => metrics(c, { enabled: true }), "ingress.metrics.scrapers", `metrics are enabled but nothing may scrape them; name the server that runs Prometheus (e.g. monitoring) or a CIDR inside the LB's network(s): ${where}`);
  rejects((c) => metrics(c, { enabled: true, scrapers: ["prometheus"] }), "ingress.metrics.scrapers[0]", `unknown server "prometheus"; name a server of this stack (frontend, backend) or write a CIDR inside the LB's network(s): ${where}`);
  rejects((c) => metrics(c, { enabled: true, scrapers: ["loadbalancer"] }), "ingress.metrics.scrapers[0]", '"loadbalancer" is the load balancer, which always reaches its own metrics; name the server that scrapes them');
  const outside = (entry: string) =>
    `${entry} is outside the LB's private network(s) ${where}, and metrics are served on the LB's private address only, so it could never scrape them; write an address or CIDR inside one of them, or a server's name`;
  rejects((c) => metrics(c, { enabled: true, scrapers: ["203.0.113.5"] }), "ingress.metrics.scrapers[0]", outside("203.0.113.5"));
  rejects((c) => metrics(c, { enabled: true, scrapers: ["172.16.0.0/12"] }), "ingress.metrics.scrapers[0]", outside("172.16.0.0/12"));
  // Hetzner's private networks are IPv4: an IPv6 scraper could not reach the private address either.
  rejects((c) => metrics(c, { enabled: true, scrapers: ["2001:db8::7"] }), "ingress.metrics.scrapers[0]", outside("2001:db8::7"));
  rejects((c) => metrics(c, { enabled: true, scrapers: ["172.24.0.3/24"] }), "ingress.metrics.scrapers[0]", '"172.24.0.3/24" has host bits set; the network is 172.24.0.0/24');
  rejects(
    (c) => {
      c.networks.push({ name: "ops", ipRange: "10.50.0.0/16", subnets: [{ ipRange: "10.50.0.0/24" }] });
      c.servers.push({ name: "prometheus", serverType: "cx23", image: "debian-13", networks: { ops: "10.50.0.2" } });
      metrics(c, { enabled: true, scrapers: ["prometheus"] });
    },
    "ingress.metrics.scrapers[0]",
    `server "prometheus" shares no network with the load balancer (${where}), and metrics are served on the LB's private address only; put it in one of them or name another scraper`,
  );
  rejects((c) => metrics(c, { enabled: true, port: 443, scrapers: ["frontend"] }), "ingress.metrics.port", "metrics port 443 is a public port; choose another (8405 is the usual)");
  rejects((c) => metrics(c, { enabled: true, port: 8404, scrapers: ["frontend"] }), "ingress.metrics.port", "metrics port 8404 is the stats page's port; choose another (8405 is the usual)");
  rejects((c) => metrics(c, { enabled: true, port: 22, scrapers: ["frontend"] }), "ingress.metrics.port", "metrics port 22 is SSH's port; choose another (8405 is the usual)");
  rejects((c) => metrics(c, { enabled: true, port: "8405", scrapers: ["frontend"] }), "ingress.metrics.port", "must be a port number");
  rejects((c) => metrics(c, { enabled: true, scraper: ["frontend"] }), "ingress.metrics", 'unknown key "scraper"; check its spelling against docs/config.md');
});

test("ingress.attachedStacks: each stack with a private network of its own and DNS zones of its own", () => {
  type Own = Extract<ReturnType<typeof validConfig>["ingress"], { mode: "own" }>;
  const attach = (c: ReturnType<typeof validConfig>, ...stacks: unknown[]) => ((c.ingress as Own & { attachedStacks: unknown[] }).attachedStacks = stacks);
  const demo = { stack: "demo", network: "172.20.0.0/16", zones: ["demo.example.com"] };
  assert.deepEqual(issuesOf({ ...validConfig(), ingress: { ...validConfig().ingress, attachedStacks: [demo] } }), []);
  rejects((c) => attach(c, "demo"), "ingress.attachedStacks[0]", /write each attached stack as \{ stack: <name>, network: <its network's CIDR>, zones: \[<DNS zones it may route>\] \}/);
  rejects((c) => attach(c, { ...demo, network: "172.24.128.0/17" }), "ingress.attachedStacks[0].network", /overlaps this stack's network "prod" \(172\.24\.0\.0\/16\); an attached stack's servers must lie in a network of its own/);
  rejects((c) => attach(c, { ...demo, network: "203.0.113.0/24" }), "ingress.attachedStacks[0].network", /is not a private IPv4 range/);
  rejects((c) => attach(c, demo, { ...demo, stack: "demo2", network: "172.20.5.0/24", zones: ["demo2.example.com"] }), "ingress.attachedStacks[1].network", /overlaps the network of attached stack "demo"/);
  rejects((c) => attach(c, demo, { stack: "demo2", network: "172.21.0.0/16", zones: ["example.com"] }), "ingress.attachedStacks[1].zones[0]", 'zone "example.com" overlaps zone "demo.example.com" of attached stack "demo"; give each stack zones of its own');
  rejects((c) => attach(c, { ...demo, zones: ["com"] }), "ingress.attachedStacks[0].zones[0]", /"com" is a top-level domain/);
  rejects((c) => attach(c, { ...demo, zones: ["*.example.com"] }), "ingress.attachedStacks[0].zones[0]", /is not a DNS zone: wildcards are not allowed here/);
  rejects((c) => attach(c, { ...demo, zones: [] }), "ingress.attachedStacks[0].zones", /name at least one DNS zone/);
  rejects((c) => attach(c, demo, { ...demo, network: "172.21.0.0/16", zones: ["demo.example.org"] }), "ingress.attachedStacks[1].stack", 'stack "demo" is listed twice; list it once');
  rejects((c) => attach(c, { ...demo, stack: "t" }), "ingress.attachedStacks[0].stack", '"t" is this stack; list the stacks that attach to it');
});

test("the default images are pinned by digest, with the version they hold in the tag", () => {
  const images = validateStackConfig("t", validConfig()).containerImages;
  assert.deepEqual(images, DEFAULT_IMAGES);
  const { lego, ...official } = DEFAULT_IMAGES;
  for (const ref of Object.values(official)) {
    assert.match(ref, /^docker\.io\/library\/(haproxy|nginx|node):\d+\.\d+\.\d+-alpine@sha256:[0-9a-f]{64}$/);
  }
  // lego's own official image (not a Docker official one), on the 4.x line whose flags renew.sh uses.
  assert.match(lego, /^docker\.io\/goacme\/lego:v4\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
});

test("a stack fits one Hetzner spread placement group: at most 10 servers, the LB included", () => {
  rejects(
    (c) => {
      for (let i = 0; i < 8; i++) c.servers.push({ ...c.servers[0]!, name: `extra${i}`, networks: { prod: `172.24.0.${20 + i}` } });
    },
    "servers",
    /^11 servers \(the LB included\), but a Hetzner spread placement group, one per stack, holds at most 10; split the servers over two stacks$/,
  );
});
