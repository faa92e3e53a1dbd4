// The local engine: `pulumi up`, `preview` and `destroy` of index.ts, unchanged, against the
// local cloud. The program runs under Pulumi's mock monitor (the SDK's own machinery), which
// sends every registration here with its inputs resolved and its dependencies (inputs and
// dependsOn) already complete, so resources are created in the order the engine would create
// them. Per resource, the prior state and the provider table (provider-schema.ts) decide:
// same (no call at all), update, replace (create-before-delete unless deleteBeforeReplace) or
// create; after the program, resources it no longer registers are deleted in reverse
// dependency order, skipping those `deletedWith` a resource deleted in the same run.
// docs/local-engine.md says which engine behaviours are modelled and which are not.
import * as pulumi from "@pulumi/pulumi";
import { join } from "node:path";
import { bundleRoot, PROJECT_ROOT } from "../../components/program/program-files";
import { changedInputs, keyOf, plainInputs, replaces } from "./diff";
import { providerRow } from "./provider-schema";
import { providerOf, type Outputs, type ProviderContext } from "./providers";
import { asSecret, isSecret } from "./secret-values";
import { watchRegistrations, type SentOptions } from "./sent-options";
import { EMPTY_STACK, readStackFile, writeStackFile, type StackFile, type StoredResource } from "./state-file";

export type Action = "create" | "update" | "replace" | "delete" | "same";

export interface EngineOptions {
  readonly stack: string;
  /** Stack config as Pulumi passes it (namespaced keys; structured values as JSON). */
  readonly config: Record<string, string>;
  /** Secret config, namespaced keys. */
  readonly secrets: Record<string, string>;
  /** Secret config the local CLI chose for this stack, kept in its state for the next run. */
  readonly secretConfig: Record<string, string>;
  readonly stateDir: string;
  readonly operatorNetns: string;
  /** The running local cloud's id: a state written for another cloud describes nothing that exists. */
  readonly cloudId: string;
  /** Keys ("<type> <name>") or names to replace on purpose (`pulumi up --replace`). */
  readonly replace?: readonly string[];
  readonly preview?: boolean;
  readonly log: (line: string) => void;
}

export interface EngineResult {
  readonly ok: boolean;
  readonly errors: readonly string[];
  readonly counts: Readonly<Record<Action, number>>;
  readonly outputs: Record<string, unknown>;
  readonly secretOutputs: readonly string[];
}

/** Top-level input names whose value holds a secret anywhere. */
function secretInputNames(inputs: Record<string, unknown>): string[] {
  const holds = (v: unknown): boolean =>
    isSecret(v) || (Array.isArray(v) ? v.some(holds) : typeof v === "object" && v !== null && Object.values(v).some(holds));
  return Object.keys(inputs).filter((k) => holds(inputs[k]));
}

function wrapSecrets(outputs: Outputs, names: readonly string[]): Outputs {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, names.includes(k) ? asSecret(v) : v]));
}

/** One resource as it exists in the cloud: a key can have an old copy awaiting deletion too. */
function identityOf(r: StoredResource): string {
  return `${keyOf(r.type, r.name)}#${r.id}`;
}

/** Resources in an order where each comes before everything it depends on (delete order). */
function deleteOrder(items: readonly StoredResource[]): StoredResource[] {
  const done = new Set<string>();
  const out: StoredResource[] = [];
  const visit = (r: StoredResource, path: Set<string>) => {
    const id = identityOf(r);
    if (done.has(id) || path.has(id)) return;
    path.add(id);
    // Dependents first: whatever depends on r's key is deleted before r.
    const key = keyOf(r.type, r.name);
    for (const other of items) if (other !== r && other.dependencies.includes(key)) visit(other, path);
    done.add(id);
    out.push(r);
  };
  for (const r of items) visit(r, new Set());
  return out;
}

/**
 * What exists in the cloud during a run, checkpointed to the state file after every provider
 * call (as Pulumi writes its checkpoint after each step), so a run cut short by a crash or a
 * signal leaves a state that still names everything it created.
 */
class Ledger {
  /** By identity: everything that exists. */
  private readonly live = new Map<string, StoredResource>();
  /** By key: the identity the program's resource is. Anything live and not here is an old copy to delete. */
  private readonly current = new Map<string, string>();

  constructor(
    private readonly o: EngineOptions,
    private readonly base: StackFile,
  ) {
    for (const r of base.pendingDeletes) this.live.set(identityOf(r), r);
    for (const [k, r] of Object.entries(base.resources)) {
      this.live.set(identityOf(r), r);
      this.current.set(k, identityOf(r));
    }
  }

  /** The program's resource for `key` now (created, updated or kept). */
  put(key: string, r: StoredResource): void {
    this.live.set(identityOf(r), r);
    this.current.set(key, identityOf(r));
    this.save();
  }

  gone(r: StoredResource): void {
    const id = identityOf(r);
    this.live.delete(id);
    const key = keyOf(r.type, r.name);
    if (this.current.get(key) === id) this.current.delete(key);
    this.save();
  }

  resources(): Record<string, StoredResource> {
    return Object.fromEntries([...this.current].map(([k, id]) => [k, this.live.get(id)!]));
  }

  oldCopies(): StoredResource[] {
    const current = new Set(this.current.values());
    return [...this.live].filter(([id]) => !current.has(id)).map(([, r]) => r);
  }

  save(outputs?: { readonly outputs: Record<string, unknown>; readonly secretOutputs: readonly string[] }): void {
    if (this.o.preview) return;
    writeStackFile(this.o.stateDir, this.o.stack, {
      version: 1,
      cloud: this.o.cloudId,
      resources: this.resources(),
      pendingDeletes: this.oldCopies(),
      outputs: outputs?.outputs ?? this.base.outputs,
      secretOutputs: outputs?.secretOutputs ?? this.base.secretOutputs,
      secretConfig: this.o.secretConfig,
    });
  }
}

export async function runEngine(o: EngineOptions, mode: "up" | "destroy"): Promise<EngineResult> {
  let prior = readStackFile(o.stateDir, o.stack);
  if (prior.cloud !== o.cloudId && (Object.keys(prior.resources).length > 0 || prior.pendingDeletes.length > 0)) {
    // Its ids name things in a cloud that no longer runs (stopped, crashed, or this machine
    // rebooted): nothing of it exists, and the same ids may now belong to other resources.
    o.log(`the state of stack ${o.stack} describes local cloud ${prior.cloud ?? "(unknown)"}, which is gone; starting from an empty stack`);
    prior = { ...EMPTY_STACK, secretConfig: prior.secretConfig };
  }
  const counts: Record<Action, number> = { create: 0, update: 0, replace: 0, delete: 0, same: 0 };
  const errors: string[] = [];
  const ctx: ProviderContext = { operatorNetns: o.operatorNetns, bundleRoot: bundleRoot(), log: o.log };
  const ledger = new Ledger(o, prior);
  const registered = new Set<string>();
  const isTarget = (key: string, name: string) => (o.replace ?? []).some((r) => r === key || r === name);

  if (mode === "destroy") {
    await deleteAll(ctx, o, ledger, deleteOrder([...Object.values(ledger.resources()), ...ledger.oldCopies()]), counts, errors);
    ledger.save(errors.length === 0 ? { outputs: {}, secretOutputs: [] } : undefined);
    return { ok: errors.length === 0, errors, counts, outputs: {}, secretOutputs: [] };
  }

  // Options as the program sent them, which the mocks' newResource does not see.
  const sent = new Map<string, SentOptions>();
  const urnKey = new Map<string, string>();
  await pulumi.runtime.setMocks(
    {
      newResource: async (args) => {
        const key = keyOf(args.type, args.name);
        if (args.type === "pulumi:pulumi:StackReference") return stackReference(o, String(args.inputs["name"]));
        if (args.type.startsWith("ingress:")) return { id: "", state: {} };
        try {
          return await register(key, args.type, args.name, args.inputs as Record<string, unknown>);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          errors.push(`${key}: ${message}`);
          o.log(`  error ${args.name}: ${message}`);
          throw e;
        }
      },
      call: (args) => {
        throw new Error(`the local engine models no provider function (${args.token})`);
      },
    },
    "hetzner-ingress",
    o.stack,
    o.preview ?? false,
    "organization",
  );

  watchRegistrations(
    (key, options) => sent.set(key, options),
    (key, options) => urnKey.set(options.urn, key),
  );

  async function register(key: string, type: string, name: string, rawInputs: Record<string, unknown>): Promise<{ id: string; state: Record<string, unknown> }> {
    const opts = sent.get(key);
    if (!opts) throw new Error(`no options recorded for ${key}`);
    registered.add(key);
    const provider = providerOf(type);
    const row = providerRow(type);
    const sentInputs = (await plainInputs(rawInputs, ctx.bundleRoot)) as Record<string, unknown>;
    const old = prior.resources[key];
    // Ignored inputs keep the values the resource has, as the engine sends them to the provider.
    const inputs = old ? { ...sentInputs, ...Object.fromEntries(opts.ignoreChanges.filter((k) => k in old.inputs).map((k) => [k, old.inputs[k]])) } : sentInputs;
    const stored = row.stored ? row.stored(inputs) : inputs;
    const onPurpose = isTarget(key, name);
    const changed = old ? changedInputs(old, inputs, opts.ignoreChanges) : [];
    const replacing = old !== undefined && (onPurpose || replaces(type, changed).length > 0);
    const action: Action = !old ? "create" : replacing ? "replace" : changed.length > 0 ? "update" : "same";
    const secretOutputs = [...(provider.secretOutputs ?? []), ...opts.additionalSecretOutputs];
    counts[action]++;
    if (action !== "same") o.log(`${{ create: "+", update: "~", replace: "+-", delete: "-", same: " " }[action]} ${action} ${type} ${name}${changed.length > 0 || onPurpose ? ` (${onPurpose ? "--replace" : changed.join(", ")})` : ""}`);
    if (replacing && old.protect) throw new Error(`${key} is protected (protect: true) and would be replaced; unprotect it first`);

    const oldOutputs = old ? Object.fromEntries(Object.entries(old.state).filter(([k]) => !(k in old.inputs))) : {};
    const record = (id: string, outputs: Outputs): StoredResource => ({
      type,
      name,
      id,
      inputs,
      state: { ...outputs, ...stored },
      protect: opts.protect,
      deleteBeforeReplace: opts.deleteBeforeReplace,
      ignoreChanges: opts.ignoreChanges,
      deletedWith: urnKey.get(opts.deletedWith) ?? "",
      // Every dependency completed before this registration, so its URN is known by now.
      dependencies: opts.dependencies.map((u) => urnKey.get(u)).filter((k): k is string => k !== undefined),
      secretOutputs,
      secretInputs: secretInputNames(rawInputs),
    });
    let id: string;
    let outputs: Outputs;
    if (o.preview) {
      id = action === "same" || action === "update" ? old!.id : "(known after up)";
      outputs = oldOutputs;
    } else if (action === "same" || action === "update") {
      id = old!.id;
      outputs = action === "same" ? oldOutputs : await provider.update(ctx, name, old!.id, { inputs: old!.inputs, outputs: oldOutputs }, inputs);
      ledger.put(key, record(id, outputs));
    } else {
      // The option as this run sends it decides, as it does for Pulumi.
      if (action === "replace" && opts.deleteBeforeReplace) {
        await provider.delete(ctx, name, old!.id, { inputs: old!.inputs, outputs: oldOutputs });
        ledger.gone(old!);
      }
      ({ id, outputs } = await provider.create(ctx, name, inputs));
      // A replaced resource's old copy stays live, now an old copy the run deletes at its end.
      ledger.put(key, record(id, outputs));
    }
    return { id, state: { ...rawInputs, ...wrapSecrets(outputs, secretOutputs) } };
  }

  // A failed registration rejects the outputs of everything downstream of it; each failure is
  // already recorded above, and the run ends with them, as `pulumi up` does.
  process.on("unhandledRejection", () => undefined);
  pulumi.runtime.setAllConfig({ ...o.config, ...o.secrets }, Object.keys(o.secrets));
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require(join(PROJECT_ROOT, "index")) as Record<string, unknown>;
    for (const [k, v] of Object.entries(program)) {
      if (!pulumi.Output.isInstance(v)) {
        if (v !== undefined) outputs[k] = v;
        continue;
      }
      try {
        const value = await (v as unknown as { promise(): Promise<unknown> }).promise();
        if (value === undefined) continue;
        outputs[k] = value;
        if (await pulumi.isSecret(v)) secretOutputs.push(k);
      } catch {
        // A failed resource leaves the outputs that depend on it unset; its error is recorded.
      }
    }
    await pulumi.runtime.disconnect().catch(() => undefined);
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }

  const removed = Object.entries(prior.resources).filter(([k]) => !registered.has(k)).map(([, r]) => r);
  if (o.preview) {
    for (const r of removed) o.log(`- delete ${r.type} ${r.name}`);
    counts.delete += removed.length;
    return { ok: errors.length === 0, errors, counts, outputs, secretOutputs };
  }
  // Deletes only after a run that reached every resource: after a failure, what the program
  // did not register may only be unreached, and old copies may still be what serves.
  if (errors.length === 0) {
    for (const r of removed) o.log(`- delete ${r.type} ${r.name}`);
    await deleteAll(ctx, o, ledger, deleteOrder([...removed, ...ledger.oldCopies()]), counts, errors);
  }
  ledger.save(errors.length === 0 ? { outputs, secretOutputs } : { outputs: { ...prior.outputs, ...outputs }, secretOutputs: [...new Set([...prior.secretOutputs, ...secretOutputs])] });
  return { ok: errors.length === 0, errors, counts, outputs, secretOutputs };
}

async function deleteAll(ctx: ProviderContext, o: EngineOptions, ledger: Ledger, order: readonly StoredResource[], counts: Record<Action, number>, errors: string[]): Promise<void> {
  // Keys with a copy being deleted in this run: what is deletedWith one of them needs no call.
  const deleting = new Set(order.map((r) => keyOf(r.type, r.name)));
  for (const r of order) {
    const key = keyOf(r.type, r.name);
    if (r.protect) {
      errors.push(`${key} is protected (protect: true); unprotect it before deleting`);
      return;
    }
    counts.delete++;
    try {
      if (!(r.deletedWith && deleting.has(r.deletedWith))) {
        const outputs = Object.fromEntries(Object.entries(r.state).filter(([k]) => !(k in r.inputs)));
        await providerOf(r.type).delete(ctx, r.name, r.id, { inputs: r.inputs, outputs });
      }
      ledger.gone(r);
    } catch (e) {
      errors.push(`deleting ${key}: ${e instanceof Error ? e.message : String(e)}`);
      o.log(`  error deleting ${r.name}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  }
}

/** Another local stack's outputs, as a StackReference reads them. */
function stackReference(o: EngineOptions, name: string): { id: string; state: Record<string, unknown> } {
  const stack = name.split("/").at(-1)!;
  const file = readStackFile(o.stateDir, stack);
  const outputs = Object.fromEntries(Object.entries(file.outputs).map(([k, v]) => [k, file.secretOutputs.includes(k) ? asSecret(v) : v]));
  return { id: name, state: { name, outputs, secretOutputNames: file.secretOutputs } };
}
