/** Validation with messages that name the offending field, e.g. `listeners[0].binds[1].port: ...`. */
import { z } from "zod";
import { ProxyConfig, proxyConfigSchema } from "../../contract/proxy-config";

export type ValidationResult = { readonly ok: true; readonly config: ProxyConfig } | { readonly ok: false; readonly errors: readonly string[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : `${out === "" ? "" : "."}${String(key)}`;
  return out === "" ? "(root)" : out;
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

export function validateProxyConfig(input: unknown): ValidationResult {
  const result = proxyConfigSchema.safeParse(input);
  return result.success ? { ok: true, config: result.data } : { ok: false, errors: formatIssues(result.error) };
}

/** Parses JSON text and validates it; JSON syntax errors are reported the same way. */
export function validateProxyConfigText(text: string): ValidationResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`(root): not valid JSON: ${(error as Error).message}`] };
  }
  return validateProxyConfig(json);
}
