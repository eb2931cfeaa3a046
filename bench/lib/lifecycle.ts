/**
 * The bench never outlives its budget and never leaves a server behind:
 *  - a hard time limit aborts the scenarios, then stops the process;
 *  - SIGINT/SIGTERM stop the server before exiting;
 *  - on any exit (an error included), whatever processes the bench started
 *    and are still running (wrangler, workerd) are SIGKILLed by pid.
 */
import { rmSync } from "node:fs";
import { descendants } from "./machine.ts";
import type { BenchServer } from "./scenario.ts";

let current: BenchServer[] = [];
let interrupted = false;

/** True once SIGINT/SIGTERM arrived: errors after that are the shutdown's, not the bench's. */
export const wasInterrupted = (): boolean => interrupted;

/** Kills every process this one started that is still alive. Synchronous, so it works in 'exit'. */
export function killOwnChildren(signal: NodeJS.Signals = "SIGKILL"): void {
  for (const pid of descendants(process.pid)) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function installExitGuards(): void {
  process.on("exit", () => killOwnChildren("SIGKILL"));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      interrupted = true;
      process.stderr.write(`bench: ${signal}, stopping the server\n`);
      void stopServer().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    });
  }
}

/** A server to stop on exit. */
export function track(server: BenchServer): void {
  current.push(server);
}

/** Stops the servers (SIGTERM to each, SIGKILL after 10 s) and removes their state directories. */
export async function stopServer(): Promise<void> {
  const servers = current;
  current = [];
  if (servers.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([Promise.all(servers.map((s) => s.stop())), new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000)))]);
  clearTimeout(timer);
  killOwnChildren("SIGKILL");
  for (const server of servers) rmSync(server.persistDir, { recursive: true, force: true });
}

/** Aborts `controller` after `ms`; if the bench still has not finished 15 s later, exits with 124. */
export function timeLimit(ms: number, controller: AbortController): () => void {
  let hard: ReturnType<typeof setTimeout> | undefined;
  const soft = setTimeout(() => {
    process.stderr.write(`bench: time limit of ${Math.round(ms / 1000)} s reached, aborting\n`);
    controller.abort(new Error("time limit"));
    hard = setTimeout(() => {
      process.stderr.write("bench: did not wind down, exiting\n");
      void stopServer().finally(() => process.exit(124));
    }, 15_000);
    hard.unref();
  }, ms);
  soft.unref();
  return () => {
    clearTimeout(soft);
    clearTimeout(hard);
  };
}
