// The end-to-end checks, run against a live IngressSandbox by the e2e suite (one `it` each) and
// by `npm run sandbox -- test`. Each check throws on failure and returns what it saw; a check
// that needs something the engine or the chosen stacks lack says so with SkipCheck.
import assert from "node:assert/strict";
import type { RoutingRow } from "../topology";
import { pollUntil } from "../lab/command";
import { curl, curlThroughLb, isUp, SkipCheck, uniqueServers, waitRows, type CheckResult, type IngressCheck } from "./check-helpers";
import { dnatCheck, failoverCheck, rateLimitCheck } from "./fault-checks";
import { INTERNET, type IngressSandbox } from "./ingress-sandbox";
import { servedRows, type IngressSandboxPlan } from "./ingress-plan";
import { probeTcp } from "../lab/tcp-probe";
import { tlsGet } from "../lab/tls-client";

export { SkipCheck, type CheckResult, type IngressCheck } from "./check-helpers";

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
      const r = await curlThroughLb(s.clients.client, row.hostname);
      assert.equal(r.status, 200, `curl: exit ${r.code} ${r.err}`);
      assert.match(r.body, new RegExp(`real client IP is ${INTERNET.client4.replace(/\./g, "\\.")}\\b`), `body: ${r.body}`);
      const w = s.webHost(row.server);
      const lbIp = lbPrivateIpFor(s, row);
      const line = new RegExp(`^${INTERNET.client4.replace(/\./g, "\\.")} .*"GET / HTTP/1\\.1" 200 .*sni=${row.hostname.replace(/\./g, "\\.")} .*lb=${lbIp.replace(/\./g, "\\.")} `, "m");
      await pollUntil(`access log of ${row.server}`, async () => (line.test((await w.nginx?.log()) ?? "") ? true : undefined), { timeoutMs: 2000 });
      return `200 "${r.body.trim()}"; access log: client ${INTERNET.client4}, via LB ${lbIp}`;
    },
  };
}

const ipv6Check = (row: RoutingRow): IngressCheck => ({
  name: `IPv6 client: ${row.hostname} over [${INTERNET.lb6}], nginx sees ${INTERNET.client6}`,
  async run(s) {
    const r = await curlThroughLb(s.clients.client, row.hostname, INTERNET.lb6);
    assert.equal(r.status, 200, `curl: exit ${r.code} ${r.err}`);
    assert.ok(r.body.includes(`real client IP is ${INTERNET.client6}`), `body: ${r.body}`);
    return `200 "${r.body.trim()}"`;
  },
});

const healthCheck: IngressCheck = {
  name: "the LB reports every server UP (L7OK) within two check intervals",
  async run(s) {
    const rows = uniqueServers(servedRows(s.plan));
    const interval = s.plan.healthCheck.interval;
    const deadline = s.lb.startedAt + 2 * interval;
    const late = Date.now() > deadline;
    await waitRows(s, rows, isUp, late ? 2 * interval : deadline - Date.now());
    const within = Date.now() - s.lb.startedAt;
    if (late) return `${rows.length} servers UP (the LB has been up ${(within / 1000).toFixed(0)} s; only a fresh sandbox shows the startup time)`;
    return `${rows.length} servers UP ${within} ms after the LB started listening (2 x interval = ${2 * interval} ms)`;
  },
};

function noAnswerCheck(label: string, servername: string | undefined): IngressCheck {
  return {
    name: `${label} gets no answer (no byte, connection closed or timed out)`,
    async run(s) {
      const r = await tlsGet(s.clients.client, { address: INTERNET.lb4, port: 443, timeoutMs: 1500, ...(servername ? { servername } : {}) });
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
    const r = await curl(s.clients.client, ["--resolve", `${hostname}:80:${INTERNET.lb4}`, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", url]);
    assert.equal(r.out, `301 https://${hostname}/some/path?x=1`, `curl: exit ${r.code} ${r.err}`);
    return r.out;
  },
});

const statsAuthCheck: IngressCheck = {
  name: "the stats page needs auth: 401 without, 200 with (from the admin source)",
  async run(s) {
    const port = s.plan.lb.ingress?.stats.port ?? 8404;
    const url = `http://${INTERNET.lb4}:${port}/stats`;
    const w = ["-o", "/dev/null", "-w", "%{http_code}"];
    const anon = await curl(s.clients.admin, [...w, url]);
    const wrong = await curl(s.clients.admin, [...w, "-u", `${s.stats.user}:wrong`, url]);
    const authed = await curl(s.clients.admin, [...w, "-u", `${s.stats.user}:${s.stats.password}`, url]);
    assert.equal(anon.out, "401", `without auth: ${anon.out} ${anon.err}`);
    assert.equal(wrong.out, "401", `wrong password: ${wrong.out} ${wrong.err}`);
    assert.equal(authed.out, "200", `with auth: ${authed.out} ${authed.err}`);
    return `from ${INTERNET.admin}: 401 anonymous, 401 wrong password, 200 with the generated password`;
  },
};

const statsSourceCheck: IngressCheck = {
  name: "the stats page refuses sources outside stats.allowedCidrs",
  async run(s) {
    const port = s.plan.lb.ingress?.stats.port ?? 8404;
    const [a, b] = await Promise.all([probeTcp(s.clients.client, INTERNET.lb4, port, 1000), probeTcp(s.clients.client2, INTERNET.lb4, port, 1000)]);
    assert.equal(a.outcome, "timeout", `from ${INTERNET.client4}: ${a.outcome}`);
    assert.equal(b.outcome, "timeout", `from ${INTERNET.client2}: ${b.outcome}`);
    return `${INTERNET.client4} and ${INTERNET.client2}: timeout (nftables drop)`;
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
      listenerTargets(s).map(async (t) => ({
        t,
        intruder: await probeTcp(s.clients.intruder, t.ip, t.port, 1000),
        lb: await probeTcp(s.lbNs, t.ip, t.port, 1000),
      })),
    );
    for (const { t, intruder, lb } of results) {
      assert.equal(intruder.outcome, "timeout", `intruder -> ${t.ip}:${t.port}: ${intruder.outcome}`);
      assert.equal(lb.outcome, "connected", `LB -> ${t.ip}:${t.port}: ${lb.outcome}`);
    }
    return `intruder (${s.intruderAddresses.join(", ")}): timeout on ${results.length} listeners; LB: connected`;
  },
};

/** The checks for a sandbox of this plan, in the order they run. */
export function ingressChecks(plan: IngressSandboxPlan): IngressCheck[] {
  const rows = servedRows(plan);
  const first = rows[0];
  if (!first) return [];
  const checks: IngressCheck[] = [healthCheck, ...rows.map(routeCheck), ipv6Check(first)];
  checks.push(noAnswerCheck("an unknown SNI", "unknown.fiscalismia.com"), noAnswerCheck("a ClientHello without SNI", undefined));
  checks.push(redirectCheck(first.hostname));
  if (plan.lb.ingress?.stats.enabled) checks.push(statsAuthCheck, statsSourceCheck);
  checks.push(clientIsolationCheck, proxyListenerCheck);
  // Prefer a server with a single name, so the others that keep working are on other servers.
  const victim = rows.find((r) => rows.filter((x) => x.server === r.server).length === 1 && r.stack === "prod") ?? first;
  checks.push(failoverCheck(victim));
  if (rows.some((r) => r.server === "demo")) checks.push(dnatCheck("demo"));
  checks.push(rateLimitCheck(first.hostname));
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
      const skip = e instanceof SkipCheck;
      result = { name: c.name, status: skip ? "skip" : "fail", detail: e instanceof Error ? e.message : String(e), ms: Date.now() - t0 };
    }
    results.push(result);
    report(result);
  }
  return results;
}
