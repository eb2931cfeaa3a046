/**
 * What the local server (wrangler dev) holds in memory, two ways:
 *
 *   - sampleMemory: the resident memory (RSS, from /proc) of each process
 *     wrangler dev runs: the workerd that runs the Worker and its Durable
 *     Objects, the workerd in front of it (wrangler's proxy), and wrangler;
 *   - HeapProbe: the Worker isolate's live JavaScript heap after a full GC
 *     (forced by taking a heap snapshot), through wrangler's DevTools
 *     endpoint (the rooms run in that isolate).
 *     This is what the service's own code keeps alive; RSS also counts the
 *     runtime's native memory and that of the local tooling.
 *
 * Linux only (/proc); elsewhere sampleMemory returns undefined.
 */
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { descendants } from "./machine.ts";

export interface MemorySample {
  t: number;
  roomsMiB: number;
  proxyMiB: number;
  wranglerMiB: number;
}

/** The processes of wrangler dev: the workerd that runs the Worker and rooms, the one in front of it, wrangler itself. */
export function sampleMemory(t: number): MemorySample | undefined {
  const sample: MemorySample = { t, roomsMiB: 0, proxyMiB: 0, wranglerMiB: 0 };
  for (const pid of descendants(process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      const mib = Math.round((rssKiB / 1024) * 10) / 10;
      if (cmd.includes("workerd") && cmd.includes("--inspector-addr")) sample.roomsMiB += mib;
      else if (cmd.includes("workerd")) sample.proxyMiB += mib;
      else if (cmd.includes("wrangler")) sample.wranglerMiB += mib;
    } catch {
      // exited meanwhile
    }
  }
  return sample.roomsMiB > 0 ? sample : undefined;
}

/**
 * The Worker's JavaScript heap (the rooms run in the same isolate), through
 * wrangler's DevTools endpoint: a full GC, then Runtime.getHeapUsage. This
 * is what the service's own code keeps alive, without the runtime's and the
 * local tooling's native memory that RSS also counts.
 */
export class HeapProbe {
  #id = 0;
  readonly #pending = new Map<number, (result: any) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (raw) => {
      const message = JSON.parse(String(raw)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.#pending.get(message.id)?.(message.result);
      if (message.id !== undefined) this.#pending.delete(message.id);
    });
    ws.on("error", () => {});
  }

  static async connect(inspectorPort: number, log: (message: string) => void = () => {}): Promise<HeapProbe | undefined> {
    try {
      const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { webSocketDebuggerUrl: string }[];
      const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const probe = new HeapProbe(ws);
      await probe.#call("Runtime.enable");
      await probe.#call("HeapProfiler.enable");
      return probe;
    } catch (error) {
      log(`no heap probe (${String(error)}): JS heap figures will be missing`);
      return undefined;
    }
  }

  #call(method: string, timeoutMs = 15_000): Promise<any> {
    const id = ++this.#id;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.ws.send(JSON.stringify({ id, method, params: {} }));
    });
  }

  /**
   * MiB of live JS heap after a full collection, or undefined if the runtime
   * did not answer. workerd does not implement HeapProfiler.collectGarbage;
   * a heap snapshot collects garbage first, so one is taken (and its chunks
   * dropped) to get there.
   */
  async heapUsedMiB(): Promise<number | undefined> {
    await this.#call("HeapProfiler.takeHeapSnapshot", 120_000);
    const usage = (await this.#call("Runtime.getHeapUsage")) as { usedSize?: number } | undefined;
    return usage?.usedSize === undefined ? undefined : Math.round((usage.usedSize / 2 ** 20) * 100) / 100;
  }

  close(): void {
    this.ws.close();
  }
}

