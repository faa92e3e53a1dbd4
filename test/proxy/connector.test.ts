// How a connection that finds no server ends: the same way whether every server was DOWN
// from the start or went DOWN between its attempts: <NOSRV>, "no server available", with
// the attempts it made counted. (It used to name the last server tried in one case only.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { BackendPool } from "../../proxy/backend/backend-pool";
import { connectToBackend, type ConnectOutcome } from "../../proxy/backend/connector";
import { validateProxyConfig } from "../../proxy/config/validate";
import { freePort } from "./helpers/harness";

async function pool(down: Set<string>) {
  const closed = await freePort(); // nothing listens: every attempt is refused
  const r = validateProxyConfig({
    listeners: [{ name: "https", mode: "tls-passthrough", binds: [{ address: "127.0.0.1", port: 1 }] }],
    routes: [{ host: "a.example", backend: "a" }],
    backends: [{ name: "a", connectTimeoutMs: 500, retries: 2, servers: [{ name: "monitoring", address: "127.0.0.1", port: closed }] }],
  });
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return new BackendPool(r.config.backends[0]!, { value: 0 }, down);
}

const outcome = (p: BackendPool, onServer: () => void = () => undefined) => new Promise<ConnectOutcome>((resolve) => connectToBackend(p, onServer, resolve));

test("no server left after a refused attempt ends as no server at all: <NOSRV>, not the server tried before", async () => {
  const down = new Set<string>();
  // The one server is refused once, and its check marks it DOWN before the retry.
  const late = await outcome(await pool(down), () => down.add("a/monitoring"));
  assert.equal(late.ok, false);
  assert.equal(late.ok ? undefined : late.error, "no server available");
  assert.equal(late.server, null);
  assert.equal(late.retries, 1, "the refused attempt is counted");

  const early = await outcome(await pool(new Set(["a/monitoring"])));
  assert.deepEqual({ ok: early.ok, server: early.server, retries: early.retries, error: early.ok ? "" : early.error }, { ok: false, server: null, retries: 0, error: "no server available" });
});
