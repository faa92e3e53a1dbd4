// The ingress part of a host's plan, for the code that renders or reads it. Pure.
import type { HostPlan, IngressPlan } from "./plan-types";
import type { Engine } from "./types";

/** `host`'s ingress plan; `engine` when the caller renders for one engine only. */
export function ingressOf(host: HostPlan, engine?: Engine): IngressPlan {
  const ingress = host.ingress;
  if (host.role !== "ingress" || !ingress) throw new Error(`host ${host.name} of stack ${host.stack} is not an ingress host`);
  if (engine !== undefined && ingress.engine !== engine) throw new Error(`host ${host.name} of stack ${host.stack} runs engine "${ingress.engine}", not ${engine}`);
  return ingress;
}
