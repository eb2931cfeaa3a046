#!/usr/bin/env node
// `npm run serve`: the bundle `wrangler deploy` ships, run on workerd without
// wrangler dev's tooling, for benchmarks, soak and load tests, and for running
// the service on one machine without a Cloudflare account (`npm start` stays
// the developer's server: wrangler dev, live reload).
//
// How: wrangler builds the bundle (`wrangler deploy --dry-run`) and translates
// wrangler.toml into Miniflare's options (unstable_getMiniflareWorkerOptions:
// bindings, Durable Objects, D1, assets, compatibility), so nothing here
// restates the configuration. Miniflare then runs that bundle on workerd with
// its own local D1, SQLite Durable Object storage and asset server, and
// `unsafeDirectSockets` puts the Worker (behind the asset router, as on
// Cloudflare) on the public port itself: no entry worker, proxy, inspector or
// per-request logging in front. D1 migrations are applied before the port
// opens (see applyMigrations and the two starts below).
//
//   node scripts/serve.mjs [--config wrangler.toml] [--state .wrangler/serve-state]
//                          [--env-file .dev.vars] [--port N] [--ip 127.0.0.1] [--inspector-port N]
//
// PORT sets the port (default 8787; 0: any free one). Output is JSON lines:
// a "migration applied" line per migration applied, then
// {"level":"info","message":"serving","url":…,"workerdPid":…}. The
// Worker's console output follows as JSON lines (warnings and errors on
// stderr, and also appended to <state>/errors.jsonl). SIGINT/SIGTERM stop it.
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { readDevVars } from "./read-dev-vars.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules/.bin");
const { values: args } = parseArgs({
  options: {
    config: { type: "string", default: join(ROOT, "wrangler.toml") },
    state: { type: "string", default: join(ROOT, ".wrangler/serve-state") },
    "env-file": { type: "string", default: join(ROOT, ".dev.vars") },
    ip: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: process.env.PORT || "8787" }, // an empty PORT means the default too
    // Off by default: the soak reads the Worker's JS heap through it, nothing else needs it.
    "inspector-port": { type: "string" },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT must be a port number (0-65535), got "${args.port}"`);
const configPath = resolve(args.config);
const state = resolve(args.state);

/** One JSON line per event, so the output can be kept and searched as is. */
function emit(level, message, fields = {}) {
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
  if (level === "error" || level === "warn") {
    process.stderr.write(`${line}\n`);
    try {
      appendFileSync(join(state, "errors.jsonl"), `${line}\n`);
    } catch {
      // the state directory is gone (removed while serving): stderr still has it
    }
  } else process.stdout.write(`${line}\n`);
}

function fail(message) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", message })}\n`);
  process.exit(1);
}

/** Runs a wrangler command quietly; on failure prints its output and stops. */
function wrangler(commandArgs, what) {
  const result = spawnSync(join(BIN, "wrangler"), commandArgs, {
    cwd: dirname(configPath),
    encoding: "utf8",
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (result.status !== 0) fail(`${what} failed:\n${result.stdout}\n${result.stderr}`);
}

/** Refuses a port that something already listens on, with a message that says so. */
function ensurePortFree() {
  if (port === 0) return Promise.resolve();
  return new Promise((done) => {
    const probe = createServer();
    probe.once("error", (error) =>
      fail(error.code === "EADDRINUSE" ? `${args.ip}:${port} is already in use: stop what listens there or set PORT to another port` : `cannot listen on ${args.ip}:${port}: ${error.message}`),
    );
    probe.listen(port, args.ip, () => probe.close(() => done()));
  });
}

mkdirSync(state, { recursive: true });
if (args["env-file"] === join(ROOT, ".dev.vars")) {
  const created = spawnSync(process.execPath, [join(ROOT, "scripts/dev-vars.mjs"), args["env-file"]], { stdio: "inherit" });
  if (created.status !== 0) process.exit(created.status ?? 1);
}
await ensurePortFree();
// Loaded only now: they are large, and a port in use should be said at once.
const { convertV4MiniflareOptions, Log, LogLevel, Miniflare } = await import("miniflare");
const { unstable_getMiniflareWorkerOptions, unstable_readConfig, unstable_splitSqlQuery } = await import("wrangler");

const config = unstable_readConfig({ config: configPath }, { hideWarnings: true });
// modulesRules say how to bundle imports: the bundle below has none left.
const { modulesRules: _bundled, ...workerOptions } = unstable_getMiniflareWorkerOptions(config).workerOptions;

// The deployable bundle, exactly as `wrangler deploy` would upload it.
const bundleDir = join(state, "bundle");
wrangler(["deploy", "--dry-run", "--outdir", bundleDir, "--config", configPath], "building the bundle (wrangler deploy --dry-run)");
const bundle = readdirSync(bundleDir).find((f) => f.endsWith(".js"));
if (!bundle) fail(`wrangler deploy --dry-run wrote no .js file to ${bundleDir}`);

// Installed before Miniflare's own exit hook, so a stop is always said; either one ends workerd.
let mf;
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    emit("info", "stopping", { signal });
    await mf?.dispose().catch(() => {});
    process.exit(0);
  });
}

// wrangler's translation is in Miniflare's v4 option shape; Miniflare converts it to its own.
// Built twice: first without the public socket, to apply the D1 migrations, then with it.
const miniflareOptions = (directSockets) => convertV4MiniflareOptions({
  // Miniflare's own entry socket is required but unused: it listens on a random loopback port.
  host: "127.0.0.1",
  port: 0,
  // wrangler's layout under a --persist-to directory (`wrangler d1 … --local --persist-to <state>` reads the same D1).
  resourcePersistencePath: join(state, "v3"),
  resourceTmpPath: join(state, "tmp"),
  logRequests: false,
  cf: false, // no fetch of Request.cf from the internet at start: a placeholder, as offline wrangler dev uses

  enableDevRegistry: false,
  telemetry: { enabled: false },
  log: new Log(LogLevel.WARN),
  ...(args["inspector-port"] ? { inspectorPort: Number(args["inspector-port"]), inspectorHost: "127.0.0.1" } : {}),
  handleStructuredLogs: ({ level, message }) => emit(level === "log" ? "info" : level, message),
  workers: [
    {
      ...workerOptions,
      name: config.name,
      // wrangler.toml's [vars], then the env file: wrangler's translation also reads the project's .dev.vars,
      // which --env-file replaces rather than extends.
      bindings: { ...config.vars, ...readDevVars(args["env-file"]) },
      // Module names are paths relative to rootPath, which must not climb out of it.
      rootPath: bundleDir,
      modules: true,
      scriptPath: join(bundleDir, bundle),
      unsafeDirectSockets: directSockets,
    },
  ],
});

// The public port opens only once the migrations are applied, so no request ever meets a database without its
// tables: workerd starts first with no public socket (Miniflare's own entry socket, unused, is on a random
// loopback port), the migrations run, and then workerd restarts with the Worker on the port (about 0.3 s here).
mf = new Miniflare(miniflareOptions([]));
try {
  await mf.ready;
} catch (error) {
  await mf.dispose().catch(() => {});
  fail(`workerd did not start: ${error instanceof Error ? error.message : String(error)}`);
}
try {
  for (const d1 of config.d1_databases ?? []) await applyMigrations(d1);
} catch (error) {
  await mf.dispose().catch(() => {});
  fail(`D1 migrations failed: ${error instanceof Error ? error.message : String(error)}`);
}
let url;
try {
  await mf.setOptions(miniflareOptions([{ host: args.ip, port }]));
  url = (await mf.unsafeGetDirectURL(config.name)).origin;
} catch (error) {
  await mf.dispose().catch(() => {});
  fail(`workerd did not start on ${args.ip}:${port}: ${error instanceof Error ? error.message : String(error)}`);
}
emit("info", "serving", { url, workerdPid: workerdPid(), state, config: configPath });


/**
 * Applies a D1 database's migrations that are not applied yet, recorded in
 * wrangler's own migrations table (same name and schema, so the state stays
 * readable by `wrangler d1 migrations list --local --persist-to <state>`).
 * Done here on the running Miniflare rather than by a `wrangler d1 migrations
 * apply` process: that starts a second Miniflare, which more than doubled
 * the start on a busy machine. Statements are split by wrangler's splitter.
 */
async function applyMigrations(d1) {
  const dir = resolve(dirname(configPath), d1.migrations_dir ?? "migrations");
  if (!existsSync(dir)) return;
  const table = d1.migrations_table ?? "d1_migrations";
  const db = await mf.getD1Database(d1.binding);
  await db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);`);
  const applied = new Set((await db.prepare(`SELECT name FROM ${table}`).all()).results.map((row) => row.name));
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    if (applied.has(name)) continue;
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, name), "utf8")).map((sql) => db.prepare(sql));
    await db.batch([...statements, db.prepare(`INSERT INTO ${table} (name) VALUES (?)`).bind(name)]);
    emit("info", "migration applied", { database: d1.binding, migration: name });
  }
}

/** The pid of the workerd this process started (Linux: its only workerd child), for CPU and memory figures. */
function workerdPid() {
  const children = spawnSync("pgrep", ["-P", String(process.pid)], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  return children.map(Number).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("workerd");
    } catch {
      return false;
    }
  });
}

