import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTopology, REPO_ROOT } from "../../scripts/stack-files";
import { planStack } from "../../topology";
import { missingSecretsMessage, requiredSecretKeys, selfSignedPairs } from "../../components/deploy/secret-plan";

test("prod reads one secret, demo none", () => {
  assert.deepEqual(requiredSecretKeys(planStack(loadTopology("prod"))), ["statsPassword"]);
  assert.deepEqual(requiredSecretKeys(planStack(loadTopology("demo"))), []);
});

test("a missing secret names the exact command that sets it", () => {
  assert.equal(missingSecretsMessage("prod", ["statsPassword"]), 'stack "prod" needs a secret that is not set; set it with:\n  pulumi config set --secret statsPassword <value> -s prod');
  assert.equal(
    missingSecretsMessage("x", ["a", "b"]),
    'stack "x" needs secrets that are not set; set them with:\n  pulumi config set --secret a <value> -s x\n  pulumi config set --secret b <value> -s x',
  );
});

test("self-signed certificates pair up per listener, with every hostname of the listener", () => {
  const plan = planStack(loadTopology("standalone-demo", join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml")));
  const web = plan.hosts.find((h) => h.name === "web")!;
  assert.deepEqual(selfSignedPairs(web), [
    { key: "port-443", hostnames: ["demo.example.com"], certPath: "/srv/ingress/secrets/tls/port-443/fullchain.pem", keyPath: "/srv/ingress/secrets/tls/port-443/privkey.pem" },
    { key: "port-8443", hostnames: ["api.demo.example.com"], certPath: "/srv/ingress/secrets/tls/port-8443/fullchain.pem", keyPath: "/srv/ingress/secrets/tls/port-8443/privkey.pem" },
  ]);
});
