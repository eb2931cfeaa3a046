#!/usr/bin/env node
// `npm start`: .dev.vars (created when missing), local D1 migrations, then
// wrangler dev on 127.0.0.1:8787 with local D1 and Durable Objects.
import { spawnSync, spawn } from "node:child_process";

const port = process.env.PORT || "8787"; // an empty PORT means the default too
const run = (cmd, args) => {
  const result = spawnSync(cmd, args, { stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
run(process.execPath, ["scripts/dev-vars.mjs"]);
run("wrangler", ["d1", "migrations", "apply", "DB", "--local"]);
const dev = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", port, ...process.argv.slice(2)], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));
