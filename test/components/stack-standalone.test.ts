// The standalone example under mocks: engine ts, its own LB, self-signed certificates. The
// certificates are generated per listener and reach the web server only as secret files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/stack-files";
import { PROXY_SCRIPT_ENV } from "../../components/program/program-files";
import { configFromYaml, isSecret, loadProgram, one, reveal, type Loaded } from "./harness";

const PROXY_JS = "// the built proxy stands in here\n";
let loaded: Loaded;
let dir = "";
test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "components-proxy-js-"));
  const proxy = join(dir, "proxy.js");
  writeFileSync(proxy, PROXY_JS);
  process.env[PROXY_SCRIPT_ENV] = proxy;
  loaded = await loadProgram({
    stack: "standalone-demo",
    config: configFromYaml(join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml")),
    secrets: { statsPassword: "pw" },
  });
});
test.after(() => {
  rmSync(loaded.bundleDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

test("one key and one certificate per listener, with the listener's hostnames", () => {
  const certs = loaded.resources.filter((r) => r.type === "tls:index/selfSignedCert:SelfSignedCert").map((r) => [r.name, r.inputs["dnsNames"]]);
  assert.deepEqual(certs.sort(), [
    ["deploy-web-tls-cert-port-443", ["demo.example.com"]],
    ["deploy-web-tls-cert-port-8443", ["api.demo.example.com"]],
  ]);
  const cert = one(loaded, "tls:index/selfSignedCert:SelfSignedCert", "deploy-web-tls-cert-port-443");
  assert.deepEqual(reveal(cert.inputs["allowedUses"]), ["digital_signature", "key_encipherment", "server_auth"]);
  assert.deepEqual(one(loaded, "tls:index/privateKey:PrivateKey", "deploy-web-tls-key-port-443").inputs, { algorithm: "ECDSA", ecdsaCurve: "P256" });
});

test("the web server's secret files carry the generated PEMs, only through secret stdin", () => {
  const secrets = one(loaded, "command:remote:Command", "deploy-web-secrets");
  assert.ok(isSecret(secrets.inputs["stdin"]));
  const files = Object.fromEntries(
    String(reveal(secrets.inputs["stdin"]))
      .trimEnd()
      .split("\n")
      .map((line) => {
        const [path, b64] = line.split("\t");
        return [path, Buffer.from(b64!, "base64").toString("utf8")];
      }),
  );
  assert.deepEqual(Object.keys(files).sort(), [
    "/srv/ingress/secrets/tls/port-443/fullchain.pem",
    "/srv/ingress/secrets/tls/port-443/privkey.pem",
    "/srv/ingress/secrets/tls/port-8443/fullchain.pem",
    "/srv/ingress/secrets/tls/port-8443/privkey.pem",
  ]);
  assert.match(files["/srv/ingress/secrets/tls/port-443/privkey.pem"]!, /mock-deploy-web-tls-key-port-443/);
  assert.match(files["/srv/ingress/secrets/tls/port-8443/fullchain.pem"]!, /mock-deploy-web-tls-cert-port-8443/);
  // New certificates go through the live release's apply.sh, which reloads nginx with them and their health headers.
  assert.equal(
    secrets.inputs["update"],
    `${String(secrets.inputs["create"])} && { test ! -e /etc/containers/systemd/nginx.container || if test -e /srv/ingress/current/apply.sh; then /bin/bash /srv/ingress/current/apply.sh --switch-certs; else systemctl try-reload-or-restart nginx.service; fi; }`,
  );
});

test("the ts engine's LB runs the built proxy from its release and restarts on a new stats password", async () => {
  assert.equal(loaded.exports["engine"], "ts");
  const hash = (loaded.exports["bundleHashes"] as Record<string, string>)["lb"]!;
  const dir = join(loaded.bundleDir, "standalone-demo", "lb", hash);
  assert.equal(readFileSync(join(dir, "srv/ingress/current/proxy/proxy.js"), "utf8"), PROXY_JS);
  const secrets = one(loaded, "command:remote:Command", "deploy-lb-secrets");
  assert.equal(secrets.inputs["update"], `${String(secrets.inputs["create"])} && { test ! -e /etc/containers/systemd/proxy.container || systemctl try-restart proxy.service; }`);
  assert.equal(loaded.exports["statsUrl"], `http://${String(one(loaded, "hcloud:index/server:Server", "server-lb").state["ipv4Address"])}:8404/stats`);
});
