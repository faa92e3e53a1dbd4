// Mocks never see resource options, so the functions that build them are checked here.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import {
  attachmentOptions,
  deployStepOptions,
  primaryIpOptions,
  fragmentOptions,
  protectedOptions,
  SECRET_COMMAND_OUTPUTS,
  secretStepOptions,
  SERVER_IGNORE_CHANGES,
  serverOptions,
  serverProtection,
} from "../../components/options";

// Plain objects stand in for resources: the builders only place them in the options.
const parent = { name: "parent" } as unknown as pulumi.Resource;
const server = { name: "server" } as unknown as pulumi.Resource;
const attachment = { name: "attachment" } as unknown as pulumi.Resource;

test("servers ignore the inputs that would replace or power them off, are replaced delete first, and prod protects them", () => {
  const ignored = ["userData", "sshKeys", "image", "location", "serverType"];
  assert.deepEqual(SERVER_IGNORE_CHANGES, ignored);
  assert.deepEqual(serverOptions(true, parent), { parent, protect: true, deleteBeforeReplace: true, ignoreChanges: ignored });
  assert.deepEqual(serverOptions(false, parent), { parent, protect: false, deleteBeforeReplace: true, ignoreChanges: ignored });
  // A copy: a caller mutating its options cannot change the next server's.
  (serverOptions(true, parent).ignoreChanges as string[]).push("labels");
  assert.deepEqual(serverOptions(true, parent).ignoreChanges, ignored);
});

test("attachments and subnets are replaced delete first; the LB's primary IPs ignore a location change", () => {
  assert.deepEqual(attachmentOptions(true, parent), { parent, protect: true, deleteBeforeReplace: true });
  assert.deepEqual(primaryIpOptions(true, parent), { parent, protect: true, ignoreChanges: ["location"] });
});

test("Hetzner protection follows the same switch, delete and rebuild together", () => {
  assert.deepEqual(serverProtection(true), { deleteProtection: true, rebuildProtection: true });
  assert.deepEqual(serverProtection(false), { deleteProtection: false, rebuildProtection: false });
  assert.deepEqual(protectedOptions(true, parent), { parent, protect: true });
  assert.deepEqual(protectedOptions(false, parent), { parent, protect: false });
});

test("deploy steps go away with their server and wait for what they depend on", () => {
  assert.deepEqual(deployStepOptions(parent, server, [attachment]), { parent, deletedWith: server, dependsOn: [attachment] });
  assert.deepEqual(secretStepOptions(parent, server, [attachment]), {
    parent,
    deletedWith: server,
    dependsOn: [attachment],
    additionalSecretOutputs: ["stdin", "stdout", "stderr"],
  });
  assert.deepEqual(SECRET_COMMAND_OUTPUTS, ["stdin", "stdout", "stderr"]);
});

test("an attached stack's route fragment is never deletedWith anything: its delete removes the routes", () => {
  const opts = fragmentOptions(parent, [attachment, server]);
  assert.deepEqual(opts, { parent, deleteBeforeReplace: true, dependsOn: [attachment, server], additionalSecretOutputs: ["stdout", "stderr"] });
  assert.equal("deletedWith" in opts, false);
  assert.equal("protect" in opts, false);
});
