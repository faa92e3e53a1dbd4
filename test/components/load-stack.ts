// Child-process entry for tests that need a fresh program per case (a Pulumi program loads
// once per process): loads index.ts under mocks with the config in $LOAD_STACK and prints
// {"ok": true} or {"error": "<message>", "runError": <bool>} as the last line. A RunError is
// what Pulumi reports as its message alone, without a stack trace.
import * as pulumi from "@pulumi/pulumi";
import { loadProgram } from "./harness";

interface Request {
  readonly stack: string;
  readonly config: Record<string, string>;
  readonly secrets?: Record<string, string>;
  readonly stackReferences?: Record<string, Record<string, unknown>>;
}

const request = JSON.parse(process.env["LOAD_STACK"] ?? "{}") as Request;
loadProgram(request).then(
  () => console.log(JSON.stringify({ ok: true })),
  (error: unknown) => console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error), runError: pulumi.RunError.isInstance(error) })),
);
