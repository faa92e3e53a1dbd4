// Which subnet each private address lives in. ServerNetwork attaches by subnet (Hetzner's
// preferred form): that both picks the right subnet and makes the attachment wait for it,
// since attaching to a network whose subnet does not exist yet fails.
// Pure: no Pulumi import.
import { cidrContainsIpv4, ipv4ToInt, parseCidr } from "../../topology/ip";
import type { NetworkConfig } from "../../topology";
import { keyOf } from "./names";

export interface SubnetSpec {
  readonly network: string;
  readonly ipRange: string;
  /** Stable key for the Pulumi name: the range itself, never the position in the list. */
  readonly key: string;
}

export function subnetSpecs(network: NetworkConfig): SubnetSpec[] {
  return network.subnets.map((s) => ({ network: network.name, ipRange: s.ipRange, key: keyOf(s.ipRange) }));
}

/** The subnet of `network` that holds `ip`; validation guarantees there is one. */
export function subnetFor(networks: readonly NetworkConfig[], network: string, ip: string): SubnetSpec {
  const net = networks.find((n) => n.name === network);
  if (!net) throw new Error(`unknown network "${network}" (validation should have caught this)`);
  const addr = ipv4ToInt(ip);
  const spec = subnetSpecs(net).find((s) => {
    const cidr = parseCidr(s.ipRange);
    return addr !== undefined && typeof cidr !== "string" && cidr.family === 4 && cidrContainsIpv4(cidr, addr);
  });
  if (!spec) throw new Error(`${ip} is in no subnet of network "${network}" (validation should have caught this)`);
  return spec;
}
