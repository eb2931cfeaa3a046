#!/usr/bin/env node
/**
 * The project's one-way arrows, checked on every `npm test`:
 *  - nothing under objects/ imports worker/ (the rooms never depend on routing);
 *  - nothing under client/ imports server code (worker/, objects/, server/).
 * protocol/ and server/ are the shared layers both sides may import.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const rules = [
  { from: "objects", forbidden: ["worker"] },
  { from: "client", forbidden: ["worker", "objects", "server"], skip: ["client/dist", "client/public/dist", "client/node_modules"] },
];

function* sourceFiles(dir, skip) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (skip.some((s) => relative(root, path) === s)) continue;
    if (statSync(path).isDirectory()) yield* sourceFiles(path, skip);
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(name)) yield path;
  }
}

const importPattern = /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
const violations = [];
for (const rule of rules) {
  for (const file of sourceFiles(join(root, rule.from), rule.skip ?? [])) {
    for (const match of readFileSync(file, "utf8").matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      if (!spec.startsWith(".")) continue;
      const target = relative(root, resolve(dirname(file), spec)).split("/")[0];
      if (rule.forbidden.includes(target)) violations.push(`${relative(root, file)} imports ${spec} (${rule.from}/ must not import ${target}/)`);
    }
  }
}
if (violations.length > 0) {
  console.error(`Layering violations:\n  ${violations.join("\n  ")}`);
  process.exit(1);
}
console.log("layers: objects/ imports no worker/, client/ imports no server code");
