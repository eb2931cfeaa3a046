/**
 * Starts and stops a baseline server (bench/baselines/*.ts) in its own Node
 * process on 127.0.0.1, so its memory and CPU are its own and measurable, and
 * it shares nothing with the load generator but the machine. The child runs
 * on the same Node as the bench, exits when the bench's IPC channel closes,
 * and is SIGKILLed by the runner's exit guard in any case.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";

const BASELINES = resolve(import.meta.dirname, "../baselines");
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

export type BaselineName = "socketio" | "ws";

const FILES: Record<BaselineName, string> = { socketio: "socketio-server.ts", ws: "ws-server.ts" };

export class Baseline {
  private constructor(
    readonly name: BaselineName,
    /** http://127.0.0.1:<port> */
    readonly url: string,
    private readonly child: ChildProcess,
    readonly output: string[],
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  get wsUrl(): string {
    return this.url.replace(/^http/, "ws");
  }

  static start(name: BaselineName): Promise<Baseline> {
    const child = spawn(
      process.execPath,
      ["--experimental-strip-types", "--disable-warning=ExperimentalWarning", join(BASELINES, FILES[name]), "--port", "0"],
      { stdio: ["ignore", "pipe", "pipe", "ipc"], env: { ...process.env, NODE_ENV: "production" } },
    );
    const output: string[] = [];
    return new Promise<Baseline>((resolveStart, reject) => {
      const timer = setTimeout(() => fail(new Error(`baseline ${name} did not start in ${START_TIMEOUT_MS} ms:\n${output.join("")}`)), START_TIMEOUT_MS);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(error);
      };
      let pending = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        output.push(String(chunk));
        pending += String(chunk);
        const line = pending.split("\n").find((l) => l.startsWith("{"));
        if (!line) return;
        const port = (JSON.parse(line) as { listening?: number }).listening;
        if (!port) return;
        clearTimeout(timer);
        pending = "";
        resolveStart(new Baseline(name, `http://127.0.0.1:${port}`, child, output));
      });
      child.stderr!.on("data", (chunk: Buffer) => output.push(String(chunk)));
      child.once("exit", (code, signal) => fail(new Error(`baseline ${name} exited (${code ?? signal}):\n${output.join("")}`)));
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.removeAllListeners("exit");
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
