// Names and labels of every Hetzner resource. Pulumi names (URNs) are derived from the
// component's name and never change, because renaming a resource replaces it; Hetzner
// display names are a separate label that carries the stack, since one Hetzner project
// may hold several stacks and display names must be unique in it.
// Pure: no Pulumi import.

/** Pulumi name of a child: `${parent}-${role}`; a keyed child adds a stable key, never a position. */
export function childName(parent: string, role: string, key?: string): string {
  return key === undefined ? `${parent}-${role}` : `${parent}-${role}-${key}`;
}

/**
 * Hetzner display name for a stack's resource. Server names must be valid RFC 1123 host
 * names, and Pulumi stack names may contain "_" and ".", so everything else becomes "-".
 */
export function displayName(stack: string, name: string): string {
  const text = `${stack}-${name}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  // Hetzner caps names at 63 characters (one DNS label).
  return text.slice(0, 63).replace(/-$/, "");
}

/** A stable key from free text (a CIDR, a path): "172.24.0.0/24" -> "172-24-0-0-24". */
export function keyOf(text: string): string {
  return text.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

/**
 * Hetzner label values: at most 63 characters, alphanumerics at both ends, "-", "_" and "."
 * between. Anything else is replaced rather than rejected: labels are for humans and selectors.
 */
export function labelValue(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 63);
  return cleaned.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}

export const MANAGED_BY = "pulumi-hetzner-ingress";

export type ResourceRole = "ingress" | "web" | "network" | "deploy-key" | "placement" | "primary-ip";

/**
 * The same three labels on every resource, so `hcloud server list -l stack=prod` and
 * label selectors see the whole stack. The stack's own labels are kept, ours win on a clash.
 */
export function resourceLabels(stack: string, role: ResourceRole, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { ...extra, stack: labelValue(stack), role, "managed-by": MANAGED_BY };
}
