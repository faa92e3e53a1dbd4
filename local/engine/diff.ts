// A model of what `pulumi up` does with a stack's state and a new run of the program: the
// lifecycle tests read a plan off the mocks with it, and the local engine acts on it: per resource, create / update / replace / delete, from the
// provider rows in provider-schema.ts and the options the program sent. Ids carry the model:
// a resource keeps its id unless the provider would replace it, and since ids flow into other
// resources' inputs (serverId, triggers), a replacement cascades exactly as it does for real.
import { isSecret } from "./secret-values";
import { providerRow } from "./provider-schema";

/** One custom resource as the state file would hold it. Key: "<type> <name>". */
export interface ResourceState {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  /** Inputs as sent, secrets revealed, archives by their path relative to the bundle dir. */
  readonly inputs: Record<string, unknown>;
  /** What the provider stored (`stored` of its row), or the inputs. */
  readonly state: Record<string, unknown>;
  readonly protect: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: readonly string[];
  /** Key of the resource this one is deletedWith, or "". */
  readonly deletedWith: string;
}

export type StackState = Record<string, ResourceState>;

export function keyOf(type: string, name: string): string {
  return `${type} ${name}`;
}

/** Inputs as plain JSON: secrets unwrapped, archives by relative path, undefined dropped. */
export async function plainInputs(value: unknown, bundleDir: string): Promise<unknown> {
  if (isSecret(value)) return plainInputs(value.value, bundleDir);
  if (Array.isArray(value)) return Promise.all(value.map((v) => plainInputs(v, bundleDir)));
  if (typeof value === "object" && value !== null) {
    const path = (value as { path?: unknown }).path;
    if (path instanceof Promise) {
      const p = String(await path);
      return { archive: p.startsWith(bundleDir) ? p.slice(bundleDir.length) : p };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k] = await plainInputs(v, bundleDir);
    }
    return out;
  }
  return value;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Inputs that differ from what the provider holds, minus those the program ignores. */
export function changedInputs(prior: ResourceState, inputs: Record<string, unknown>, ignoreChanges: readonly string[]): string[] {
  const keys = new Set([...Object.keys(prior.inputs), ...Object.keys(inputs)]);
  return [...keys].filter((k) => !ignoreChanges.includes(k) && !same(prior.state[k], inputs[k])).sort();
}

/** The provider's verdict on one registration: keep the id, or a replacement (a new id). */
export function replaces(type: string, changed: readonly string[]): string[] {
  const on = providerRow(type).replaceOn;
  return changed.filter((k) => on.includes(k));
}

export interface Plan {
  readonly create: string[];
  readonly update: { readonly key: string; readonly inputs: string[] }[];
  readonly replace: { readonly key: string; readonly inputs: string[]; readonly deleteFirst: boolean }[];
  /** Deleted; `runs: false` when deletedWith a resource that is itself deleted or replaced (no provider call). */
  readonly delete: { readonly key: string; readonly runs: boolean }[];
  /** What the engine refuses: a protected resource replaced or deleted. */
  readonly refused: string[];
}

export function planOf(prior: StackState, next: StackState, onPurpose: readonly string[] = []): Plan {
  const plan: Plan = { create: [], update: [], replace: [], delete: [], refused: [] };
  for (const [key, r] of Object.entries(next)) {
    const old = prior[key];
    if (!old) {
      plan.create.push(key);
      continue;
    }
    const changed = changedInputs(old, r.inputs, r.ignoreChanges);
    if (r.id !== old.id) {
      plan.replace.push({ key, inputs: onPurpose.includes(key) ? ["(--replace)"] : replaces(r.type, changed), deleteFirst: r.deleteBeforeReplace });
      if (old.protect) plan.refused.push(`${key}: protected, cannot be replaced`);
    } else if (changed.length > 0) {
      plan.update.push({ key, inputs: changed });
    }
  }
  const gone = new Set([...Object.keys(prior)].filter((k) => !next[k] || next[k]!.id !== prior[k]!.id));
  for (const [key, old] of Object.entries(prior)) {
    if (next[key]) continue;
    plan.delete.push({ key, runs: !(old.deletedWith && gone.has(old.deletedWith)) });
    if (old.protect) plan.refused.push(`${key}: protected, cannot be deleted`);
  }
  return plan;
}
