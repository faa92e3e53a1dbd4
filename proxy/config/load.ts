import { readFile } from "node:fs/promises";
import { ValidationResult, validateProxyConfigText } from "./validate";

export async function loadProxyConfig(path: string): Promise<ValidationResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    return { ok: false, errors: [`(file): cannot read ${path}: ${(error as Error).message}`] };
  }
  return validateProxyConfigText(text);
}
