/**
 * The address of the workerd that runs the Worker and its Durable Objects,
 * behind wrangler dev's own proxy (a second workerd on the public port).
 * Scenarios that must not measure the proxy (it is dev tooling, absent from
 * a deployment) talk to this one directly: the connections scenario, where
 * the proxy would hold two file descriptors per WebSocket and hit the
 * process's open-file limit before the room does, and `--param direct=1`
 * runs of the fan-out, which show what the proxy costs.
 *
 * Found from /proc (Linux): the listening TCP sockets of the workerd started
 * with an inspector, probed with GET /health. Undefined when not found.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { getJson } from "./http.ts";
import { descendants } from "./machine.ts";

export async function findDirectUrl(): Promise<string | undefined> {
  const pid = roomsProcess();
  if (pid === undefined) return undefined;
  for (const port of listeningPorts(pid)) {
    try {
      const response = await getJson<{ ok?: boolean }>(`http://127.0.0.1:${port}/health`, {}, AbortSignal.timeout(2_000));
      if (response.status === 200 && response.body.ok === true) return `http://127.0.0.1:${port}`;
    } catch {
      // the inspector or another internal socket
    }
  }
  return undefined;
}

/**
 * The pid of the workerd that runs the Worker and the rooms (the one started
 * with an inspector). wrangler dev replaces it when a source file changes,
 * which the runner watches for.
 */
export function roomsProcess(): number | undefined {
  return descendants(process.pid).find((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      return cmd.includes("workerd") && cmd.includes("--inspector-addr");
    } catch {
      return false;
    }
  });
}

/**
 * wrangler dev's processes by role: the workerd that runs the rooms, and the
 * dev tooling around it (the proxy workerd, wrangler's Node process, esbuild).
 */
export function devProcesses(): { rooms?: number; tooling: number[] } {
  const rooms = roomsProcess();
  const tooling = descendants(process.pid).filter((p) => {
    if (p === rooms) return false;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      return cmd.includes("workerd") || cmd.includes("wrangler") || cmd.includes("esbuild");
    } catch {
      return false;
    }
  });
  return { rooms, tooling };
}

/** Ports the process listens on over IPv4 TCP (/proc/net/tcp state 0A, matched by socket inode). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
    return readFileSync("/proc/net/tcp", "utf8")
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[3] === "0A" && inodes.has(f[9]!))
      .map((f) => parseInt(f[1]!.split(":")[1]!, 16));
  } catch {
    return [];
  }
}
