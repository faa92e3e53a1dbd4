// Reads the stack config through pulumi.Config and validates it. A config error stops the
// program with the validation message alone (RunError: no stack trace), which names every
// wrong field at once.
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigValidationError, PROJECT, validateStackConfig, type StackPlan, type Topology } from "../../topology";
import { missingSecretsMessage, requiredSecretKeys, unknownConfigKeys, unknownKeysMessage } from "../deploy/secret-plan";
import type { SecretLookup } from "../secret-files";

/**
 * Pulumi hands structured values (lists, maps) to the program as JSON text and scalars as
 * plain text, so `getObject` throws on `location: fsn1`: parse JSON where it parses.
 */
function configValue(config: pulumi.Config, key: string): unknown {
  const text = config.get(key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function readRawConfig(config: pulumi.Config): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = configValue(config, key);
    if (value !== undefined) raw[key] = value;
  }
  return raw;
}

export function topologyFromConfig(config: pulumi.Config, stack: string): Topology {
  try {
    return validateStackConfig(stack, readRawConfig(config));
  } catch (error) {
    if (error instanceof ConfigValidationError) throw new pulumi.RunError(error.message);
    throw error;
  }
}

/** Fails before any resource exists when a secret the plan reads is not set, naming every one. */
export function secretLookup(config: pulumi.Config, plan: StackPlan): SecretLookup {
  const unknown = unknownConfigKeys(Object.keys(pulumi.runtime.allConfig()), PROJECT, CONFIG_KEYS, plan);
  if (unknown.length > 0) throw new pulumi.RunError(unknownKeysMessage(plan.stack, unknown, CONFIG_KEYS));
  const missing = requiredSecretKeys(plan).filter((key) => config.getSecret(key) === undefined);
  if (missing.length > 0) throw new pulumi.RunError(missingSecretsMessage(plan.stack, missing));
  return (key) => config.requireSecret(key);
}
