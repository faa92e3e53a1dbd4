// Config errors carry the field path as the user wrote it in Pulumi.<stack>.yaml, so a
// message can be acted on without reading code.

export interface ConfigIssue {
  /** e.g. "servers[1].networks.prod" */
  readonly path: string;
  readonly message: string;
}

export class ConfigValidationError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(stack: string, issues: readonly ConfigIssue[]) {
    const lines = issues.map((i) => `  - ${i.path}: ${i.message}`);
    super(`stack "${stack}" config has ${issues.length} error${issues.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
    this.name = "ConfigValidationError";
    this.issues = issues;
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out || "(root)";
}
