// The SSH dial budget, from pulumi-command v1.2.1's retry schedule (components/ssh-retry.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { dialErrorLimitFor, dialRetryBudgetMs, SSH_DIAL_BUDGET_MS } from "../../components/deploy/ssh-retry";
import { sshConnection } from "../../components/host-deploy";
import { stackReferenceName } from "../../components/deploy/outputs";

test("the retry schedule: 100 ms growing by 1.5x to 5 s, one sleep per retry", () => {
  assert.equal(dialRetryBudgetMs(0), 0);
  assert.equal(dialRetryBudgetMs(1), 100);
  assert.equal(dialRetryBudgetMs(2), 250);
  // pulumi-command's default limit of 10 waits about 11 s in all.
  assert.equal(Math.round(dialRetryBudgetMs(10)), 11_333);
  // The limit this project used to set, 20, is about one minute, not the five its comment said.
  assert.equal(Math.round(dialRetryBudgetMs(20)), 61_333);
  // Past the cap every retry adds 5 s.
  assert.equal(Math.round(dialRetryBudgetMs(21) - dialRetryBudgetMs(20)), 5_000);
});

test("the connection dials for five minutes: the smallest limit whose sleeps reach the budget", () => {
  const limit = dialErrorLimitFor(SSH_DIAL_BUDGET_MS);
  assert.equal(limit, 68);
  assert.ok(dialRetryBudgetMs(limit) >= SSH_DIAL_BUDGET_MS && dialRetryBudgetMs(limit - 1) < SSH_DIAL_BUDGET_MS);
  const c = sshConnection("203.0.113.9", "key");
  assert.equal(c.dialErrorLimit, limit);
  assert.equal(c.perDialTimeout, 15);
});

test("a bare owning stack name is completed with this program's organization and project", () => {
  // Self-managed backends answer "organization"; Pulumi Cloud the real one.
  assert.equal(stackReferenceName("prod", "organization", "hetzner-ingress"), "organization/hetzner-ingress/prod");
  assert.equal(stackReferenceName("prod", "acme", "hetzner-ingress"), "acme/hetzner-ingress/prod");
  assert.equal(stackReferenceName("other-org/other-project/prod", "acme", "hetzner-ingress"), "other-org/other-project/prod");
});
