// The LB's Prometheus endpoint as the stack's monitoring server scrapes it (its private address,
// read by Prometheus' own parser), and what everyone else gets: nothing, from another server on
// the same private network, an intruder there, or the internet.
import assert from "node:assert/strict";
import { pollUntil } from "../lab/command";
import { parseExposition, sampleValue, type MetricFamily } from "../lab/prometheus-text";
import { probeTcp } from "../lab/tcp-probe";
import { curl, uniqueServers, type IngressCheck } from "./check-helpers";
import type { IngressSandbox, WebHost } from "./ingress-sandbox";
import type { IngressSandboxPlan } from "./ingress-plan";

type Series = readonly [name: string, labels: Readonly<Record<string, string>>];

interface EngineSeries {
  up(backend: string, server: string): Series;
  /** Connections the https listener's rate limit refused. */
  rateLimited(m: readonly MetricFamily[]): number | undefined;
}

/** The same facts under each engine's names: HAProxy's exporter, and the ts proxy's (docs/proxy.md). */
const SERIES: Readonly<Record<IngressSandboxPlan["engine"], EngineSeries>> = {
  haproxy: {
    up: (backend, server) => ["haproxy_server_status", { proxy: backend, server, state: "UP" }],
    // The rate limit is the frontend's only `tcp-request connection` refusal: a connection it drops
    // never becomes a session (HAProxy counts silent-drops in requests_denied, with the unknown SNIs).
    rateLimited: (m) => {
      const proxy = { proxy: "https_ingress" };
      const connections = sampleValue(m, "haproxy_frontend_connections_total", proxy);
      const sessions = sampleValue(m, "haproxy_frontend_sessions_total", proxy);
      return connections === undefined || sessions === undefined ? undefined : connections - sessions;
    },
  },
  ts: {
    up: (backend, server) => ["ingress_server_up", { backend, server }],
    rateLimited: (m) => sampleValue(m, "ingress_frontend_rate_limited_total", { frontend: "https" }),
  },
};

const value = (m: readonly MetricFamily[], [name, labels]: Series): number | undefined => sampleValue(m, name, labels);

/** curl's word for a request nobody answered: exit 7 (refused, unreachable) or 28 (timed out), and no status. */
async function unanswered(run: () => Promise<{ code: number | null; out: string; err: string }>, who: string): Promise<string> {
  const r = await run();
  assert.ok((r.code === 7 || r.code === 28) && r.out === "000", `${who}: curl exit ${r.code}, status ${r.out} (${r.err})`);
  return `${who} ${r.code === 28 ? "timeout" : "refused"}`;
}

/** Runs after the rate-limit check, whose dropped connections it finds counted. */
export const metricsCheck: IngressCheck = {
  name: "metrics: the monitoring server scrapes the LB's private address (a series per server, the rate limit's drops); another server, an intruder and the internet get no answer",
  async run(s) {
    const metrics = s.plan.lb.ingress?.metrics;
    if (!metrics) throw new Error("the LB does not enable metrics");
    const address = metrics.addresses[0]!;
    const url = `http://${address}:${metrics.port}${metrics.path}`;
    const network = s.plan.lb.privateIps.find((p) => p.ip === address)?.network;
    const onNetwork = [...s.web.values()].filter((w) => w.plan.privateIps.some((p) => p.network === network));
    const scraper = onNetwork.find((w) => metrics.scrapers.includes(`${w.ip}/32`));
    const neighbour = onNetwork.find((w) => w !== scraper);
    if (!scraper || !neighbour) throw new Error(`network ${network} needs a scraper and another server; has ${onNetwork.map((w) => w.plan.name).join(", ")}`);
    const series = SERIES[s.plan.engine];
    const servers = uniqueServers(s.rows);

    // The failover check before this one restarts an nginx: its server may still be coming back.
    const scraped = await pollUntil(
      `every server UP in a scrape from ${scraper.plan.name}`,
      async () => {
        const m = await scrape(s, scraper, url);
        return servers.every((r) => value(m, series.up(r.backend, r.server)) === 1) ? m : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    ).catch(async (e: Error) => {
      const m = await scrape(s, scraper, url);
      const seen = servers.map((r) => `${r.backend}/${r.server}=${value(m, series.up(r.backend, r.server))}`);
      throw new Error(`${e.message}: ${seen.join(", ")}`);
    });
    const drops = series.rateLimited(scraped) ?? 0;
    assert.ok(drops > 0, `${drops} connections rate-limited by the metrics, after the rate-limit check dropped some`);
    const expiries: string[] = [];
    if (s.plan.engine === "ts") {
      // Only the ts proxy exports the certificate the health location names (HAProxy shows it as text only).
      for (const r of servers) {
        const expiry = sampleValue(scraped, "ingress_server_certificate_expiry_timestamp_seconds", { backend: r.backend, server: r.server });
        assert.ok(expiry !== undefined && expiry > Date.now() / 1000, `${r.backend}/${r.server}: certificate expiry ${expiry}`);
        expiries.push(new Date(expiry * 1000).toISOString().slice(0, 10));
      }
    }

    const refusals = [
      await unanswered(() => onHost(s, neighbour, ["-o", "/dev/null", "-w", "%{http_code}", url]), `${neighbour.plan.name} (${neighbour.ip})`),
      await unanswered(() => curl(s.clients.client, ["-o", "/dev/null", "-w", "%{http_code}", `http://${s.lb4}:${metrics.port}${metrics.path}`], 2), `the internet client to ${s.lb4}`),
    ];
    const intruder = s.intruderFor(address);
    const probe = await probeTcp(intruder.ns, address, metrics.port, 1000);
    assert.equal(probe.outcome, "timeout", `intruder ${intruder.ip} -> ${address}:${metrics.port}: ${probe.outcome}`);
    refusals.push(`intruder ${intruder.ip} timeout`);
    const certs = expiries.length > 0 ? `; certificates expire ${[...new Set(expiries)].join(", ")}` : "";
    return `${scraper.plan.name} (${scraper.ip}) scraped ${url}: ${scraped.length} families, ${servers.length} servers UP, ${drops} rate-limited${certs}; ${refusals.join(", ")}`;
  },
};

/** curl on a web server's machine, as its Prometheus would ask. */
async function onHost(s: IngressSandbox, host: WebHost, args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await s.onHost(host.plan.name, ["curl", "-sS", "--max-time", "2", ...args]);
  return { code: r.code, out: r.stdout, err: r.stderr.trim() };
}

async function scrape(s: IngressSandbox, scraper: WebHost, url: string): Promise<MetricFamily[]> {
  const r = await onHost(s, scraper, ["-f", url]);
  assert.equal(r.code, 0, `scrape of ${url} from ${scraper.plan.name}: curl exit ${r.code} ${r.err}`);
  return parseExposition(r.out);
}
