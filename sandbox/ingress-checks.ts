// The end-to-end checks, run against a sandbox the local engine deployed, by the e2e suite (one
// `it` each) and by `npm run sandbox -- test`. Each check throws on failure and returns what it
// saw. Every engine passes every check: none is skipped.
import assert from "node:assert/strict";
import { ACME_CHALLENGE_PORT, type RoutingRow } from "../topology";
import * as paths from "../topology/paths";
import { pollUntil } from "../lab/command";
import { curl, curlThroughLb, isUp, re, uniqueServers, waitRows, type CheckResult, type IngressCheck } from "./check-helpers";
import { dnatCheck, failoverCheck, rateLimitCheck } from "./fault-checks";
import { acmeFailureCheck, acmeIssuedCheck, acmeRenewalCheck } from "./acme-checks";
import { metricsCheck } from "./metrics-checks";
import { INTERNET, type IngressSandbox } from "./ingress-sandbox";
import type { IngressSandboxPlan } from "./ingress-plan";
import { probeTcp } from "../lab/tcp-probe";
import { tlsGet } from "../lab/tls-client";

export type { CheckResult, IngressCheck } from "./check-helpers";

function lbPrivateIpFor(s: IngressSandbox, row: RoutingRow): string {
  const host = s.webHost(row.server).plan;
  const nets = new Set(host.privateIps.map((p) => p.network));
  return s.plan.lbNetworks.find((n) => nets.has(n.network))?.ip ?? "?";
}

function listenerTargets(s: IngressSandbox): { host: string; ip: string; port: number }[] {
  return [...s.web.values()].flatMap((w) =>
    w.plan.listens.filter((l) => l.by === "nginx").map((l) => ({ host: w.plan.name, ip: w.ip, port: l.port })),
  );
}


function routeCheck(row: RoutingRow): IngressCheck {
  return {
    name: `route ${row.hostname} -> ${row.server} ${row.address}:${row.port}, nginx sees the client`,
    async run(s) {
      // Only what nginx writes from now on counts: the log keeps earlier runs' lines.
      const seen = (await s.nginxLog(row.server)).length;
      const r = await curlThroughLb(s.clients.client, row.hostname, s.lb4);
      assert.equal(r.status, 200, `curl: exit ${r.code} ${r.err}`);
      assert.match(r.body, new RegExp(`real client IP is ${re(INTERNET.client4)}\\b`), `body: ${r.body}`);
      const lbIp = lbPrivateIpFor(s, row);
      const line = new RegExp(`^${re(INTERNET.client4)} .*"GET / HTTP/1\\.1" 200 .*sni=${re(row.hostname)} .*lb=${re(lbIp)} `, "m");
      await pollUntil(`access log of ${row.server}`, async () => (line.test((await s.nginxLog(row.server)).slice(seen)) ? true : undefined), { timeoutMs: 3000 });
      return `200 "${r.body.trim()}"; access log: client ${INTERNET.client4}, via LB ${lbIp}`;
    },
  };
}

const ipv6Check = (row: RoutingRow): IngressCheck => ({
  name: `IPv6 client: ${row.hostname} over the LB's IPv6 address, nginx sees ${INTERNET.client6}`,
  async run(s) {
    const r = await curlThroughLb(s.clients.client, row.hostname, s.lb6);
    assert.equal(r.status, 200, `curl: exit ${r.code} ${r.err}`);
    assert.ok(r.body.includes(`real client IP is ${INTERNET.client6}`), `body: ${r.body}`);
    return `200 over [${s.lb6}] "${r.body.trim()}"`;
  },
});

const healthCheck: IngressCheck = {
  name: "the LB reports every server UP (L7OK)",
  async run(s) {
    const rows = uniqueServers(s.rows);
    const hc = s.plan.healthCheck;
    // A fresh deploy's last reload (demo's routes) may be a moment ago: rise passes after it.
    let ms: number;
    try {
      ms = await waitRows(s, rows, isUp, (hc.rise + 2) * (hc.interval + hc.timeout) + 3000);
    } catch (e) {
      // Say what each server's own side shows: is its nginx unit running, and what did it last log.
      const sides = await Promise.all(
        [...new Set(rows.map((r) => r.server))].map(async (server) => {
          const active = await s.onHost(server, ["/usr/local/sbin/systemctl", "is-active", "nginx.service"]);
          return `${server}: nginx.service ${active.stdout.trim() || `exit ${active.code}`}; log tail:\n${(await s.nginxLog(server)).split("\n").slice(-6).join("\n")}`;
        }),
      );
      throw new Error(`${(e as Error).message}\n${sides.join("\n")}`);
    }
    return `${rows.length} servers UP (L7OK) ${ms} ms into the check (interval ${hc.interval} ms, rise ${hc.rise})`;
  },
};

function noAnswerCheck(label: string, servername: string | undefined): IngressCheck {
  return {
    name: `${label} gets no answer (no byte, connection closed or timed out)`,
    async run(s) {
      const r = await tlsGet(s.clients.client, { address: s.lb4, port: 443, timeoutMs: 1500, ...(servername ? { servername } : {}) });
      assert.equal(r.bytes, 0, `received ${r.bytes} bytes (${r.outcome})`);
      assert.ok(["closed", "reset", "timeout"].includes(r.outcome), `outcome ${r.outcome}: ${r.detail}`);
      return `${r.outcome} after ${r.ms} ms, 0 bytes`;
    },
  };
}

const redirectCheck = (hostname: string): IngressCheck => ({
  name: "port 80 answers 301 to https with the same host and path",
  async run(s) {
    const url = `http://${hostname}/some/path?x=1`;
    const r = await curl(s.clients.client, ["--resolve", `${hostname}:80:${s.lb4}`, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", url]);
    assert.equal(r.out, `301 https://${hostname}/some/path?x=1`, `curl: exit ${r.code} ${r.err}`);
    return r.out;
  },
});

const acmeChallengeCheck: IngressCheck = {
  name: "ACME http-01: port 80 sends a challenge for each routed name to its server's responder, 404 for any other name",
  async run(s) {
    const token = `sandbox-${Date.now().toString(36)}`;
    const dir = `${paths.ACME_WEBROOT}/.well-known/acme-challenge`;
    const seen: string[] = [];
    try {
      // What an ACME client on each server does: a token file in the webroot, its own per server.
      for (const w of s.web.values()) {
        const put = await s.onHost(w.plan.name, ["sh", "-c", `mkdir -p ${dir} && printf '%s' "${token}.${w.plan.name}" >${dir}/${token}`]);
        assert.equal(put.code, 0, put.stderr);
      }
      for (const row of s.rows) {
        const r = await curl(s.clients.client, ["--resolve", `${row.hostname}:80:${s.lb4}`, "-w", " %{http_code}", `http://${row.hostname}/.well-known/acme-challenge/${token}`]);
        assert.equal(r.out, `${token}.${row.server} 200`, `${row.hostname}: ${r.err}`);
        seen.push(`${row.hostname} -> ${row.server}`);
      }
      const unrouted = await curl(s.clients.client, ["--resolve", `unknown.fiscalismia.com:80:${s.lb4}`, "-o", "/dev/null", "-w", "%{http_code}", `http://unknown.fiscalismia.com/.well-known/acme-challenge/${token}`]);
      assert.equal(unrouted.out, "404", "a name the LB does not route gets no challenge answer");
      // Nobody but the LB reaches a responder: the intruder in its network is dropped.
      for (const w of s.web.values()) {
        const intruder = s.intruderFor(w.ip);
        const r = await probeTcp(intruder.ns, w.ip, ACME_CHALLENGE_PORT, 1000);
        assert.equal(r.outcome, "timeout", `intruder -> ${w.ip}:${ACME_CHALLENGE_PORT}: ${r.outcome}`);
      }
    } finally {
      for (const w of s.web.values()) await s.onHost(w.plan.name, ["rm", "-f", `${dir}/${token}`]);
    }
    return `${seen.join(", ")}; unknown name 404; responders (:${ACME_CHALLENGE_PORT}) dropped for the intruders`;
  },
};

const statsAuthCheck: IngressCheck = {
  name: "the stats page needs auth: 401 without, 200 with (from the admin source)",
  async run(s) {
    const port = s.plan.lb.ingress?.stats.port ?? 8404;
    const url = `http://${s.lb4}:${port}/stats`;
    const w = ["-o", "/dev/null", "-w", "%{http_code}"];
    const anon = await curl(s.clients.admin, [...w, url]);
    const wrong = await curl(s.clients.admin, [...w, "-u", `${s.stats.user}:wrong`, url]);
    const authed = await curl(s.clients.admin, [...w, "-u", `${s.stats.user}:${s.stats.password}`, url]);
    assert.equal(anon.out, "401", `without auth: ${anon.out} ${anon.err}`);
    assert.equal(wrong.out, "401", `wrong password: ${wrong.out} ${wrong.err}`);
    assert.equal(authed.out, "200", `with auth: ${authed.out} ${authed.err}`);
    return `from ${INTERNET.admin}: 401 anonymous, 401 wrong password, 200 with the stack's password`;
  },
};

const statsSourceCheck: IngressCheck = {
  name: "the stats page refuses sources outside stats.allowedCidrs",
  async run(s) {
    const port = s.plan.lb.ingress?.stats.port ?? 8404;
    const [a, b] = await Promise.all([probeTcp(s.clients.client, s.lb4, port, 1000), probeTcp(s.clients.client2, s.lb4, port, 1000)]);
    assert.equal(a.outcome, "timeout", `from ${INTERNET.client4}: ${a.outcome}`);
    assert.equal(b.outcome, "timeout", `from ${INTERNET.client2}: ${b.outcome}`);
    return `${INTERNET.client4} and ${INTERNET.client2}: timeout (dropped)`;
  },
};

const clientIsolationCheck: IngressCheck = {
  name: "a client cannot reach any backend directly",
  async run(s) {
    const results = await Promise.all(listenerTargets(s).map(async (t) => ({ t, r: await probeTcp(s.clients.client, t.ip, t.port, 1000) })));
    for (const { t, r } of results) assert.notEqual(r.outcome, "connected", `${t.ip}:${t.port} answered the client`);
    return results.map(({ t, r }) => `${t.ip}:${t.port} ${r.outcome}`).join(", ");
  },
};

const proxyListenerCheck: IngressCheck = {
  name: "only the LB reaches nginx's PROXY listeners (an intruder in the private network is dropped)",
  async run(s) {
    const results = await Promise.all(
      listenerTargets(s).map(async (t) => {
        const neighbour = s.intruderFor(t.ip);
        // The intruder does reach the host (the firewall lets ICMP in): a timeout below is the drop, not a broken path.
        const ping = await neighbour.ns.exec(["ping", "-c", "1", "-W", "2", t.ip], { allowFailure: true });
        assert.equal(ping.code, 0, `intruder ${neighbour.ip} cannot ping ${t.ip}: ${ping.stdout}${ping.stderr}`);
        return { t, neighbour, intruder: await probeTcp(neighbour.ns, t.ip, t.port, 1000), lb: await probeTcp(s.lbNs, t.ip, t.port, 1000) };
      }),
    );
    for (const { t, neighbour, intruder, lb } of results) {
      assert.equal(intruder.outcome, "timeout", `intruder ${neighbour.ip} -> ${t.ip}:${t.port}: ${intruder.outcome}`);
      assert.equal(lb.outcome, "connected", `LB -> ${t.ip}:${t.port}: ${lb.outcome}`);
    }
    return `intruders (${s.clients.intruders.map((i) => i.ip).join(", ")}): ping answered, timeout on ${results.length} listeners; LB: connected`;
  },
};

/** The checks for a sandbox of this plan, in the order they run. */
export function ingressChecks(plan: IngressSandboxPlan): IngressCheck[] {
  const rows = plan.routing;
  const first = rows[0];
  if (!first) return [];
  const acme = plan.webHosts.some((h) => h.web?.acme !== undefined);
  const checks: IngressCheck[] = [healthCheck, ...(acme ? [acmeIssuedCheck] : []), ...rows.map(routeCheck), ipv6Check(first)];
  checks.push(noAnswerCheck("an unknown SNI", "unknown.fiscalismia.com"), noAnswerCheck("a ClientHello without SNI", undefined));
  checks.push(redirectCheck(first.hostname), acmeChallengeCheck);
  if (plan.lb.ingress?.stats.enabled) checks.push(statsAuthCheck, statsSourceCheck);
  checks.push(clientIsolationCheck, proxyListenerCheck);
  if (acme) {
    const prodRow = rows.find((r) => r.stack === "prod") ?? first;
    const demoRow = rows.find((r) => r.stack === "demo") ?? first;
    checks.push(acmeRenewalCheck(prodRow), acmeFailureCheck(demoRow));
  }
  // Prefer a server with a single name, so the others that keep working are on other servers.
  const victim = rows.find((r) => rows.filter((x) => x.server === r.server).length === 1 && r.stack === "prod") ?? first;
  checks.push(failoverCheck(victim));
  if (rows.some((r) => r.server === "demo")) checks.push(dnatCheck("demo"));
  checks.push(rateLimitCheck(first.hostname));
  if (plan.lb.ingress?.metrics) checks.push(metricsCheck);
  return checks;
}

/** Runs checks in order, reporting each as it finishes. */
export async function runChecks(s: IngressSandbox, checks: readonly IngressCheck[], report: (r: CheckResult) => void = () => undefined): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const c of checks) {
    const t0 = Date.now();
    let result: CheckResult;
    try {
      result = { name: c.name, status: "pass", detail: await c.run(s), ms: Date.now() - t0 };
    } catch (e) {
      result = { name: c.name, status: "fail", detail: e instanceof Error ? e.message : String(e), ms: Date.now() - t0 };
    }
    results.push(result);
    report(result);
  }
  return results;
}
