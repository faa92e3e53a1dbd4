// The checks that break something on purpose and put it back: the rate limit, a stopped
// nginx, and the original DNAT failure.
import assert from "node:assert/strict";
import type { RoutingRow } from "../topology";
import { curlThroughLb, isUp, rowState, uniqueServers, waitRows, type IngressCheck } from "./check-helpers";
import { CONTAINER_BRIDGE, publishThroughDnat } from "./dnat-scenario";
import { NAT_TABLE } from "../lab/container";
import { INTERNET } from "./ingress-sandbox";
import { probeTcp } from "../lab/tcp-probe";
import { tlsBurst, tlsGet } from "../lab/tls-client";

export const rateLimitCheck = (hostname: string): IngressCheck => ({
  name: "60 connections in 3 s from one client trip the rate limit; another client is still served",
  async run(s) {
    const threshold = s.plan.lb.ingress?.rateLimit.threshold ?? 50;
    const t0 = Date.now();
    const burst = await tlsBurst(s.clients.flood, { address: s.lb4, port: 443, servername: hostname, count: 60, spacingMs: 20, timeoutMs: 1500 });
    const served = burst.filter((r) => r.outcome === "response" && r.status === 200).length;
    const firstDrop = burst.findIndex((r) => r.outcome !== "response");
    assert.ok(served <= threshold, `${served} of 60 served; the threshold is ${threshold}`);
    assert.ok(firstDrop >= 0, "nothing was dropped");
    // Served first: a client that never reached the LB would pass every assertion below.
    assert.ok(served >= threshold / 2 && firstDrop >= served, `only ${served} of 60 served before the first drop (at ${firstDrop}); the threshold is ${threshold}`);
    assert.ok(burst.slice(firstDrop).every((r) => r.outcome !== "response" && r.bytes === 0), "a connection after the first drop got bytes");
    const after = await tlsGet(s.clients.flood, { address: s.lb4, port: 443, servername: hostname, timeoutMs: 1000 });
    assert.equal(after.bytes, 0, `the flooding client was served again at once (${after.outcome})`);
    const other = await curlThroughLb(s.clients.client2, hostname, s.lb4);
    assert.equal(other.status, 200, `second client: exit ${other.code} ${other.err}`);
    assert.match(other.body, new RegExp(INTERNET.client2.replace(/\./g, "\\.")));
    const outcomes = [...new Set(burst.slice(firstDrop).map((r) => r.outcome))].join("/");
    return `${served} served, ${60 - served} dropped (${outcomes}, 0 bytes) in ${Date.now() - t0} ms; ${INTERNET.client2} still served`;
  },
});

export const failoverCheck = (victim: RoutingRow): IngressCheck => ({
  name: `stopping nginx on ${victim.server}: DOWN within fall x inter, only its names stop, back UP after restart`,
  async run(s) {
    const rows = s.rows;
    const mine = rows.filter((r) => r.server === victim.server);
    const others = rows.filter((r) => r.server !== victim.server);
    const hc = s.plan.healthCheck;
    await s.stopNginx(victim.server);
    let downMs = -1;
    try {
      downMs = await waitRows(s, uniqueServers(mine), (st) => st.status === "DOWN", hc.fall * hc.interval + 3000);
      assert.ok(downMs <= hc.fall * hc.interval + 300, `DOWN after ${downMs} ms; fall x inter is ${hc.fall * hc.interval} ms`);
      for (const r of mine) {
        const c = await curlThroughLb(s.clients.client, r.hostname, s.lb4);
        assert.notEqual(c.status, 200, `${r.hostname} still served with ${victim.server} stopped`);
      }
      for (const r of others) assert.equal((await curlThroughLb(s.clients.client, r.hostname, s.lb4)).status, 200, `${r.hostname} not served`);
    } finally {
      if (s.nginxStopped(victim.server)) await s.startNginx(victim.server);
    }
    const upMs = await waitRows(s, uniqueServers(mine), isUp, hc.rise * hc.interval + 3000);
    for (const r of mine) assert.equal((await curlThroughLb(s.clients.client, r.hostname, s.lb4)).status, 200, `${r.hostname} not served after restart`);
    return `DOWN after ${downMs} ms (fall x inter = ${hc.fall * hc.interval} ms), ${others.length} other names served, UP ${upMs} ms after restart`;
  },
});

export const dnatCheck = (server: string): IngressCheck => ({
  name: `regression: ${server} behind podman-style DNAT with forwarding off -> Layer4 timeout; host networking -> UP`,
  async run(s) {
    const rows = uniqueServers(s.rows.filter((r) => r.server === server));
    const hc = s.plan.healthCheck;
    const published = await publishThroughDnat(s, server);
    let timeouts = "";
    let failure: unknown;
    try {
      const w = s.webHost(server);
      const lbView = await probeTcp(s.lbNs, w.ip, rows[0]?.port ?? 443, 500);
      const local = await probeTcp(w.ns, "127.0.0.1", rows[0]?.port ?? 443, 500);
      assert.equal(lbView.outcome, "timeout", `nc from the LB: ${lbView.outcome}`);
      assert.equal(local.outcome, "connected", `nc on the host: ${local.outcome}`);
      const ms = await waitRows(s, rows, (st) => st.status === "DOWN" && st.checkStatus === "L4TOUT", hc.fall * (hc.interval + hc.timeout) + 3000);
      const states = await s.serverStates();
      timeouts = rows.map((r) => `${r.backend} ${rowState(states, r)?.checkStatus} "${rowState(states, r)?.checkDescription}"`).join(", ") + ` after ${ms} ms`;
    } catch (e) {
      failure = e;
    }
    // The check's own failure is the one to report; putting the machine back is tried either way.
    await published.restore().catch((e: unknown) => {
      failure ??= e;
    });
    if (failure !== undefined) throw failure;
    // The machine is as deployed again: no bridge, no DNAT, forwarding as it was.
    const w = s.webHost(server);
    assert.notEqual((await w.ns.ip(["link", "show", CONTAINER_BRIDGE], { allowFailure: true })).code, 0, `${CONTAINER_BRIDGE} is left on the machine`);
    assert.notEqual((await w.ns.exec(["nft", "list", "table", "ip", NAT_TABLE], { allowFailure: true })).code, 0, "the DNAT table is left on the machine");
    await waitRows(s, rows, isUp, hc.rise * hc.interval + 3000);
    for (const r of s.rows.filter((x) => x.server === server)) {
      assert.equal((await curlThroughLb(s.clients.client, r.hostname, s.lb4)).status, 200, `${r.hostname} not served after restore`);
    }
    return `DNAT: LB nc timeout, local connect ok, ${timeouts}; host networking: UP (L7OK)`;
  },
});

