/**
 * Turns the raw host_name bytes of a ClientHello into the name we route on,
 * or names why it is refused. IDNs arrive as A-labels (RFC 6066 §3), so any
 * byte >= 0x80 is refused rather than guessed at.
 *
 * Configured names go through topology/hostname.ts instead; this one reads untrusted wire
 * bytes, is more lenient (underscores, edge hyphens: real clients send them, and a name no
 * route has simply does not match) and returns a reason code for the connection log.
 */

export type ServerNameRejectReason =
  | "empty"
  | "non-ascii"
  | "control-byte"
  | "invalid-character"
  | "empty-label"
  | "label-too-long"
  | "too-long"
  | "ip-literal";

export type ServerNameResult =
  | { readonly ok: true; readonly name: string }
  | { readonly ok: false; readonly reason: ServerNameRejectReason };

const MAX_NAME = 253;
const MAX_LABEL = 63;

export function normaliseServerName(raw: Uint8Array | string): ServerNameResult {
  const bytes = typeof raw === "string" ? Array.from(raw, (c) => c.charCodeAt(0)) : raw;
  let name = "";
  for (const byte of bytes) {
    if (byte >= 0x80) return { ok: false, reason: "non-ascii" };
    if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: "control-byte" };
    name += String.fromCharCode(byte);
  }
  name = name.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length === 0) return { ok: false, reason: "empty" };
  if (name.includes(":") || name.startsWith("[")) return { ok: false, reason: "ip-literal" };
  if (!/^[a-z0-9._-]+$/.test(name)) return { ok: false, reason: "invalid-character" };
  if (name.length > MAX_NAME) return { ok: false, reason: "too-long" };
  const labels = name.split(".");
  if (labels.some((label) => label.length === 0)) return { ok: false, reason: "empty-label" };
  if (labels.some((label) => label.length > MAX_LABEL)) return { ok: false, reason: "label-too-long" };
  // An all-numeric last label is never a DNS name (RFC 3696 §2): it is an IPv4 literal or a spoof of one.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return { ok: false, reason: "ip-literal" };
  return { ok: true, name };
}
