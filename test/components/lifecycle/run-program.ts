// Child-process entry (a Pulumi program loads once per process): runs index.ts under mocks
// against a prior state, as `pulumi up` would, and prints the new state as the last line.
// Ids follow the provider rows: kept, or new where the provider would replace.
import { readFileSync } from "node:fs";
import { loadProgram, type MockRegistration } from "../harness";
import { changedInputs, keyOf, plainInputs, replaces, type ResourceState, type StackState } from "../../../local/engine/diff";
import { providerRow } from "../../../local/engine/provider-schema";

export interface RunRequest {
  readonly stack: string;
  readonly config: Record<string, string>;
  readonly secrets?: Record<string, string>;
  readonly stackReferences?: Record<string, Record<string, unknown>>;
  readonly prior: StackState;
  /** Keys replaced on purpose (`pulumi up --replace <urn>`). */
  readonly replace: readonly string[];
  readonly bundleDir: string;
  readonly nextId: number;
}

export interface RunResult {
  readonly state: StackState;
  readonly exports: Record<string, unknown>;
  readonly nextId: number;
}

const req = JSON.parse(readFileSync(process.env["LIFECYCLE_REQUEST"]!, "utf8")) as RunRequest;
let nextId = req.nextId;

const plain = async (reg: MockRegistration) => (await plainInputs(reg.inputs, req.bundleDir)) as Record<string, unknown>;

/** Addresses as Hetzner gives them: a primary IP's own, otherwise new with every server. */
function serverState(inputs: Record<string, unknown>, id: string): Record<string, unknown> {
  const net = (inputs["publicNets"] as Record<string, unknown>[] | undefined)?.[0] ?? {};
  const v4 = net["ipv4"] !== undefined ? `198.51.100.${Number(net["ipv4"]) % 250}` : `203.0.113.${Number(id) % 250}`;
  const v6 = net["ipv6"] !== undefined ? `2001:db8:${Number(net["ipv6"])}::1` : `2001:db8:${Number(id)}::1`;
  return { ipv4Address: v4, ipv6Address: v6 };
}

function outputs(type: string, name: string, inputs: Record<string, unknown>, id: string): Record<string, unknown> {
  switch (type) {
    case "hcloud:index/server:Server":
      return serverState(inputs, id);
    case "hcloud:index/primaryIp:PrimaryIp":
      return { ipAddress: inputs["type"] === "ipv4" ? `198.51.100.${Number(id) % 250}` : `2001:db8:${id}::/64` };
    case "tls:index/privateKey:PrivateKey":
      // New key material with every new key: a replaced key reaches the files that carry it.
      return {
        privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\nmock-${name}-${id}\n-----END OPENSSH PRIVATE KEY-----\n`,
        privateKeyPem: `-----BEGIN PRIVATE KEY-----\nmock-${name}-${id}\n-----END PRIVATE KEY-----\n`,
        // The tls provider ends it with a newline, as ssh-keygen does.
        publicKeyOpenssh: `ssh-ed25519 AAAAmock${name.replace(/[^A-Za-z0-9]/g, "")}${id}\n`,
      };
    case "command:remote:Command":
      // The boot step prints the server's host key: a new one with every new boot (server).
      return name.endsWith("-boot") ? { stdout: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhost${id} root@${name}\n` } : {};
    case "tls:index/selfSignedCert:SelfSignedCert":
      return { certPem: `-----BEGIN CERTIFICATE-----\nmock-${name}-${id}\n-----END CERTIFICATE-----\n` };
    default:
      return {};
  }
}

loadProgram({
  stack: req.stack,
  config: req.config,
  ...(req.secrets ? { secrets: req.secrets } : {}),
  ...(req.stackReferences ? { stackReferences: req.stackReferences } : {}),
  bundleDir: req.bundleDir,
  provider: {
    async id(reg) {
      const key = keyOf(reg.type, reg.name);
      const old = req.prior[key];
      let id: string;
      if (!old || req.replace.includes(key)) id = String(nextId++);
      else id = replaces(reg.type, changedInputs(old, await plain(reg), reg.options?.ignoreChanges ?? [])).length > 0 ? String(nextId++) : old.id;

      return id;
    },
    state(reg, id) {
      const key = keyOf(reg.type, reg.name);
      const old = req.prior[key];
      // A kept resource reports what it reported before (its addresses do not move).
      const extra = old && old.id === id ? Object.fromEntries(Object.entries(old.state).filter(([k]) => !(k in old.inputs))) : outputs(reg.type, reg.name, reg.inputs, id);
      return { ...reg.inputs, ...extra };
    },
  },
}).then(
  async (loaded) => {
    const keyOfUrn = new Map([...loaded.options.values()].map((o) => [o.urn, ""]));
    for (const [k, o] of loaded.options) keyOfUrn.set(o.urn, k);
    const state: StackState = {};
    for (const r of loaded.resources) {
      if (r.type.startsWith("ingress:hetzner:") || r.type === "pulumi:pulumi:StackReference") continue;
      const key = keyOf(r.type, r.name);
      const o = loaded.options.get(key)!;
      const inputs = (await plainInputs(r.inputs, req.bundleDir)) as Record<string, unknown>;
      const row = providerRow(r.type);
      const outs = (await plainInputs(r.state, req.bundleDir)) as Record<string, unknown>;
      const stored = row.stored ? row.stored(inputs) : inputs;
      const entry: ResourceState = {
        type: r.type,
        name: r.name,
        id: r.id,
        inputs,
        state: { ...outs, ...stored },
        protect: o.protect,
        deleteBeforeReplace: o.deleteBeforeReplace,
        ignoreChanges: o.ignoreChanges,
        deletedWith: o.deletedWith ? (keyOfUrn.get(o.deletedWith) ?? o.deletedWith) : "",
      };
      state[key] = entry;
    }
    const result: RunResult = { state, exports: loaded.exports, nextId };
    console.log(JSON.stringify(result));
  },
  (error: unknown) => {
    console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
  },
);
