#!/usr/bin/env node
// Builds the client: the library to client/dist (ESM JavaScript by esbuild,
// type declarations by tsc) and the demo page's script to
// client/public/dist/chat.js, which the Worker serves as a static asset.
// Usage: node client/build.mjs   (npm run build:client)
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "../node_modules/.bin");

rmSync(join(here, "dist"), { recursive: true, force: true });
rmSync(join(here, "public/dist"), { recursive: true, force: true });

const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning", legalComments: "none" };

await Promise.all([
  build({ ...common, entryPoints: [join(here, "src/index.ts")], outfile: join(here, "dist/index.js"), platform: "neutral" }),
  build({ ...common, entryPoints: [join(here, "demo/main.ts")], outfile: join(here, "public/dist/chat.js"), platform: "browser" }),
]);

const tsc = spawnSync(join(bin, "tsc"), ["-p", join(here, "tsconfig.json")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
// The shared protocol/ modules import each other without extensions (the Worker's bundler
// resolves them); Node-style ESM resolution needs `.js`, so add it in their declarations.
for (const entry of readdirSync(join(here, "dist/types"), { recursive: true })) {
  const file = join(here, "dist/types", String(entry));
  if (!file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(/((?:from\s+|import\()["'])(\.{1,2}\/[^"']+?)(?<!\.js)(["'])/g, "$1$2.js$3");
  if (fixed !== text) writeFileSync(file, fixed);
}
mkdirSync(join(here, "dist"), { recursive: true });
writeFileSync(join(here, "dist/index.d.ts"), 'export * from "./types/client/src/index.js";\n');
console.log("client built: client/dist/index.js, client/dist/index.d.ts, client/public/dist/chat.js");
