// What the real providers do with a changed input, for every resource type the program
// registers: the inputs whose change REPLACES the resource (every other change is an update in
// place), and what the provider stores in state where that differs from the input. This is
// the one table the lifecycle test (and the docs/deploy.md table it backs) relies on; each
// row names the source it was read from.

export interface ProviderRow {
  /** Inputs (Pulumi names) whose change replaces the resource. */
  readonly replaceOn: readonly string[];
  /** Where the row was read. */
  readonly source: string;
  /** State as the provider stores it, from the inputs it was given, where the two differ. */
  readonly stored?: (inputs: Record<string, unknown>) => Record<string, unknown>;
}

const HCLOUD = "terraform-provider-hcloud v1.68.0 (wrapped by @pulumi/hcloud 1.41.0)";
const COMMAND = "pulumi-command v1.2.1: `triggers` is the only replaceOnChanges input (provider/pkg/provider/common/inputs.go; sdk/nodejs/remote/*.ts sets replaceOnChanges: [\"triggers[*]\"]); every other change runs Update";
const TLS = "terraform-provider-tls v4 (wrapped by @pulumi/tls 5.x): every argument is RequiresReplace";

export const PROVIDER_SCHEMA: Readonly<Record<string, ProviderRow>> = {
  "hcloud:index/server:Server": {
    // server_type is an update that powers the server off and leaves it off (resourceServerUpdate).
    replaceOn: ["image", "location", "userData", "sshKeys", "datacenter"],
    source: `${HCLOUD} internal/server/resource.go: ForceNew on image, location, user_data, ssh_keys`,
  },
  "hcloud:index/serverNetwork:ServerNetwork": {
    replaceOn: ["serverId", "networkId", "subnetId", "ip"],
    source: `${HCLOUD} internal/server/resource_network.go: RequiresReplace on server_id, network_id, subnet_id, ip; alias_ips updates`,
  },
  "hcloud:index/network:Network": {
    replaceOn: ["ipRange"],
    source: `${HCLOUD} internal/network/resource.go: ForceNew on ip_range`,
  },
  "hcloud:index/networkSubnet:NetworkSubnet": {
    replaceOn: ["networkId", "type", "networkZone", "ipRange", "vswitchId"],
    source: `${HCLOUD} internal/network/resource_subnet.go: every argument ForceNew, no Update`,
  },
  "hcloud:index/sshKey:SshKey": {
    replaceOn: ["publicKey"],
    source: `${HCLOUD} internal/sshkey/resource.go: RequiresReplace on public_key; the provider stores what the API returns`,
    // Hetzner's API trims whitespace from public keys (changelog 2026-04-22).
    stored: (inputs) => ({ ...inputs, publicKey: String(inputs["publicKey"]).trim() }),
  },
  "hcloud:index/firewall:Firewall": {
    replaceOn: [],
    source: `${HCLOUD} internal/firewall/resource.go: name, rules, labels, apply_to all update in place`,
  },
  "hcloud:index/placementGroup:PlacementGroup": {
    replaceOn: [],
    source: `${HCLOUD} internal/placementgroup/resource.go: name and labels update (type has one valid value, spread)`,
  },
  "hcloud:index/primaryIp:PrimaryIp": {
    replaceOn: ["type", "location", "datacenter"],
    source: `${HCLOUD} internal/primaryip/resource.go: RequiresReplace on type, location`,
  },
  "tls:index/privateKey:PrivateKey": { replaceOn: ["algorithm", "ecdsaCurve", "rsaBits"], source: `${TLS} (resource_private_key.go)` },
  "tls:index/selfSignedCert:SelfSignedCert": {
    replaceOn: ["privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris", "validityPeriodHours", "allowedUses", "isCaCertificate"],
    source: `${TLS} (resource_self_signed_cert.go)`,
  },
  "command:remote:Command": { replaceOn: ["triggers"], source: COMMAND },
  "command:remote:CopyToRemote": { replaceOn: ["triggers"], source: `${COMMAND}; a source (content hash) or remotePath change copies again, a connection change does not` },
};

export function providerRow(type: string): ProviderRow {
  const row = PROVIDER_SCHEMA[type];
  if (!row) throw new Error(`no provider row for ${type}: add it to local/engine/provider-schema.ts from the provider's source`);
  return row;
}
