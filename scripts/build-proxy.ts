// npm run build:proxy: dist/proxy.js, the embedded proxy as one node script, built the way the
// program builds it for the ts engine's hosts (components/program-files.ts buildScript).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildScript } from "../components/program/program-files";

const out = join(__dirname, "..", "dist", "proxy.js");
mkdirSync(join(__dirname, "..", "dist"), { recursive: true });
writeFileSync(out, buildScript(join(__dirname, "..", "proxy", "main.ts")));
console.log(`wrote ${out}`);
