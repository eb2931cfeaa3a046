// Reads a .dev.vars file (KEY="value" lines) into an object.
import { readFileSync } from "node:fs";

export function readDevVars(path = ".dev.vars") {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = line.match(/^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/);
    if (!match) continue;
    const raw = match[2];
    vars[match[1]] = raw.startsWith('"') ? JSON.parse(raw) : raw;
  }
  return vars;
}
