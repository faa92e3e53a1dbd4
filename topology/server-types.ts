// Hetzner server types that the API no longer offers, each with the type that replaced it.
// One table, checked by date: validation refuses these by name and says what to write
// instead. Pure: no I/O.
//
// Source: Hetzner Cloud changelog, 2025-10-16 "server types deprecated" (CX Gen 2 and CPX
// Gen 1, removed from the API at the end of 2025; not orderable after 2025-12-31), and
// terraform-provider-hcloud's switch of its examples and tests to cx23 / cpx12 / cpx22.
// Existing servers of these types keep running; only creating one fails.

/** When this table was last compared with Hetzner's changelog. */
export const REMOVED_SERVER_TYPES_CHECKED = "2026-12-01";

export const REMOVED_SERVER_TYPES: Readonly<Record<string, string>> = {
  cx22: "cx23",
  cx32: "cx33",
  cx42: "cx43",
  cx52: "cx53",
  cpx11: "cpx12",
  cpx21: "cpx22",
  cpx31: "cpx32",
  cpx41: "cpx42",
  cpx51: "cpx52",
};

/** The message for a removed type, or undefined for any other. */
export function removedServerTypeMessage(serverType: string): string | undefined {
  const successor = REMOVED_SERVER_TYPES[serverType];
  if (successor === undefined) return undefined;
  return `server type ${serverType} was removed by Hetzner (its changelog, 2025-10-16; list checked ${REMOVED_SERVER_TYPES_CHECKED}); use ${successor}, its successor`;
}
