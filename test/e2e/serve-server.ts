/**
 * Starts `npm run serve`'s server (scripts/serve.mjs: the deployable bundle
 * on workerd through Miniflare, no dev tooling) for the serve smoke test and
 * the benchmarks: its own port and state directory (so it can be stopped and
 * started again over the same D1 and objects), the test secrets, and any
 * wrangler config (the service's, or the bench's floor).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeTestVars } from "./server.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "node_modules/.bin");

export interface ServeOptions {
  /** wrangler config to serve (default: the service's wrangler.toml). */
  config?: string;
  /** Reuse a state directory (to restart over the same D1 and objects). */
  persistDir?: string;
  vars?: Record<string, string>;
  port?: number;
  /** A DevTools port for the Worker (the soak reads its JS heap there); none by default. */
  inspectorPort?: number;
}

export class ServeServer {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly persistDir: string,
    /** The workerd that runs the Worker and its objects (for CPU and memory figures). */
    readonly workerdPid: number,
    private readonly options: ServeOptions,
    private readonly child: ChildProcess,
    readonly output: string[],
  ) {}

  get wsUrl(): string {
    return this.url.replace(/^http/, "ws");
  }

  /** The Worker's DevTools port, when started with one. */
  get inspectorPort(): number | undefined {
    return this.options.inspectorPort;
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: ServeOptions = {}, timeoutMs = 120_000): Promise<ServeServer> {
    const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), "rooms-serve-"));
    // Port 0 by default: serve binds a free port itself and says which (a port picked here could be taken by then).
    const port = options.port ?? 0;
    const envFile = writeTestVars(persistDir, options.vars);
    const args = ["scripts/serve.mjs", "--state", persistDir, "--env-file", envFile, "--port", String(port)];
    if (options.config) args.push("--config", resolve(ROOT, options.config));
    if (options.inspectorPort) args.push("--inspector-port", String(options.inspectorPort));
    const child = spawn(join(BIN, "node"), args, { cwd: ROOT, env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` }, stdio: ["ignore", "pipe", "pipe"] });
    const output: string[] = [];
    child.stderr!.on("data", (chunk) => output.push(String(chunk)));
    return new Promise<ServeServer>((resolveStart, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`serve did not start within ${timeoutMs} ms:\n${output.join("")}`));
      }, timeoutMs);
      let pending = "";
      child.stdout!.on("data", (chunk) => {
        output.push(String(chunk));
        pending += String(chunk);
        const line = pending.split("\n").find((l) => l.includes('"message":"serving"'));
        if (!line) return;
        pending = "";
        clearTimeout(timer);
        const { url, workerdPid } = JSON.parse(line) as { url: string; workerdPid: number };
        const bound = Number(new URL(url).port);
        resolveStart(new ServeServer(url, bound, persistDir, workerdPid, { ...options, persistDir, port: bound }, child, output));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`serve exited (${code ?? signal}) before serving:\n${output.join("")}`));
      });
    });
  }

  /** SIGTERM: serve stops workerd and exits. Resolves once it has. */
  stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    return exited;
  }

  /** Starts a new server over the same state directory and port. */
  restart(): Promise<ServeServer> {
    return ServeServer.start(this.options);
  }
}
