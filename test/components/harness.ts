// Loads the real index.ts under Pulumi's mocks, once per process (node --test runs each test
// file in its own process): config from a Pulumi.<stack>.yaml, secrets set as secret config,
// and every resource the program registers recorded with its inputs, in registration order.
import * as pulumi from "@pulumi/pulumi";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_DIR_ENV } from "../../components/program/program-files";

export { isSecret, reveal, SECRET_SIG } from "../../local/engine/secret-values";
import { reveal } from "../../local/engine/secret-values";

export type { SentOptions } from "../../local/engine/sent-options";
import { watchRegistrations, type SentOptions } from "../../local/engine/sent-options";

export interface Recorded {
  readonly seq: number;
  readonly type: string;
  readonly name: string;
  readonly id: string;
  /** Inputs as the mock monitor received them: secrets still wrapped. */
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
}

export interface Loaded {
  readonly resources: Recorded[];
  /** By "<type> <name>". */
  readonly options: ReadonlyMap<string, SentOptions>;
  readonly exports: Record<string, unknown>;
  /** Which exports arrived as secrets. */
  readonly secretExports: ReadonlySet<string>;
  readonly bundleDir: string;
}

export { configFromYaml } from "../../local/engine/stack-config";

/** A registration as the mock provider sees it, with the options the program sent. */
export interface MockRegistration {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly options: SentOptions | undefined;
}

/**
 * Stands in for the providers behind the mocks (test/components/lifecycle/): which id a
 * registration gets (the prior one, or a new one when the provider would replace it) and
 * what state it reports. Without it, ids count up from 1000 and state echoes the inputs.
 */
export interface MockProvider {
  id(reg: MockRegistration): string | Promise<string>;
  state?(reg: MockRegistration, id: string): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
}

export interface LoadOptions {
  readonly stack: string;
  readonly config: Record<string, string>;
  /** Keys without namespace, set as secret config. */
  readonly secrets?: Record<string, string>;
  /** Outputs of each StackReference, by referenced stack name. */
  readonly stackReferences?: Record<string, Record<string, unknown>>;
  readonly apply?: (config: Record<string, string>) => Record<string, string>;
  readonly provider?: MockProvider;
  /** Where the program writes its upload directories; a fresh temp dir by default. */
  readonly bundleDir?: string;
}

export async function loadProgram(opts: LoadOptions): Promise<Loaded> {
  const resources: Recorded[] = [];
  const options = new Map<string, SentOptions>();
  let nextId = 1000;
  const bundleDir = opts.bundleDir ?? mkdtempSync(join(tmpdir(), "ingress-bundles-"));
  process.env[BUNDLE_DIR_ENV] = bundleDir;
  if (!opts.bundleDir) process.on("exit", () => rmSync(bundleDir, { recursive: true, force: true }));
  // Options by "<type> <name>", taken from each request before the mock provider sees it.
  const pending = new Map<string, SentOptions>();

  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const inputs = args.inputs as Record<string, unknown>;
        const reg: MockRegistration = { type: args.type, name: args.name, inputs, options: pending.get(`${args.type} ${args.name}`) };
        const custom = opts.provider && args.type !== "pulumi:pulumi:StackReference";
        const id = args.type === "pulumi:pulumi:StackReference" ? String(inputs["name"]) : custom ? await opts.provider!.id(reg) : String(nextId++);
        const provided = custom ? await opts.provider!.state?.(reg, id) : undefined;
        if (provided) return record(args.type, args.name, inputs, id, provided);
        let state: Record<string, unknown> = { ...inputs };
        switch (args.type) {
          case "hcloud:index/server:Server": {
            const n = resources.filter((r) => r.type === args.type).length + 10;
            state = { ...state, ipv4Address: `203.0.113.${n}`, ipv6Address: `2001:db8:${n}::1` };
            break;
          }
          case "hcloud:index/networkSubnet:NetworkSubnet":
            return record(args.type, args.name, inputs, `${String(reveal(inputs["networkId"]))}-${String(inputs["ipRange"])}`, state);
          case "tls:index/privateKey:PrivateKey":
            state = {
              ...state,
              privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\nmock-${args.name}\n-----END OPENSSH PRIVATE KEY-----\n`,
              privateKeyPem: `-----BEGIN PRIVATE KEY-----\nmock-${args.name}\n-----END PRIVATE KEY-----\n`,
              publicKeyOpenssh: `ssh-ed25519 AAAAmock${args.name.replace(/[^A-Za-z0-9]/g, "")}\n`,
            };
            break;
          case "command:remote:Command":
            // What the boot step prints last: the server's host key (deploy-commands.ts).
            if (args.name.endsWith("-boot")) state = { ...state, stdout: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAImock${args.name.replace(/[^A-Za-z0-9]/g, "")} root@${args.name}\n` };
            break;
          case "tls:index/selfSignedCert:SelfSignedCert":
            state = { ...state, certPem: `-----BEGIN CERTIFICATE-----\nmock-${args.name}\n-----END CERTIFICATE-----\n` };
            break;
          case "pulumi:pulumi:StackReference": {
            const outputs = opts.stackReferences?.[id];
            if (!outputs) throw new Error(`test gave no outputs for StackReference ${id}`);
            state = { name: id, outputs, secretOutputNames: [] };
            break;
          }
        }
        return record(args.type, args.name, inputs, id, state);
      },
      call(args) {
        throw new Error(`unexpected call ${args.token}`);
      },
    },
    "hetzner-ingress",
    opts.stack,
    false,
    // What a self-managed backend answers for pulumi.getOrganization().
    "organization",
  );

  watchRegistrations(
    (key, o) => pending.set(key, o),
    (key, o) => options.set(key, o),
  );

  function record(type: string, name: string, inputs: Record<string, unknown>, id: string, state: Record<string, unknown>) {
    resources.push({ seq: resources.length, type, name, id, inputs, state });
    return { id, state };
  }

  const secretKeys = Object.keys(opts.secrets ?? {}).map((k) => `hetzner-ingress:${k}`);
  const all = { ...opts.config, ...Object.fromEntries(Object.entries(opts.secrets ?? {}).map(([k, v]) => [`hetzner-ingress:${k}`, v])) };
  pulumi.runtime.setAllConfig(all, secretKeys);

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const program = require("../../index") as Record<string, unknown>;
  const exports: Record<string, unknown> = {};
  const secretExports = new Set<string>();
  for (const [key, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) {
      if (await pulumi.isSecret(value)) secretExports.add(key);
      exports[key] = await new Promise((resolve) => value.apply(resolve));
    } else {
      exports[key] = value;
    }
  }
  await pulumi.runtime.disconnect();
  return { resources, options, exports, secretExports, bundleDir };
}

/** Resources of one type, by name. */
export function ofType(loaded: Loaded, type: string): Map<string, Recorded> {
  return new Map(loaded.resources.filter((r) => r.type === type).map((r) => [r.name, r]));
}

export function one(loaded: Loaded, type: string, name: string): Recorded {
  const r = loaded.resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`no ${type} named ${name}; have: ${loaded.resources.map((x) => `${x.type}/${x.name}`).join(", ")}`);
  return r;
}

/** The options the program sent for one resource. */
export function sent(loaded: Loaded, type: string, name: string): SentOptions {
  const o = loaded.options.get(`${type} ${name}`);
  if (!o) throw new Error(`no options recorded for ${type} ${name}`);
  return o;
}

export function urnOf(loaded: Loaded, type: string, name: string): string {
  return sent(loaded, type, name).urn;
}
