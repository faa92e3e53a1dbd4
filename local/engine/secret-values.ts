// How a secret travels through Pulumi's property values (the SDK's property value signature),
// as the mock monitor hands inputs over and takes outputs back.

/** Pulumi's marker of a special property value, and the value that says "secret". */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

export function isSecret(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;
}

/** A value the SDK will see as secret. */
export function asSecret(value: unknown): Record<string, unknown> {
  return { [SECRET_SIG]: SECRET_VALUE, value };
}

/** The plain value with every secret wrapper removed. */
export function reveal(value: unknown): unknown {
  if (isSecret(value)) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}
