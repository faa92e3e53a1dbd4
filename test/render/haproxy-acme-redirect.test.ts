// The ACME backend of a stack whose servers name no responder (an attached stack of an older
// release) redirects the challenge to https on the LB's https port, whatever it is: the
// rendered lines, run by real HAProxy in a namespace, answered to curl.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cleanupStale, Sandbox, startHaproxy, type Netns } from "../../lab";
import { planStack } from "../../topology";
import { renderHaproxyConfig, renderHaproxyRoutes } from "../../render/haproxy";
import { ingressHost, prodTopology, withIngress } from "./validators/plans";

const isRoot = process.getuid?.() === 0;
let sb: Sandbox;
let ns: Netns;

before(async () => {
  if (!isRoot) return;
  await cleanupStale("igacme");
  sb = await Sandbox.create({ prefix: "igacme" });
  ns = await sb.namespace("lb");
});
after(async () => {
  if (isRoot) await sb.teardown();
});

/** The rendered lines of one section, from its header to the next section's. */
function section(text: string, header: string): string[] {
  const start = text.indexOf(`${header}\n`);
  assert.ok(start >= 0, `no "${header}" in:\n${text}`);
  const next = /\n(frontend|backend|listen|global|defaults) /.exec(text.slice(start + header.length));
  return text.slice(start, next ? start + header.length + next.index : undefined).split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
}

for (const https of [443, 8443]) {
  test(`a challenge for a backend without responders is redirected to https on port ${https}, path and query kept`, { skip: !isRoot && "needs root for namespaces" }, async () => {
    const lb = ingressHost(planStack(withIngress(prodTopology(), (i) => ({ ...i, ports: { http: 80, https } }))));
    const older = { ...lb.ingress!.fragment, backends: lb.ingress!.fragment.backends.map((b) => ({ ...b, servers: b.servers.map(({ acmePort: _, ...s }) => s) })) };
    const backend = section(renderHaproxyRoutes(older, lb.ingress!), "backend acme:prod_frontend_443");
    // The frontend's own lines for a challenge: the port it hands over, and the backend it picks (here: that one).
    const frontend = section(renderHaproxyConfig(lb), "frontend http_ingress").filter((l) => /acl acme_challenge|set-var\(txn\.https_port\)/.test(l));
    assert.equal(frontend.length, 2, frontend.join("\n"));
    const config = [
      "defaults",
      "    mode http",
      "    timeout connect 1s",
      "    timeout client 2s",
      "    timeout server 2s",
      "frontend http_ingress",
      "    bind 127.0.0.1:80",
      ...frontend,
      "    use_backend acme:prod_frontend_443 if acme_challenge",
      ...backend,
      "",
    ].join("\n");
    const hap = await startHaproxy(sb, ns, { name: `redirect-${https}`, config, waitFor: [{ port: 80 }] });
    try {
      const r = await ns.exec(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: fiscalismia.com", "http://127.0.0.1/.well-known/acme-challenge/tok-1?x=1"]);
      const port = https === 443 ? "" : `:${https}`;
      assert.equal(r.stdout, `301 https://fiscalismia.com${port}/.well-known/acme-challenge/tok-1?x=1`);
    } finally {
      await hap.process.stop();
    }
  });
}
