/**
 * What the figures were measured on, and how busy the machine was with
 * other work meanwhile (Linux /proc; absent elsewhere). "Other" CPU is the
 * whole machine's busy time minus that of the bench process and its
 * descendants (wrangler, workerd): a noise indicator for the published run.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";

export function machineInfo(root: string): Record<string, string | number | boolean> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    wrangler: packageVersion(root, "wrangler"),
    workerd: packageVersion(root, "workerd"),
    socketio: packageVersion(root, "socket.io"),
    ws: packageVersion(root, "ws"),
    commit: git(root, ["rev-parse", "--short", "HEAD"]),
    uncommittedChanges: git(root, ["status", "--porcelain", "--untracked-files=no"]) !== "",
    loadAverage1mAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

function packageVersion(root: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function git(root: string, args: string[]): string {
  const result = spawnSync("git", args, { cwd: root, encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : "unknown";
}

/** Process ids of every descendant of `pid` (children first found, then theirs). */
export function descendants(pid: number): number[] {
  const result = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  const children = (result.stdout ?? "").split("\n").filter(Boolean).map(Number);
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** Resident memory of a process, MiB (Linux /proc; undefined once it is gone or elsewhere). */
export function residentMiB(pid: number): number | undefined {
  try {
    const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return Number.isFinite(kib) ? Math.round((kib / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, ms; undefined once it is gone or off Linux. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(after[11]) + Number(after[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/stat counts in clock ticks: 100 per second on Linux (USER_HZ). */
const CLOCK_TICKS = 100;

interface CpuSnapshot {
  total: number;
  idle: number;
  own: Map<number, number>;
}

function snapshot(): CpuSnapshot | undefined {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal (guest is already in user)
    const idle = fields[3]! + (fields[4] ?? 0); // idle + iowait
    const own = new Map<number, number>();
    for (const pid of [process.pid, ...descendants(process.pid)]) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        own.set(pid, Number(after[11]) + Number(after[12])); // utime + stime
      } catch {
        // exited meanwhile
      }
    }
    return { total, idle, own };
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  /** Average cores busy on the whole machine. */
  machineCores: number;
  /** …of which the bench, wrangler and workerd. */
  benchCores: number;
  /** …and everything else. */
  otherCores: number;
}

/** Starts measuring; the returned function gives the average use since. */
export function measureCpu(): () => CpuUse | undefined {
  const start = snapshot();
  return () => {
    const end = snapshot();
    if (!start || !end || end.total <= start.total) return undefined;
    const cores = os.cpus().length;
    const elapsed = end.total - start.total;
    const busy = elapsed - (end.idle - start.idle);
    let own = 0;
    for (const [pid, ticks] of end.own) own += ticks - (start.own.get(pid) ?? 0);
    const toCores = (ticks: number) => Math.round((ticks / elapsed) * cores * 100) / 100;
    return { machineCores: toCores(busy), benchCores: toCores(own), otherCores: toCores(Math.max(0, busy - own)) };
  };
}
