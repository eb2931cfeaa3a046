#!/usr/bin/env node
// Keeps package-lock.json installable with `npm ci` on every platform.
//
// workerd ships its binary as one optional package per platform. When the
// registry an install runs against serves only some of them, npm writes a
// lock without the others, and `npm ci` then rejects that lock as out of
// sync. This adds the missing entries (name, version, os, cpu: what npm
// needs to skip them on other platforms and to fetch them on theirs).
// Run it after any `npm install` that changes the lock.
import { readFileSync, writeFileSync } from "node:fs";

const PLATFORMS = {
  "@cloudflare/workerd-darwin-64": { os: "darwin", cpu: "x64" },
  "@cloudflare/workerd-darwin-arm64": { os: "darwin", cpu: "arm64" },
  "@cloudflare/workerd-linux-64": { os: "linux", cpu: "x64" },
  "@cloudflare/workerd-linux-arm64": { os: "linux", cpu: "arm64" },
  "@cloudflare/workerd-windows-64": { os: "win32", cpu: "x64" },
};

const path = "package-lock.json";
const lock = JSON.parse(readFileSync(path, "utf8"));
let added = 0;
for (const [location, entry] of Object.entries(lock.packages)) {
  if (!location.endsWith("node_modules/workerd") || !entry.optionalDependencies) continue;
  const base = location.slice(0, -"workerd".length);
  for (const [name, version] of Object.entries(entry.optionalDependencies)) {
    const key = `${base}${name}`;
    const platform = PLATFORMS[name];
    if (lock.packages[key] || !platform) continue;
    lock.packages[key] = { version, cpu: [platform.cpu], dev: true, license: "Apache-2.0", optional: true, os: [platform.os], engines: { node: ">=16" } };
    added++;
  }
}
if (added > 0) {
  writeFileSync(path, JSON.stringify(lock, null, 2) + "\n");
  console.log(`package-lock.json: added ${added} platform entries for workerd`);
}
