/**
 * Issue 9 §3, slow and dead consumers against a real `wrangler dev`.
 *
 * A WebSocket client that completes the handshake and then stops reading
 * (the `ws` package's pause(): its TCP receive window closes), a dead one
 * (its TCP connection is torn down while paused) and an SSE reader that stops
 * reading sit in a room with a fast WebSocket reader while about 12 MiB of
 * incompressible events are published. What must hold:
 *
 *   - the room never waits for a slow client: the fast reader gets every
 *     event, in order, within moments of its publication;
 *   - the SSE stream that stopped reading is cut by the room once its unsent
 *     backlog passes 1 MiB (objects/room/sse-subscriber.ts), so the object's
 *     memory stays bounded, and the client resumes with Last-Event-ID;
 *   - the dead WebSocket is dropped, and its client resumes with ?after=;
 *   - the paused WebSocket, which never acknowledges, is *not* closed:
 *     workerd does not implement `WebSocket.bufferedAmount` (see
 *     test/worker/slow-consumer.test.ts), so without acks the room cannot see
 *     its backlog; the runtime queues the frames and delivers every one of
 *     them, in order, once the client reads again. docs/reliability.md has
 *     the memory this costs.
 *
 * Then, on a server of its own with a small WS_MAX_UNACKED_BYTES, the client
 * library (which acknowledges what it processed) on a socket that stops
 * reading: the room closes it with 1013 once more than the cap is
 * unacknowledged, so what piles up for it stays within the cap however much
 * more is published; the others get everything meanwhile; reading again, the
 * client takes the close, reconnects at once on WebSocket and gets exactly
 * the rest.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import type { WebSocketConstructor } from "../../client/src/index.ts";
import { eventually, expectGapFree, open as openClient, waitConnected, type Recorded } from "./client-helpers";
import { tokenFor } from "./clients";
import { DevServer } from "./server";
import { Api, range, serverLogOnFailure, sseBlocks, uniqueRoom, within, type Envelope } from "./transports";

const api = new Api(inject("serverUrl"));
/** Bytes of random base64 per event: about 14.7 KiB of JSON each, below MAX_MESSAGE_BYTES. */
const PAYLOAD_BYTES = 11_000;
const MIN_PUBLISHED = 12 * 1024 * 1024;
const MAX_PUBLISHED = 40 * 1024 * 1024;

/** A `ws` client (no compression, so what is queued is what was sent) that records when each event arrived. */
class Reader {
  readonly messages: Envelope[] = [];
  readonly arrivedAt = new Map<number, number>();
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  #listeners: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === "message") {
        this.messages.push(frame.message);
        this.arrivedAt.set(frame.message.seq, performance.now());
      }
      if (frame.type === "welcome") this.welcomed = true;
      for (const listener of this.#listeners.splice(0)) listener();
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
    this.opened = new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
  }

  welcomed = false;

  static async open(room: string, token: string, query = ""): Promise<Reader> {
    const reader = new Reader(new WebSocket(`${api.wsBase}/rooms/${room}/ws?token=${token}${query}`, { perMessageDeflate: false }));
    await within(reader.opened, 10_000, "a WebSocket to open");
    await reader.until(() => reader.welcomed, "the welcome frame");
    return reader;
  }

  async until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (have ${this.messages.length} messages)`);
      await new Promise<void>((resolve) => {
        this.#listeners.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }
}

/** An SSE stream read with node:http, whose reading can be paused (the body stays chunked-decoded). */
class PausableSse {
  text = "";
  ended = false;
  #response?: http.IncomingMessage;
  readonly request: http.ClientRequest;
  readonly ready: Promise<void>;
  #listeners: (() => void)[] = [];

  constructor(url: string, headers: Record<string, string> = {}) {
    let ready!: () => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    this.request = http.get(url, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
      this.#response = response;
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        this.text += chunk;
        if (this.text.includes("\n\n")) ready();
        this.#wake();
      });
      const end = () => ((this.ended = true), this.#wake());
      response.on("end", end);
      response.on("aborted", end);
      response.on("error", end);
      response.on("close", end);
    });
    this.request.on("error", () => ((this.ended = true), this.#wake()));
  }

  #wake(): void {
    for (const listener of this.#listeners.splice(0)) listener();
  }

  /** Waits until `predicate` holds, re-checked on every chunk and at the end of the stream. */
  until(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return within(
      (async () => {
        while (!predicate()) {
          if (this.ended) throw new Error(`the stream ended before ${what}`);
          await new Promise<void>((resolve) => this.#listeners.push(resolve));
        }
      })(),
      timeoutMs,
      what,
    );
  }

  pause(): void {
    this.#response!.pause();
  }

  resume(): void {
    this.#response!.resume();
  }

  seqs(): number[] {
    return sseBlocks(this.text).filter((b) => b.id !== undefined).map((b) => Number(b.id));
  }

  close(): void {
    this.request.destroy();
  }
}

describe("slow and dead consumers", () => {
  const open: { close(): void }[] = [];
  afterAll(() => {
    for (const client of open) client.close();
  });

  it("a room with a paused WebSocket, a dead one and a paused SSE stream keeps delivering to the others at once", { timeout: 120_000 }, async () => {
    const room = uniqueRoom("slow");
    const [fastToken, pausedToken, deadToken, sseToken] = await Promise.all(["fast", "paused", "dead", "sse"].map((user) => tokenFor(user)));

    const fast = await Reader.open(room, fastToken!);
    const paused = await Reader.open(room, pausedToken!);
    const dead = await Reader.open(room, deadToken!);
    open.push({ close: () => fast.ws.terminate() }, { close: () => paused.ws.terminate() }, { close: () => dead.ws.terminate() });
    const sse = new PausableSse(`${api.base}/rooms/${room}/events?token=${sseToken}`);
    open.push(sse);
    await within(sse.ready, 10_000, "the SSE stream's retry line");
    await api.untilStatus(room, (s) => s.subscribers === 4, "four subscribers");

    // Stop reading. Each client's kernel buffers fill, then the server side's.
    paused.ws.pause();
    dead.ws.pause();
    sse.pause();

    // Publish from four lanes until at least 12 MiB went out and the SSE stream was cut.
    const answeredAt = new Map<number, number>();
    let published = 0;
    let bytes = 0;
    let deadSeen = -1;
    const publishRound = async (count: number) => {
      let left = count;
      const lane = async () => {
        while (left-- > 0) {
          const envelope = await api.notify(room, "bulk", { text: randomBytes(PAYLOAD_BYTES).toString("base64") });
          answeredAt.set(envelope.seq, performance.now());
          published++;
          bytes += JSON.stringify(envelope).length;
        }
      };
      await Promise.all([lane(), lane(), lane(), lane()]);
    };
    let sseCutAt = 0;
    while (bytes < MIN_PUBLISHED || !sseCutAt) {
      if (bytes > MAX_PUBLISHED) throw new Error(`the paused SSE stream was never cut after ${bytes} bytes`);
      await publishRound(100);
      if (deadSeen < 0 && published >= 200) {
        // The dead client: its connection goes away while it is not reading.
        deadSeen = dead.messages.at(-1)?.seq ?? 0;
        dead.ws.terminate();
      }
      const status = await api.status(room);
      if (!sseCutAt && status.subscribers === (deadSeen < 0 ? 3 : 2)) sseCutAt = published;
    }

    // The fast reader got everything, in order, promptly: the room never waited for the slow ones.
    await fast.until(() => fast.messages.length === published, `all ${published} events on the fast socket`);
    expect(fast.messages.map((m) => m.seq)).toEqual(range(1, published));
    const lags = range(1, published).map((seq) => fast.arrivedAt.get(seq)! - answeredAt.get(seq)!);
    // Printed, not bounded: that every event reached the fast reader while the others were not
    // reading is the proof the room did not wait for them (else this `until` would time out).
    const maxLagMs = Math.max(...lags);

    // The dead socket was dropped by the room; its client resumes with ?after= and gets exactly the rest.
    await api.untilStatus(room, (s) => s.subscribers === 2, "the dead socket and the cut SSE stream removed");
    const resumed = await Reader.open(room, deadToken!, `&after=${deadSeen}`);
    open.push({ close: () => resumed.ws.terminate() });
    await resumed.until(() => resumed.messages.length === published - deadSeen, "the rest after the dead socket's last seq");
    expect(resumed.messages.map((m) => m.seq)).toEqual(range(deadSeen + 1, published));

    // The paused SSE stream was ended by the room; what it had is gap-free, and Last-Event-ID gets the rest.
    sse.resume();
    await sse.until(() => sse.ended, "the cut SSE stream to end", 30_000);
    const sseSeqs = sse.seqs();
    const lastSseSeq = sseSeqs.at(-1) ?? 0;
    expect(sseSeqs).toEqual(range(1, lastSseSeq));
    expect(lastSseSeq).toBeLessThan(published);
    const again = new PausableSse(`${api.base}/rooms/${room}/events?token=${sseToken}`, { "last-event-id": String(lastSseSeq) });
    open.push(again);
    await again.until(() => again.seqs().length >= published - lastSseSeq, "the rest of the events over SSE after Last-Event-ID", 30_000);
    expect(again.seqs()).toEqual(range(lastSseSeq + 1, published));
    again.close();

    // The paused WebSocket was not closed (the runtime reports no bufferedAmount); reading again, it gets every event once, in order.
    expect(paused.ws.readyState).toBe(WebSocket.OPEN);
    paused.ws.resume();
    await paused.until(() => paused.messages.length >= published, `all ${published} events on the resumed socket`);
    expect(paused.messages.map((m) => m.seq)).toEqual(range(1, published));
    expect(paused.ws.readyState).toBe(WebSocket.OPEN);

    console.info(
      `slow consumers: ${published} events (${(bytes / 2 ** 20).toFixed(1)} MiB) published; fast reader max lag ${Math.round(maxLagMs)} ms; ` +
        `SSE cut after ${sseCutAt} events having read ${lastSseSeq}; dead socket had read ${deadSeen}; paused socket got all ${published} on resume`,
    );
    for (const reader of [fast, paused, resumed]) reader.ws.close();
  });
});

/** WS_MAX_UNACKED_BYTES on the flow-control server: small, so a few hundred KiB prove the rule. */
const FLOW_CAP = 256 * 1024;

describe("a client library WebSocket that stops reading (it acknowledges)", () => {
  let server: DevServer | undefined;
  const rooms: Recorded[] = [];
  beforeAll(async () => {
    server = await DevServer.start({ vars: { WS_MAX_UNACKED_BYTES: String(FLOW_CAP) } });
  });
  afterAll(async () => {
    for (const recorded of rooms) recorded.room.close();
    await server?.stop();
  });

  it("is closed with 1013 past the cap, so its backlog stays bounded; the others get everything; it resumes by itself with exactly the rest", { timeout: 120_000 }, async (context) => {
    serverLogOnFailure(() => server?.output)(context);
    const flowApi = new Api(server!.url);
    const room = uniqueRoom("acked");
    // The slow client's sockets are the `ws` package's, so the test can stop one reading (its acks stop with it).
    const sockets: WebSocket[] = [];
    class PausableWebSocket extends WebSocket {
      constructor(url: string) {
        super(url, { perMessageDeflate: false });
        sockets.push(this);
      }
    }
    const quiet = { pingIntervalMs: 600_000 }; // no keepalive timeout in the middle of the test
    const fast = openClient(server!.url, room, { token: await tokenFor("fast"), ...quiet });
    // One failure would make it fall back to SSE, so staying on WebSocket shows 1013 is not counted as one.
    const slow = openClient(server!.url, room, {
      token: await tokenFor("slow"),
      WebSocket: PausableWebSocket as unknown as WebSocketConstructor,
      maxTransportFailures: 1,
      stableAfterMs: 600_000,
      ...quiet,
    });
    rooms.push(fast, slow);
    await waitConnected(fast, "websocket");
    await waitConnected(slow, "websocket");
    await flowApi.untilStatus(room, (s) => s.subscribers === 2, "both sockets subscribed");

    const first = sockets[0]!;
    const firstClosed = new Promise<{ code: number; reason: string; lastSeq: number }>((resolve) =>
      first.on("close", (code, reason) => resolve({ code, reason: String(reason), lastSeq: slow.messages.at(-1)?.seq ?? 0 })),
    );
    first.pause();
    let reading = false;
    let queuedBytes = 0;
    first.on("message", (data: Buffer) => {
      if (reading) queuedBytes += data.byteLength;
    });

    // Publish until the room has closed the paused socket.
    let published = 0;
    let bytes = 0;
    const publishRound = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const envelope = await flowApi.notify(room, "bulk", { text: randomBytes(PAYLOAD_BYTES).toString("base64") });
        published = Math.max(published, envelope.seq);
        bytes += JSON.stringify(envelope).length;
      }
    };
    const pausedAt = performance.now();
    for (;;) {
      if (bytes > 20 * FLOW_CAP) throw new Error(`the paused socket was not closed after ${bytes} bytes`);
      await publishRound(4);
      if ((await flowApi.status(room)).subscribers === 1) break;
    }
    const closedAfterMs = performance.now() - pausedAt;
    const publishedWhenClosed = published;
    const bytesWhenClosed = bytes;
    // Twice the cap more: none of it can pile up for the closed socket.
    while (bytes < bytesWhenClosed + 2 * FLOW_CAP) await publishRound(4);

    // The fast client got everything, in order, while the other one was stuck.
    await eventually(() => fast.messages.length === published, `all ${published} events on the fast client`);
    expect(fast.seqs()).toEqual(range(1, published));

    // Reading again, the slow client finds a bounded backlog, then the close, and resumes after its last seq.
    const hadWhenResumed = slow.messages.at(-1)?.seq ?? 0;
    const resumedAt = performance.now();
    reading = true;
    first.resume();
    const closed = await within(firstClosed, 30_000, "the paused socket's close");
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1013, reason: "too far behind: reconnect with ?after=<last seq>" });
    expect(queuedBytes).toBeGreaterThan(FLOW_CAP);
    expect(queuedBytes).toBeLessThanOrEqual(FLOW_CAP + 20_000); // the cap and the one frame that crossed it
    expect(closed.lastSeq).toBeLessThan(publishedWhenClosed);
    await eventually(() => slow.messages.length === published, `all ${published} events on the slow client after its resume`);
    const caughtUpMs = performance.now() - resumedAt;
    expect(slow.seqs()).toEqual(range(1, published));
    expectGapFree(slow.seqs());
    expect(sockets.length).toBe(2);
    expect(sockets[1]!.url).toContain(`after=${closed.lastSeq}`);
    expect(slow.room.transport).toBe("websocket");
    expect(slow.statuses.some((s) => s.state === "reconnecting" && s.error?.code === "too_far_behind")).toBe(true);

    const logged = /closed slow's WebSocket with 1013, (\d+) bytes unacknowledged/.exec(server!.output.join(""));
    expect(logged).not.toBeNull();
    const unackedAtClose = Number(logged![1]);
    expect(unackedAtClose).toBeGreaterThan(FLOW_CAP);
    console.info(
      `flow control: cap ${FLOW_CAP} B; paused socket closed with 1013 ${Math.round(closedAfterMs)} ms after it stopped reading, ` +
        `${unackedAtClose} B unacknowledged, after ${publishedWhenClosed} events (${(bytesWhenClosed / 2 ** 10).toFixed(0)} KiB) published; ` +
        `${published} events (${(bytes / 2 ** 10).toFixed(0)} KiB) in all; it had read up to seq ${hadWhenResumed} when it stopped, ` +
        `found ${queuedBytes} B (${closed.lastSeq - hadWhenResumed} events) waiting when it read again, and had all ${published} ${Math.round(caughtUpMs)} ms later, resumed after seq ${closed.lastSeq}`,
    );
  });
});
