// npm run build:proxy: dist/proxy.js, the embedded proxy as one node script, built the way the
// program builds it for the ts engine's hosts (components/program-files.ts bundleOf).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleOf } from "../components/program-files";

const out = join(__dirname, "..", "dist", "proxy.js");
mkdirSync(join(__dirname, "..", "dist"), { recursive: true });
writeFileSync(out, bundleOf(join(__dirname, "..", "proxy", "main.ts")));
console.log(`wrote ${out}`);
