// The stack's rules as a Pulumi policy pack: what `pulumi preview --policy-pack policy` checks on
// every resource the program sends, independent of the program's own validation, so a change
// to the program that breaks one of them fails the pull request's preview. Each policy is a
// plain function of the resource's arguments; policy/index.ts packs them.
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { parseCidr, wideCoverage, type Cidr } from "../topology/ip";
import { removedServerTypeMessage } from "../topology/server-types";

const SERVER = "hcloud:index/server:Server";
const FIREWALL = "hcloud:index/firewall:Firewall";
const NETWORK = "hcloud:index/network:Network";
const PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp";

/** The stack that holds production: its stateful resources must be protected. */
export const PROD_STACK = "prod";

/** The arguments a policy reads; what @pulumi/policy passes has more. */
export type PolicyArgs = Pick<ResourceValidationArgs, "type" | "props" | "name"> & { readonly opts: Pick<ResourceValidationArgs["opts"], "protect"> };

interface FirewallRule {
  readonly direction?: string;
  readonly port?: string;
  readonly sourceIps?: readonly string[];
}

function rulesOf(props: Record<string, unknown>): FirewallRule[] {
  return Array.isArray(props["rules"]) ? (props["rules"] as FirewallRule[]) : [];
}

function labelsOf(props: Record<string, unknown>): Record<string, string> {
  const labels = props["labels"];
  return typeof labels === "object" && labels !== null ? (labels as Record<string, string>) : {};
}

/** Whether a rule's port (Hetzner: "22", "1-65535", or none for every port) lets SSH in. */
function opensSsh(port: string | undefined): boolean {
  const range = /^(\d+)(?:-(\d+))?$/.exec(port ?? "");
  if (!range) return true;
  const low = Number(range[1]);
  const high = range[2] === undefined ? low : Number(range[2]);
  return low <= 22 && 22 <= high;
}

function policy(name: string, description: string, check: (args: PolicyArgs, report: ReportViolation) => void): ResourceValidationPolicy {
  return { name, description, enforcementLevel: "mandatory", validateResource: (args, report) => check(args, report) };
}

export const noSshFromAnywhere = policy(
  "no-ssh-from-anywhere",
  "SSH (port 22) is open only to admin networks: its sources together cover at most a /8 of IPv4 and a /32 of IPv6, measured, not matched.",
  ({ type, props, name }, report) => {
    if (type !== FIREWALL) return;
    for (const rule of rulesOf(props)) {
      if (rule.direction !== "in" || !opensSsh(rule.port)) continue;
      const parsed = (rule.sourceIps ?? []).map(parseCidr);
      // A source that cannot be measured counts as wide: the check never fails open.
      for (const p of parsed) if (typeof p === "string") report(`firewall ${name} lets SSH in from a source that cannot be measured: ${p}`);
      const wide = wideCoverage(parsed.filter((c): c is Cidr => typeof c !== "string"));
      if (wide) report(`firewall ${name} opens SSH to ${wide}; list the admin networks in ssh.adminCidrs`);
    }
  },
);

export const everyServerHasAFirewall = policy(
  "every-server-has-a-firewall",
  "Every server carries a cloud firewall from its first boot (firewallIds on the server).",
  ({ type, props, name }, report) => {
    if (type !== SERVER) return;
    const ids = props["firewallIds"];
    if (!Array.isArray(ids) || ids.length === 0) report(`server ${name} has no cloud firewall; give it one in firewallIds`);
  },
);

export const prodIsProtected = policy(
  "prod-is-protected",
  `The ${PROD_STACK} stack's servers, networks and primary IPs are protected from deletion, in Hetzner and in Pulumi.`,
  ({ type, props, name, opts }, report) => {
    if (![SERVER, NETWORK, PRIMARY_IP].includes(type) || labelsOf(props)["stack"] !== PROD_STACK) return;
    if (props["deleteProtection"] !== true) report(`${name} of stack ${PROD_STACK} lacks Hetzner's deleteProtection; set protect: true in Pulumi.${PROD_STACK}.yaml`);
    if (!opts.protect) report(`${name} of stack ${PROD_STACK} is not protected in Pulumi; set protect: true in Pulumi.${PROD_STACK}.yaml`);
  },
);

export const noRemovedServerType = policy(
  "no-removed-server-type",
  "No server uses a type Hetzner removed (topology/server-types.ts).",
  ({ type, props, name }, report) => {
    if (type !== SERVER) return;
    const message = removedServerTypeMessage(String(props["serverType"] ?? ""));
    if (message) report(`server ${name}: ${message}`);
  },
);

export const proxyListenersOnlyFromTheLb = policy(
  "proxy-listeners-only-from-the-lb",
  "A web server's cloud firewall opens nothing but SSH: its nginx PROXY listeners are for the LB alone, over the private network (which nftables guards; Hetzner's cloud firewall does not filter it).",
  ({ type, props, name }, report) => {
    if (type !== FIREWALL || labelsOf(props)["role"] !== "web") return;
    for (const rule of rulesOf(props)) {
      if (rule.direction === "in" && rule.port !== "22") report(`firewall ${name} of a web server opens port ${rule.port ?? "(any)"} publicly; its PROXY listeners must be reachable from the LB only`);
    }
  },
);

export const POLICIES: readonly ResourceValidationPolicy[] = [noSshFromAnywhere, everyServerHasAFirewall, prodIsProtected, noRemovedServerType, proxyListenersOnlyFromTheLb];
