/**
 * Starts a real `wrangler dev` for end-to-end tests: its own port, its own
 * persistence directory (so it can be SIGKILLed and restarted over the same
 * state), its own secrets, and D1 migrations applied first.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "node_modules/.bin");
const WRANGLER = join(BIN, "wrangler");
/** Our node_modules/.bin first: wrangler needs the Node 22 that the `node` devDependency puts there. */
const CHILD_ENV = { ...process.env, CI: "true", PATH: `${BIN}:${process.env.PATH}` };

export interface TestSecrets {
  JWT_SECRET: string;
  NOTIFY_SECRET: string;
  PUSHER_APP_ID: string;
  PUSHER_KEY: string;
  PUSHER_SECRET: string;
  PUSHER_ENCRYPTION_MASTER_KEY: string;
}

export const DEFAULT_SECRETS: TestSecrets = {
  JWT_SECRET: "e2e-jwt-secret-0123456789abcdef0123",
  NOTIFY_SECRET: "e2e-notify-secret-0123456789abcdef",
  PUSHER_APP_ID: "424242",
  PUSHER_KEY: "e2e-pusher-key-0123",
  PUSHER_SECRET: "e2e-pusher-secret-0123456789abcdef",
  // Base64 of 32 bytes: the SDK's encryptionMasterKeyBase64 in the encrypted-channel tests.
  PUSHER_ENCRYPTION_MASTER_KEY: "ZTJlLW1hc3Rlci1rZXktMDEyMzQ1Njc4OWFiY2RlZjA=",
};

export interface ServerOptions {
  /** Reuse a state directory (to restart over the same D1 and objects). */
  persistDir?: string;
  vars?: Record<string, string>;
  port?: number;
}

/** Writes the test secrets and settings (plus `vars`) as a .dev.vars-style file in `dir`; returns its path. */
export function writeTestVars(dir: string, vars: Record<string, string> = {}): string {
  const envFile = join(dir, "test.vars");
  // subscription_count only on counted-* channels, so other tests see exactly the frames they expect.
  const all = { ...DEFAULT_SECRETS, CORS_ORIGINS: "*", PUSHER_PUBLIC_CHANNELS: "*", PUSHER_SUBSCRIPTION_COUNT: "counted-*", ...vars };
  writeFileSync(envFile, Object.entries(all).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n");
  return envFile;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

export class DevServer {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly persistDir: string,
    private readonly options: ServerOptions,
    private child: ChildProcess,
    readonly output: string[],
    /** wrangler's DevTools endpoint for the Worker (http://127.0.0.1:<port>/json lists it). */
    readonly inspectorPort: number,
  ) {}

  get wsUrl(): string {
    return this.url.replace(/^http/, "ws");
  }

  static async start(options: ServerOptions = {}): Promise<DevServer> {
    const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), "rooms-e2e-"));
    const port = options.port ?? (await freePort());
    const envFile = writeTestVars(persistDir, options.vars);
    const migrate = spawnSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], {
      cwd: ROOT,
      encoding: "utf8",
      env: CHILD_ENV,
    });
    if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);
    const output: string[] = [];
    const inspectorPort = await freePort();
    const child = spawn(
      WRANGLER,
      ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir, "--env-file", envFile,
        "--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false", "--log-level", "info"],
      { cwd: ROOT, env: CHILD_ENV, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.on("data", (chunk) => output.push(String(chunk)));
    child.stderr!.on("data", (chunk) => output.push(String(chunk)));
    const server = new DevServer(`http://127.0.0.1:${port}`, port, persistDir, { ...options, persistDir, port }, child, output, inspectorPort);
    try {
      await server.waitUntilReady();
    } catch (error) {
      await server.crash(); // never leave a half-started wrangler (and its workerd) behind
      throw error;
    }
    return server;
  }

  /** Polls /health until the server answers (startup has no event to await). */
  private async waitUntilReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`wrangler dev exited:\n${this.output.join("")}`);
      try {
        const response = await fetch(`${this.url}/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev did not become ready:\n${this.output.join("")}`);
  }

  /** Kills the whole process group (wrangler and workerd) with SIGKILL: a crash, no shutdown. */
  crash(): Promise<void> {
    return this.kill("SIGKILL");
  }

  stop(): Promise<void> {
    return this.kill("SIGTERM");
  }

  private kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
    killTree(this.child.pid!, signal);
    return exited;
  }

  /** Starts a new server over the same state directory and port. */
  async restart(): Promise<DevServer> {
    return DevServer.start(this.options);
  }
}

/** wrangler spawns workerd as a child: kill the descendants too, or the port stays taken. */
function killTree(pid: number, signal: NodeJS.Signals): void {
  const children = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  for (const child of children) killTree(Number(child), signal);
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
