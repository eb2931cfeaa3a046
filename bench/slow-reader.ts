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
 * order. A third run does the same with a paused reader that acknowledged
 * (`{"type":"ack","seq":0}`) before it stopped reading: the room closes it
 * with 1013 once WS_MAX_UNACKED_BYTES (4 MiB) is unacknowledged, so the
 * backlog stays bounded; reading again, it gets what was queued, the close,
 * and the rest with `?after=`. Loopback only; stops by itself.
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
  closed?: { code: number; reason: string };
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
    ws.on("close", (code, reason) => (r.closed = { code, reason: String(reason) }));
    ws.once("error", reject);
  });
}

async function untilCount(r: Reader, n: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (r.seqs.length < n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  return r.seqs.length >= n;
}

/** Waits for the room's answer to a ping: every frame sent before it has been handled. */
function pong(r: Reader): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (raw: WebSocket.RawData) => {
      if (String(raw) !== '{"type":"pong"}') return;
      r.ws.off("message", onMessage);
      resolve();
    };
    r.ws.on("message", onMessage);
    r.ws.send(JSON.stringify({ type: "ping" }));
  });
}

/** "control": every reader reads; "paused": one stops reading; "acking": one acks, then stops reading. */
type Mode = "control" | "paused" | "acking";

async function run(mode: Mode): Promise<Record<string, number | boolean>> {
  const paused = mode !== "control";
  const server = await DevServer.start();
  track(server);
  const heap = await HeapProbe.connect(server.inspectorPort, log);
  const room = paused ? "slow-reader" : "control";
  const token = await tokenFor("reader", { rooms: ["*"] });
  const fast = await reader(`${server.wsUrl}/rooms/${room}/ws?token=${token}`);
  const slow = paused ? await reader(`${server.wsUrl}/rooms/${room}/ws?token=${token}`) : undefined;
  if (slow && mode === "acking") {
    slow.ws.send(JSON.stringify({ type: "ack", seq: 0 })); // opts in to flow control
    await pong(slow);
  }
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
  let closedWith = 0;
  let queuedEvents = 0;
  let again: Reader | undefined;
  if (slow) {
    const t = performance.now();
    slow.ws.resume();
    if (mode === "acking") {
      // It reads what was queued, then the close; then it resumes after its last seq, as the client library does.
      const deadline = Date.now() + 60_000;
      while (!slow.closed && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      closedWith = slow.closed?.code ?? 0;
      queuedEvents = slow.seqs.length;
      again = await reader(`${server.wsUrl}/rooms/${room}/ws?token=${token}&after=${slow.seqs.at(-1) ?? 0}`);
      const rest = await untilCount(again, EVENTS - queuedEvents, 60_000);
      slowGotAll = rest && queuedEvents + again.seqs.length === EVENTS;
      slowInOrder = [...slow.seqs, ...again.seqs].every((seq, i) => seq === i + 1);
    } else {
      slowGotAll = await untilCount(slow, EVENTS, 60_000);
      slowInOrder = slow.seqs.every((seq, i) => seq === i + 1) && slow.seqs.length === EVENTS;
    }
    resumeMs = Math.round(performance.now() - t);
  }
  await new Promise((r) => setTimeout(r, 3_000));
  const drained = { rss: sampleMemory(0)!.roomsMiB, heap: (await heap?.heapUsedMiB()) ?? Number.NaN };
  // The room logs what the closed socket had not acknowledged (objects/ChatRoom.ts, dropSlowSocket).
  const unackedBytesAtClose = Number(/WebSocket with 1013, (\d+) bytes unacknowledged/.exec(server.output.join(""))?.[1] ?? Number.NaN);
  heap?.close();
  fast.ws.terminate();
  slow?.ws.terminate();
  again?.ws.terminate();
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
    ...(mode === "acking" ? { closedWith, eventsQueuedForIt: queuedEvents, unackedBytesAtClose } : {}),
  };
}

async function main(): Promise<number> {
  installExitGuards();
  const clear = timeLimit(15 * 60_000, new AbortController()); // three runs on fresh servers
  try {
    log(`${EVENTS} events, control run (every reader reads)…`);
    const control = await run("control");
    log(`same events with a paused reader…`);
    const paused = await run("paused");
    log(`same events with a paused reader that acknowledged before it stopped…`);
    const acking = await run("acking");
    const cost = (r: Record<string, number | boolean>) => Math.round(((r.rssGrowthMiB as number) - (control.rssGrowthMiB as number)) * 10) / 10;
    process.stdout.write(
      `${JSON.stringify({ events: EVENTS, control, paused, acking, rssCostOfPausedReaderMiB: cost(paused), rssCostOfAckingPausedReaderMiB: cost(acking) }, null, 2)}\n`,
    );
    const ok = (r: Record<string, number | boolean>) => r.fastGotAll && r.slowGotAllOnResume && r.slowInOrder;
    return control.fastGotAll && ok(paused) && ok(acking) && acking.closedWith === 1013 ? 0 : 1;
  } finally {
    clear();
    await stopServer();
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void stopServer().finally(() => process.exit(1));
});
