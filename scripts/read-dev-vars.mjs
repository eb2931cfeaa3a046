// Reads a .dev.vars file (KEY="value" lines) into an object.
import { readFileSync } from "node:fs";

export function readDevVars(path = ".dev.vars") {
  const vars = {};
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return vars; // no file yet: callers say what to do
  }
  for (const line of text.split("\n")) {
    const match = line.match(/^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/);
    if (!match) continue;
    const raw = match[2];
    vars[match[1]] = raw.startsWith('"') ? JSON.parse(raw) : raw;
  }
  return vars;
}
