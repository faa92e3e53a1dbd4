// A stack's state in the local engine: one JSON file per stack, written whole after every
// provider call (as Pulumi's checkpoint is), replaced atomically. Secret values are
// sealed with AES-256-GCM under a key kept beside the state (0600), so no secret is plain in
// the file; the key plays the part of PULUMI_CONFIG_PASSPHRASE for a local backend.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ResourceState } from "./diff";

export interface StoredResource extends ResourceState {
  /** Keys of the resources this one waited for (inputs and dependsOn), in this stack. */
  readonly dependencies: readonly string[];
  /** Output names whose values are secret. */
  readonly secretOutputs: readonly string[];
  /** Input names whose values hold a secret. */
  readonly secretInputs: readonly string[];
}

export interface StackFile {
  readonly version: 1;
  /** The local cloud the ids belong to. */
  readonly cloud?: string;
  readonly resources: Record<string, StoredResource>;
  /** Replaced resources whose old copy is still to be deleted (a failed run left them). */
  readonly pendingDeletes: readonly StoredResource[];
  readonly outputs: Record<string, unknown>;
  readonly secretOutputs: readonly string[];
  /** Secret config the local engine chose for the stack (e.g. statsPassword), kept across runs. */
  readonly secretConfig: Record<string, string>;
}

const SEALED = "@sealed";

function keyOf(dir: string): Buffer {
  const file = join(dir, "state.key");
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32), { mode: 0o600, flag: "wx" });
  }
  return readFileSync(file);
}

function seal(key: Buffer, value: unknown): Record<string, string> {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
  return { [SEALED]: Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64") };
}

function unseal(key: Buffer, sealed: string): unknown {
  const raw = Buffer.from(sealed, "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8"));
}

function unsealAll(key: Buffer, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => unsealAll(key, v));
  if (typeof value === "object" && value !== null) {
    const o = value as Record<string, unknown>;
    if (typeof o[SEALED] === "string" && Object.keys(o).length === 1) return unseal(key, o[SEALED]);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unsealAll(key, v)]));
  }
  return value;
}

/** Values at these top-level names sealed; the rest as they are. */
function sealNames(key: Buffer, values: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, names.includes(k) && v !== undefined ? seal(key, v) : v]));
}

export const EMPTY_STACK: StackFile = { version: 1, resources: {}, pendingDeletes: [], outputs: {}, secretOutputs: [], secretConfig: {} };

export function stackFilePath(dir: string, stack: string): string {
  return join(dir, `${stack}.json`);
}

export function readStackFile(dir: string, stack: string): StackFile {
  const file = stackFilePath(dir, stack);
  if (!existsSync(file)) return EMPTY_STACK;
  return unsealAll(keyOf(dir), JSON.parse(readFileSync(file, "utf8"))) as StackFile;
}

/**
 * Writes the stack with its secrets sealed: each resource's secret inputs and outputs, secret
 * stack outputs, and all secret config.
 */
export function writeStackFile(dir: string, stack: string, file: StackFile): void {
  const key = keyOf(dir);
  const sealResource = (r: StoredResource): StoredResource => ({
    ...r,
    inputs: sealNames(key, r.inputs, r.secretInputs),
    state: sealNames(key, r.state, [...r.secretInputs, ...r.secretOutputs]),
  });
  const sealed = {
    ...file,
    resources: Object.fromEntries(Object.entries(file.resources).map(([k, r]) => [k, sealResource(r)])),
    pendingDeletes: file.pendingDeletes.map(sealResource),
    outputs: sealNames(key, file.outputs, file.secretOutputs),
    secretConfig: Object.fromEntries(Object.entries(file.secretConfig).map(([k, v]) => [k, seal(key, v)])),
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = stackFilePath(dir, stack);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(sealed, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
