// A bad config or a missing secret stops the program before any resource exists, with a
// message that says what to do. Each case loads the program in its own process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { stackFile } from "../../scripts/stack-files";
import { configFromYaml } from "./harness";

function load(stack: string, config: Record<string, string>, secrets: Record<string, string> = {}): { ok?: boolean; error?: string; runError?: boolean } {
  const run = spawnSync(process.execPath, ["--import", "tsx", join(__dirname, "load-stack.ts")], {
    env: { ...process.env, LOAD_STACK: JSON.stringify({ stack, config, secrets }) },
    encoding: "utf8",
  });
  const last = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as { ok?: boolean; error?: string; runError?: boolean };
  } catch {
    throw new Error(`child printed no result:\n${run.stdout}\n${run.stderr}`);
  }
}

test("an invalid config fails with the validation message, every error at once, and no stack trace", () => {
  const config = configFromYaml(stackFile("prod"));
  config["hetzner-ingress:networkZone"] = "us-east";
  const servers = JSON.parse(config["hetzner-ingress:servers"]!) as Array<{ networks: Record<string, string> }>;
  servers[0]!.networks["prod"] = "172.24.9.9";
  config["hetzner-ingress:servers"] = JSON.stringify(servers);
  assert.deepEqual(load("prod", config, { statsPassword: "pw" }), {
    runError: true,
    error:
      'stack "prod" config has 2 errors:\n' +
      "  - networkZone: location fsn1 is in network zone eu-central, not us-east; set networkZone: eu-central\n" +
      '  - servers[0].networks.prod: 172.24.9.9 is not in any subnet of network "prod" (172.24.0.0/24, 172.24.1.0/24); add a subnet that holds it or choose an address in one',
  });
});

test("a missing secret fails naming the command that sets it", () => {
  assert.deepEqual(load("prod", configFromYaml(stackFile("prod"))), {
    runError: true,
    error: 'stack "prod" needs a secret that is not set; set it with:\n  pulumi config set --secret statsPassword <value> -s prod',
  });
});

test("the same config with its secret loads", () => {
  assert.deepEqual(load("prod", configFromYaml(stackFile("prod")), { statsPassword: "pw" }), { ok: true });
});

test("a misspelled config key is refused by name instead of being ignored", () => {
  const config = configFromYaml(stackFile("prod"));
  config["hetzner-ingress:protekt"] = "true";
  assert.deepEqual(load("prod", config, { statsPassword: "pw" }), {
    runError: true,
    error:
      'stack "prod" sets config key that nothing reads: protekt; check the spelling (known keys: location, networkZone, networks, servers, sites, ingress, ssh, protect, containerImages, acme) or remove it',
  });
});
