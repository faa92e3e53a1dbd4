// How long an SSH step keeps dialling a server that does not answer yet. pulumi-command
// v1.2.1 (provider/pkg/provider/remote/connection.go, dialWithRetry) makes up to
// `dialErrorLimit + 1` dials with a sleep before each retry; the sleeps follow the Pulumi SDK's
// retry defaults (sdk/go/common/util/retry/until.go): 100 ms, times 1.5, at most 5 s. A refused
// dial fails at once, so the sleeps alone are the time a booting server gets; the limit is
// derived from that budget rather than guessed. Pure: no Pulumi import.

export const DIAL_RETRY = { firstDelayMs: 100, factor: 1.5, maxDelayMs: 5_000 } as const;

/** Total sleep between the dials `limit` allows (one sleep per retry), in milliseconds. */
export function dialRetryBudgetMs(limit: number): number {
  let total = 0;
  let delay: number = DIAL_RETRY.firstDelayMs;
  for (let retry = 0; retry < limit; retry++) {
    total += delay;
    delay = Math.min(delay * DIAL_RETRY.factor, DIAL_RETRY.maxDelayMs);
  }
  return total;
}

/** The smallest limit whose sleeps add up to at least `budgetMs`. */
export function dialErrorLimitFor(budgetMs: number): number {
  let limit = 0;
  while (dialRetryBudgetMs(limit) < budgetMs) limit++;
  return limit;
}

/** A new Hetzner server answers SSH within a minute or two; five minutes covers a slow boot. */
export const SSH_DIAL_BUDGET_MS = 5 * 60_000;
