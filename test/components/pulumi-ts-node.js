// Loads a TypeScript entry the way `pulumi up` does (@pulumi/pulumi/cmd/run/run.js, CommonJS
// path): ts-node found by Pulumi's own lookup (the vendored 7.0.1 here), the project's
// typescript, tsconfig.json's compilerOptions over Pulumi's defaults, type checking on.
// Plain JavaScript on purpose: nothing else may compile the program first.
"use strict";
const path = require("node:path");
const root = path.join(__dirname, "..", "..");
process.chdir(root);
const tsutils = require("@pulumi/pulumi/tsutils");
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
const compilerOptions = tsutils.loadTypeScriptCompilerOptions("tsconfig.json");
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  project: "tsconfig.json",
  skipProject: false,
  compilerOptions: { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", sourceMap: "true", ...compilerOptions },
});
process.stderr.write(`loader: ts-node ${require(tsnodeRequire).VERSION}, typescript ${require(typescriptRequire).version}\n`);
require(path.resolve(root, process.argv[2]));
