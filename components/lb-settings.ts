// The LB settings an attached stack's routes are rendered with, as the owning stack exports
// them and as the attached stack reads them back. The reader checks the shape, because the
// value crosses stacks that may run different versions of this program.
// Pure: no Pulumi import.
import { z } from "zod";
import type { LbSettings } from "../render/bundle";
import type { HostPlan } from "../topology";
import { ENGINES } from "../topology/schema";

const ms = z.number().int().positive();
const lbSettingsSchema = z.object({
  engine: z.enum(ENGINES),
  healthCheck: z.object({ interval: ms, timeout: ms, fall: ms, rise: ms }),
  timeouts: z.object({ connect: ms, client: ms, server: ms, tunnel: ms, inspect: ms }),
});

/** What the owning stack exports for stacks that attach to its LB. */
export function exportedLbSettings(lb: HostPlan): LbSettings {
  if (!lb.ingress) throw new Error(`host ${lb.name} is not an ingress host`);
  const { engine, healthCheck, timeouts } = lb.ingress;
  return { engine, healthCheck, timeouts };
}

export function parseLbSettings(ownerStack: string, value: unknown): LbSettings {
  const parsed = lbSettingsSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(`stack ${ownerStack} does not export usable LB settings (output lbRouteSettings): ${z.prettifyError(parsed.error)}; run \`pulumi up\` on it first`);
  }
  return parsed.data;
}
