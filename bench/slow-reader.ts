/**
 * What a WebSocket client that stops reading costs the server, measured the
 * bench's way (wrangler dev on 127.0.0.1, the e2e harness's DevServer):
 *
 *   node --experimental-transform-types --import ./bench/lib/register-ts.mjs bench/slow-reader.ts [--events 4000]
 *
 * Two runs, each on a fresh server, publish the same events (random base64,
 * about 14.7 KiB of JSON each, so nothing compresses) into a room with one
 * WebSocket reader that reads everything. In the second run the room also
 * has a reader that completes the handshake and then stops reading (the
 * `ws` package's pause(): its TCP receive window closes). The difference
 * between the runs is what the unread backlog costs, in the resident memory
 * of the workerd process that runs the rooms and in the Worker's JS heap.
 * Then the paused reader reads again, and must receive every event once, in
 * order. Loopback only; stops by itself.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { tokenFor } from "../test/e2e/clients.ts";
import { DEFAULT_SECRETS, DevServer } from "../test/e2e/server.ts";
import { installExitGuards, stopServer, timeLimit, track } from "./lib/lifecycle.ts";
import { HeapProbe, sampleMemory } from "./lib/server-memory.ts";

const { values: args } = parseArgs({ options: { events: { type: "string", default: "4000" } } });
const EVENTS = Number(args.events);
if (!(Number.isInteger(EVENTS) && EVENTS >= 100 && EVENTS <= 20_000)) throw new Error(`--events must be an integer in 100..20000, got ${args.events}`);
const log = (message: string) => process.stderr.write(`slow-reader: ${message}\n`);

interface Reader {
  ws: WebSocket;
  seqs: number[];
}

function reader(url: string): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const r: Reader = { ws, seqs: [] };
    ws.on("message", (raw) => {
      const frame = JSON.parse(String(raw));
      if (frame.type === "welcome") resolve(r);
      if (frame.type === "message") r.seqs.push(frame.message.seq);
    });
    ws.once("error", reject);
  });
}

async function untilCount(r: Reader, n: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (r.seqs.length < n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  return r.seqs.length >= n;
}

async function run(paused: boolean): Promise<Record<string, number | boolean>> {
  const server = await DevServer.start();
  track(server);
  const heap = await HeapProbe.connect(server.inspectorPort, log);
  const room = paused ? "slow-reader" : "control";
  const token = await tokenFor("reader", { rooms: ["*"] });
  const fast = await reader(`${server.wsUrl}/rooms/${room}/ws?token=${token}`);
  const slow = paused ? await reader(`${server.wsUrl}/rooms/${room}/ws?token=${token}`) : undefined;
  slow?.ws.pause();
  await new Promise((r) => setTimeout(r, 2_000));
  const before = { rss: sampleMemory(0)!.roomsMiB, heap: (await heap?.heapUsedMiB()) ?? Number.NaN };
  let bytes = 0;
  let next = 0;
  const lane = async () => {
    while (next < EVENTS) {
      next++;
      const response = await fetch(`${server.url}/rooms/${room}/notify`, {
        method: "POST",
        headers: { authorization: `Bearer ${DEFAULT_SECRETS.NOTIFY_SECRET}`, "content-type": "application/json" },
        body: JSON.stringify({ event: "bulk", data: { text: randomBytes(11_000).toString("base64") } }),
      });
      const answer = await response.text(); // (read before adding: `bytes += await …` would lose the other lanes' additions)
      if (response.status !== 202) throw new Error(`notify: ${response.status} ${answer.slice(0, 200)}`);
      bytes += answer.length + 20; // the frame is the envelope inside {"type":"message","message":…}
    }
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  const fastGotAll = await untilCount(fast, EVENTS, 30_000);
  await new Promise((r) => setTimeout(r, 3_000));
  const after = { rss: sampleMemory(0)!.roomsMiB, heap: (await heap?.heapUsedMiB()) ?? Number.NaN };
  let slowGotAll = true;
  let slowInOrder = true;
  let resumeMs = 0;
  if (slow) {
    const t = performance.now();
    slow.ws.resume();
    slowGotAll = await untilCount(slow, EVENTS, 60_000);
    resumeMs = Math.round(performance.now() - t);
    slowInOrder = slow.seqs.every((seq, i) => seq === i + 1) && slow.seqs.length === EVENTS;
  }
  await new Promise((r) => setTimeout(r, 3_000));
  const drained = { rss: sampleMemory(0)!.roomsMiB, heap: (await heap?.heapUsedMiB()) ?? Number.NaN };
  heap?.close();
  fast.ws.terminate();
  slow?.ws.terminate();
  await stopServer();
  return {
    publishedMiB: Math.round((bytes / 2 ** 20) * 10) / 10,
    rssBeforeMiB: before.rss,
    rssAfterMiB: after.rss,
    rssGrowthMiB: Math.round((after.rss - before.rss) * 10) / 10,
    rssAfterReadingMiB: drained.rss,
    heapBeforeMiB: before.heap,
    heapAfterMiB: after.heap,
    heapAfterReadingMiB: drained.heap,
    fastGotAll,
    fastInOrder: fast.seqs.every((seq, i) => seq === i + 1),
    ...(paused ? { slowGotAllOnResume: slowGotAll, slowInOrder, resumeMs } : {}),
  };
}

async function main(): Promise<number> {
  installExitGuards();
  const clear = timeLimit(10 * 60_000, new AbortController());
  try {
    log(`${EVENTS} events, control run (every reader reads)…`);
    const control = await run(false);
    log(`same events with a paused reader…`);
    const paused = await run(true);
    const extra = Math.round(((paused.rssGrowthMiB as number) - (control.rssGrowthMiB as number)) * 10) / 10;
    process.stdout.write(`${JSON.stringify({ events: EVENTS, control, paused, rssCostOfPausedReaderMiB: extra }, null, 2)}\n`);
    return control.fastGotAll && paused.fastGotAll && paused.slowGotAllOnResume && paused.slowInOrder ? 0 : 1;
  } finally {
    clear();
    await stopServer();
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void stopServer().finally(() => process.exit(1));
});
