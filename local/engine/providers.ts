// What each resource type the program registers does in the local cloud, per lifecycle step.
// Inputs arrive plain (secrets revealed, archives as { archive: path }); outputs are what the
// real provider reports beside the inputs. docs/local-engine.md lists what is modelled.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { callCloud } from "../cloud/protocol";
import type { ServerInfo } from "../cloud/cloud";
import { copyToRemote, runRemote, type Connection } from "./ssh-command";
import { privateKey, selfSignedCert } from "./tls-material";

export interface ProviderContext {
  readonly operatorNetns: string;
  /** Root that archive paths in inputs are relative to. */
  readonly bundleRoot: string;
  /** One line per provider call that reaches the cloud or a host. */
  readonly log: (line: string) => void;
}

export type Inputs = Record<string, unknown>;
export type Outputs = Record<string, unknown>;

export interface Provider {
  create(ctx: ProviderContext, name: string, inputs: Inputs): Promise<{ id: string; outputs: Outputs }>;
  update(ctx: ProviderContext, name: string, id: string, old: { inputs: Inputs; outputs: Outputs }, inputs: Inputs): Promise<Outputs>;
  delete(ctx: ProviderContext, name: string, id: string, old: { inputs: Inputs; outputs: Outputs }): Promise<void>;
  /** Outputs the provider marks secret (sensitive attributes). */
  readonly secretOutputs?: readonly string[];
}

/** Recorded by the cloud, with nothing to realise (placement groups). */
const recordOnly: Provider = {
  async create() {
    return { id: String(await callCloud<number>("createPlacementGroup")), outputs: {} };
  },
  async update() {
    return {};
  },
  async delete() {},
};

function connectionOf(inputs: Inputs): Connection {
  const c = inputs["connection"] as Record<string, unknown> | undefined;
  if (!c || typeof c["host"] !== "string" || typeof c["privateKey"] !== "string") throw new Error("remote command: connection needs host and privateKey");
  return {
    host: c["host"],
    privateKey: c["privateKey"],
    ...(typeof c["user"] === "string" ? { user: c["user"] } : {}),
    ...(typeof c["port"] === "number" ? { port: c["port"] } : {}),
    ...(typeof c["hostKey"] === "string" ? { hostKey: c["hostKey"] } : {}),
    ...(typeof c["dialErrorLimit"] === "number" ? { dialErrorLimit: c["dialErrorLimit"] } : {}),
    ...(typeof c["perDialTimeout"] === "number" ? { perDialTimeout: c["perDialTimeout"] } : {}),
  };
}

async function runStep(ctx: ProviderContext, name: string, step: string, inputs: Inputs, command: string): Promise<Outputs> {
  const conn = connectionOf(inputs);
  ctx.log(`  ${step} ${name}: ssh ${conn.user ?? "root"}@${conn.host}`);
  const stdin = typeof inputs["stdin"] === "string" ? inputs["stdin"] : undefined;
  const out = await runRemote(ctx.operatorNetns, conn, command, stdin);
  if (inputs["logging"] !== "none") for (const line of `${out.stdout}${out.stderr}`.trimEnd().split("\n").filter((l) => l !== "")) ctx.log(`    ${line}`);
  return { stdout: out.stdout, stderr: out.stderr };
}

const remoteCommand: Provider = {
  async create(ctx, name, inputs) {
    const create = inputs["create"];
    const outputs = typeof create === "string" ? await runStep(ctx, name, "create", inputs, create) : { stdout: "", stderr: "" };
    return { id: `${name}-${Date.now().toString(36)}`, outputs };
  },
  async update(ctx, name, _id, _old, inputs) {
    const command = inputs["update"] ?? inputs["create"];
    return typeof command === "string" ? runStep(ctx, name, "update", inputs, command) : { stdout: "", stderr: "" };
  },
  async delete(ctx, name, _id, old) {
    const command = old.inputs["delete"];
    if (typeof command === "string") await runStep(ctx, name, "delete", old.inputs, command);
  },
};

async function copy(ctx: ProviderContext, name: string, step: string, inputs: Inputs): Promise<void> {
  const source = inputs["source"] as { archive?: unknown } | undefined;
  if (typeof source?.archive !== "string") throw new Error(`CopyToRemote ${name}: source must be a FileArchive`);
  // Archives under the bundle root are kept relative to it (plainInputs), others absolute.
  const local = existsSync(join(ctx.bundleRoot, source.archive)) ? join(ctx.bundleRoot, source.archive) : source.archive;
  const conn = connectionOf(inputs);
  ctx.log(`  ${step} ${name}: scp ${local} -> ${conn.host}:${String(inputs["remotePath"])}`);
  await copyToRemote(ctx.operatorNetns, conn, local, String(inputs["remotePath"]));
}

const copyToRemoteProvider: Provider = {
  async create(ctx, name, inputs) {
    await copy(ctx, name, "create", inputs);
    return { id: `${name}-${Date.now().toString(36)}`, outputs: {} };
  },
  async update(ctx, name, _id, _old, inputs) {
    await copy(ctx, name, "update", inputs);
    return {};
  },
  // The provider leaves copied files where they are.
  async delete() {},
};

const num = (v: unknown): number => Number(v);

const server: Provider = {
  async create(ctx, name, inputs) {
    const nets = ((inputs["publicNets"] as Inputs[] | undefined) ?? [])[0] ?? {};
    ctx.log(`  create server ${String(inputs["name"])}`);
    const info = await callCloud<ServerInfo>("createServer", {
      name: String(inputs["name"]),
      sshKeyIds: ((inputs["sshKeys"] as unknown[]) ?? []).map(num),
      firewallIds: ((inputs["firewallIds"] as unknown[]) ?? []).map(num),
      userData: String(inputs["userData"] ?? ""),
      ...(nets["ipv4"] !== undefined ? { primaryIpv4: num(nets["ipv4"]) } : {}),
      ...(nets["ipv6"] !== undefined ? { primaryIpv6: num(nets["ipv6"]) } : {}),
    });
    return { id: String(info.id), outputs: { ipv4Address: info.ipv4, ipv6Address: info.ipv6, status: "running" } };
  },
  async update(ctx, name, id, old, inputs) {
    const before = JSON.stringify(old.inputs["firewallIds"] ?? []);
    if (JSON.stringify(inputs["firewallIds"] ?? []) !== before) {
      ctx.log(`  update server ${id}: firewalls`);
      await callCloud("setServerFirewalls", num(id), ((inputs["firewallIds"] as unknown[]) ?? []).map(num));
    }
    return { ipv4Address: old.outputs["ipv4Address"], ipv6Address: old.outputs["ipv6Address"], status: "running" };
  },
  async delete(ctx, name, id, old) {
    if (old.inputs["deleteProtection"] === true) throw new Error(`server ${id} is delete-protected (deleteProtection: true): hcloud refuses to delete it`);
    ctx.log(`  delete server ${id}`);
    await callCloud("deleteServer", num(id));
  },
};

const network: Provider = {
  async create(ctx, name, inputs) {
    ctx.log(`  create network ${String(inputs["name"])} ${String(inputs["ipRange"])}`);
    return { id: String(await callCloud<number>("createNetwork", String(inputs["ipRange"]))), outputs: {} };
  },
  async update() {
    return {};
  },
  async delete(ctx, name, id, old) {
    if (old.inputs["deleteProtection"] === true) throw new Error(`network ${id} is delete-protected: hcloud refuses to delete it`);
    ctx.log(`  delete network ${id}`);
    await callCloud("deleteNetwork", num(id));
  },
};

const subnet: Provider = {
  // The provider's id for a subnet: "<network id>-<ip range>".
  async create(_ctx, _name, inputs) {
    return { id: `${String(inputs["networkId"])}-${String(inputs["ipRange"])}`, outputs: {} };
  },
  async update() {
    return {};
  },
  async delete() {},
};

const serverNetwork: Provider = {
  async create(ctx, name, inputs) {
    const networkId = String(inputs["subnetId"] ?? inputs["networkId"]).split("-")[0];
    ctx.log(`  attach server ${String(inputs["serverId"])} to network ${networkId} as ${String(inputs["ip"])}`);
    const id = await callCloud<number>("attach", num(inputs["serverId"]), num(networkId), String(inputs["ip"]));
    return { id: String(id), outputs: {} };
  },
  async update() {
    return {};
  },
  async delete(ctx, name, id) {
    ctx.log(`  detach attachment ${id}`);
    await callCloud("detach", num(id));
  },
};

const sshKey: Provider = {
  async create(_ctx, _name, inputs) {
    return { id: String(await callCloud<number>("createSshKey", String(inputs["publicKey"]))), outputs: { fingerprint: "" } };
  },
  async update() {
    return {};
  },
  async delete(_ctx, _name, id) {
    await callCloud("deleteSshKey", num(id));
  },
};

const firewall: Provider = {
  async create(ctx, name, inputs) {
    ctx.log(`  create firewall ${String(inputs["name"])}`);
    return { id: String(await callCloud<number>("createFirewall", inputs["rules"] ?? [])), outputs: {} };
  },
  async update(ctx, name, id, _old, inputs) {
    ctx.log(`  update firewall ${id}: rules`);
    await callCloud("updateFirewall", num(id), inputs["rules"] ?? []);
    return {};
  },
  async delete(_ctx, _name, id) {
    await callCloud("deleteFirewall", num(id));
  },
};

const primaryIp: Provider = {
  async create(ctx, name, inputs) {
    const p = await callCloud<{ id: number; ip: string }>("createPrimaryIp", String(inputs["type"]));
    ctx.log(`  create primary ip ${p.ip}`);
    return { id: String(p.id), outputs: { ipAddress: p.ip } };
  },
  async update(_ctx, _name, _id, old) {
    return { ipAddress: old.outputs["ipAddress"] };
  },
  async delete(_ctx, _name, id, old) {
    if (old.inputs["deleteProtection"] === true) throw new Error(`primary IP ${id} is delete-protected: hcloud refuses to delete it`);
    await callCloud("deletePrimaryIp", num(id));
  },
};

const tlsPrivateKey: Provider = {
  secretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
  async create(_ctx, name, inputs) {
    return { id: `${name}-${Date.now().toString(36)}`, outputs: { ...(await privateKey(inputs)) } };
  },
  async update(_ctx, _name, _id, old) {
    return old.outputs;
  },
  async delete() {},
};

const tlsSelfSignedCert: Provider = {
  async create(_ctx, name, inputs) {
    return { id: `${name}-${Date.now().toString(36)}`, outputs: { ...(await selfSignedCert(inputs)) } };
  },
  async update(_ctx, _name, _id, old) {
    return old.outputs;
  },
  async delete() {},
};

export const PROVIDERS: Readonly<Record<string, Provider>> = {
  "hcloud:index/network:Network": network,
  "hcloud:index/networkSubnet:NetworkSubnet": subnet,
  "hcloud:index/server:Server": server,
  "hcloud:index/serverNetwork:ServerNetwork": serverNetwork,
  "hcloud:index/sshKey:SshKey": sshKey,
  "hcloud:index/firewall:Firewall": firewall,
  "hcloud:index/placementGroup:PlacementGroup": recordOnly,
  "hcloud:index/primaryIp:PrimaryIp": primaryIp,
  "tls:index/privateKey:PrivateKey": tlsPrivateKey,
  "tls:index/selfSignedCert:SelfSignedCert": tlsSelfSignedCert,
  "command:remote:Command": remoteCommand,
  "command:remote:CopyToRemote": copyToRemoteProvider,
};

export function providerOf(type: string): Provider {
  const p = PROVIDERS[type];
  if (!p) throw new Error(`the local engine has no provider for ${type}: add it to local/engine/providers.ts`);
  return p;
}
