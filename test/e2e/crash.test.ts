/**
 * Crash safety (issue 2, SPEC §1 "an accepted message is never lost and
 * never stored twice"): a real `wrangler dev` is SIGKILLed while HTTP and
 * WebSocket clients stream sends into a room and SSE, WebSocket and
 * long-poll readers follow it; it is restarted over the same state and
 * port. Then:
 *
 *   - every send that got a 2xx or an ack is in the log exactly once, with
 *     the seq and id it was acknowledged with, and seqs are gap-free 1..N;
 *   - retrying the unacknowledged sends with the same clientId adds each at
 *     most once (answering the original when it had been accepted);
 *   - readers resuming with Last-Event-ID / after get exactly the rest;
 *   - D1 catches up with the room's log, and history paged with before and
 *     after from D1 matches it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { DevServer } from "./server";
import { Api, duplicates, range, SseClient, uniqueRoom, within, serverLogOnFailure, type Envelope } from "./transports";

const TAIL_EVENTS = 10;

interface Attempt {
  transport: "http" | "ws";
  user: string;
  clientId: string;
  text: string;
  /** `sent`: no 2xx/ack seen (in flight at the crash). */
  state: "sent" | "acked";
  seq?: number;
  id?: string;
}

/** Counts acknowledgements; `until(n)` resolves once n have been counted. */
class Progress {
  count = 0;
  #waiters: { target: number; resolve: () => void }[] = [];

  bump(): void {
    this.count++;
    this.#waiters = this.#waiters.filter((w) => (this.count >= w.target ? (w.resolve(), false) : true));
  }

  until(target: number): Promise<void> {
    if (this.count >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }
}

/** Sends over HTTP on `lanes` concurrent connections until the server stops answering 2xx. */
async function httpSender(api: Api, room: string, user: string, token: string, attempts: Attempt[], progress: Progress, lanes = 3): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let guard = 0; guard < 100_000; guard++) {
      const i = ++next;
      const attempt: Attempt = { transport: "http", user, clientId: `${user}-${i}`, text: `${user} #${i}`, state: "sent" };
      attempts.push(attempt);
      let answer;
      try {
        answer = await api.send(room, token, attempt.text, attempt.clientId);
      } catch {
        return; // the connection died with this send in flight
      }
      if (answer.status !== 201) return; // not acknowledged (e.g. a proxy answering for a dead worker)
      Object.assign(attempt, { state: "acked", seq: answer.body.message.seq, id: answer.body.message.id });
      progress.bump();
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/** Sends over a WebSocket with up to `window` frames awaiting their ack, until the socket dies. */
async function wsSender(ws: WsClient, user: string, attempts: Attempt[], progress: Progress, window = 16): Promise<void> {
  const pending = new Map<string, Attempt>();
  let next = 0;
  let processed = 0;
  try {
    for (let guard = 0; guard < 1_000_000; guard++) {
      while (pending.size < window) {
        const attempt: Attempt = { transport: "ws", user, clientId: `${user}-${++next}`, text: `${user} #${next}`, state: "sent" };
        attempts.push(attempt);
        pending.set(attempt.clientId, attempt);
        ws.send({ type: "send", data: { text: attempt.text }, clientId: attempt.clientId });
      }
      await ws.until((frames) => frames.length > processed, "an ack");
      for (; processed < ws.frames.length; processed++) {
        const frame = ws.frames[processed];
        if (frame?.type === "error") throw new Error(`send refused: ${JSON.stringify(frame)}`);
        if (frame?.type !== "ack") continue;
        const attempt = pending.get(frame.clientId);
        if (!attempt) continue;
        pending.delete(frame.clientId);
        Object.assign(attempt, { state: "acked", seq: frame.seq, id: frame.id });
        progress.bump();
      }
    }
  } catch (error) {
    if (ws.ws.readyState < WebSocket.CLOSING) throw error;
    // the socket died with the server
  }
}

/** Long-polls from the last seq it has until the server goes away or `target` is reached. */
async function pollReader(api: Api, room: string, token: string, seen: Envelope[], target = Infinity): Promise<void> {
  for (let round = 0; round < 10_000 && (seen.at(-1)?.seq ?? 0) < target; round++) {
    let answer;
    try {
      answer = await api.messages(room, token, { after: seen.at(-1)?.seq ?? 0, wait: 10 });
    } catch {
      return;
    }
    if (answer.status !== 200) return;
    seen.push(...answer.body.messages);
  }
}

const key = (user: string | undefined, clientId: string | undefined) => `${user}/${clientId}`;

/** Named promises; a timeout names the ones still pending. */
function settledTracker(named: Record<string, Promise<void>>) {
  const pending = new Set(Object.keys(named));
  const all = Promise.all(Object.entries(named).map(([name, promise]) => promise.finally(() => pending.delete(name))));
  return {
    async within(ms: number, what: string): Promise<void> {
      try {
        await within(all, ms, what);
      } catch (error) {
        throw new Error(`${(error as Error).message}; still pending: ${[...pending].join(", ")}`);
      }
    },
  };
}

describe("SIGKILL mid-stream, then restart over the same state", () => {
  let server: DevServer;
  let api: Api;
  /** Set between a crash and the restart, so a trial that failed in between does not leave the next one without a server. */
  let down = false;
  /** Clients a trial opened, closed even when it fails. */
  const clients: { close(): void }[] = [];
  const track = <T extends { close(): void }>(client: T): T => (clients.push(client), client);

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  beforeEach(serverLogOnFailure(() => server?.output));
  beforeEach(async () => {
    if (!down) return;
    server = await server.restart();
    api = new Api(server.url);
    down = false;
  });
  beforeAll(async () => {
    server = await DevServer.start({
      vars: { SEND_RATE_PER_SECOND: "100000", SEND_BURST: "100000", ROOM_TAIL_EVENTS: String(TAIL_EVENTS), D1_FLUSH_DELAY_MS: "20" },
    });
    api = new Api(server.url);
  });
  afterAll(async () => {
    await server?.stop();
  });

  // Crash early, mid-way and late in the stream: different amounts in flight and in the D1 outbox.
  it.each([
    [1, 15],
    [2, 60],
    [3, 150],
  ])("trial %i: crash after %i acknowledged sends", { timeout: 180_000 }, async (trial, crashAfter) => {
    const room = uniqueRoom(`crash-${trial}`);
    const reader = await tokenFor("reader");
    const tokens = Object.fromEntries(
      await Promise.all(["http-a", "http-b", "ws-a", "ws-b"].map(async (user) => [user, await tokenFor(user, { rooms: [room] })] as const)),
    );
    const attempts: Attempt[] = [];
    const progress = new Progress();

    // Readers, live before the first send: EventSource, WebSocket, long-poll.
    const sse = track(new SseClient(`${api.base}/rooms/${room}/events?token=${reader}&after=0`));
    await within(sse.untilOpen(), 15_000, "the SSE reader");
    const wsReader = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${reader}&after=0`));
    const polled: Envelope[] = [];
    const poller = pollReader(api, room, reader, polled);

    // Writers: two over HTTP, two over WebSocket with several frames in flight.
    const wsWriters = await Promise.all(["ws-a", "ws-b"].map(async (user) => track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${tokens[user]}`))));
    const clientsDone = settledTracker({
      "http-a": httpSender(api, room, "http-a", tokens["http-a"]!, attempts, progress),
      "http-b": httpSender(api, room, "http-b", tokens["http-b"]!, attempts, progress),
      "ws-a": wsSender(wsWriters[0]!, "ws-a", attempts, progress),
      "ws-b": wsSender(wsWriters[1]!, "ws-b", attempts, progress),
      "long-poll reader": poller,
    });

    await within(progress.until(crashAfter), 60_000, `${crashAfter} acknowledged sends`);
    down = true;
    await server.crash();
    await clientsDone.within(30_000, "every client to notice the crash");
    await within(wsReader.closed, 10_000, "the WebSocket reader to close");
    const acked = attempts.filter((a) => a.state === "acked");
    const unacked = attempts.filter((a) => a.state === "sent");
    const sseBeforeCrash = sse.events.filter((e) => e.type === "message" && e.connection === 0).map((e) => JSON.parse(e.data).seq as number);

    server = await server.restart();
    api = new Api(server.url);
    down = false;

    // 1. Everything acknowledged is there exactly once, as acknowledged; seqs are gap-free.
    const afterRestart = await api.history(room, reader);
    expect(afterRestart.map((e) => e.seq)).toEqual(range(1, afterRestart.length));
    const byKey = new Map<string, Envelope[]>();
    for (const e of afterRestart) byKey.set(key(e.from?.id, e.clientId), [...(byKey.get(key(e.from?.id, e.clientId)) ?? []), e]);
    for (const attempt of acked) {
      const found = byKey.get(key(attempt.user, attempt.clientId)) ?? [];
      expect(found.map((e) => ({ seq: e.seq, id: e.id, text: e.data.text })), `${attempt.transport} ${attempt.clientId}`).toEqual([
        { seq: attempt.seq, id: attempt.id, text: attempt.text },
      ]);
    }
    expect([...byKey.values()].filter((list) => list.length > 1)).toEqual([]);
    expect(afterRestart.length).toBeGreaterThanOrEqual(acked.length);
    expect(afterRestart.length).toBeLessThanOrEqual(attempts.length);

    // 2. Retrying what was never acknowledged, with the same clientId, adds each at most once.
    let alreadyAccepted = 0;
    for (const attempt of unacked.filter((a) => a.transport === "http")) {
      const retry = await api.send(room, tokens[attempt.user]!, attempt.text, attempt.clientId);
      expect([200, 201]).toContain(retry.status);
      const earlier = byKey.get(key(attempt.user, attempt.clientId));
      if (retry.status === 200) {
        alreadyAccepted++;
        expect(retry.body.message).toEqual(earlier?.[0]);
      } else expect(earlier).toBeUndefined();
      Object.assign(attempt, { state: "acked", seq: retry.body.message.seq, id: retry.body.message.id });
    }
    for (const user of ["ws-a", "ws-b"]) {
      const retries = unacked.filter((a) => a.transport === "ws" && a.user === user);
      const ws = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${tokens[user]}`));
      for (const attempt of retries) ws.send({ type: "send", data: { text: attempt.text }, clientId: attempt.clientId });
      const acks = await within(
        ws.until((frames) => {
          const got = frames.filter((f) => f.type === "ack");
          return got.length >= retries.length ? got : undefined;
        }, "acks of the retried frames"),
        15_000,
        `${user}'s retry acks`,
      );
      for (const attempt of retries) {
        const ack = acks.find((a: any) => a.clientId === attempt.clientId);
        const earlier = byKey.get(key(attempt.user, attempt.clientId));
        if (earlier) {
          alreadyAccepted++;
          expect({ seq: ack.seq, id: ack.id }).toEqual({ seq: earlier[0]!.seq, id: earlier[0]!.id });
        }
        Object.assign(attempt, { state: "acked", seq: ack.seq, id: ack.id });
      }
      ws.close();
    }
    // An acknowledged send retried again is answered with the original, no new seq.
    const replayed = acked.find((a) => a.transport === "http");
    if (replayed) {
      const again = await api.send(room, tokens[replayed.user]!, replayed.text, replayed.clientId);
      expect({ status: again.status, seq: again.body.message.seq, id: again.body.message.id }).toEqual({ status: 200, seq: replayed.seq, id: replayed.id });
    }

    const final = await api.history(room, reader);
    const n = final.length;
    expect(final.map((e) => e.seq)).toEqual(range(1, n));
    expect(n).toBe(attempts.length); // every attempt exactly once, no more
    for (const attempt of attempts) {
      const found = final.filter((e) => e.from?.id === attempt.user && e.clientId === attempt.clientId);
      expect(found.map((e) => ({ seq: e.seq, id: e.id })), `${attempt.transport} ${attempt.clientId}`).toEqual([{ seq: attempt.seq, id: attempt.id }]);
    }
    expect(final.slice(0, afterRestart.length)).toEqual(afterRestart);

    // 3. Readers resume from what they saw and get exactly the rest.
    await within(sse.untilSeq(n), 30_000, `seq ${n} on the reconnected EventSource`);
    sse.close();
    expect(duplicates(sse.seqs())).toEqual([]);
    expect(sse.messages()).toEqual(final);
    const resumed = sse.connections.find((c, i) => i > 0 && c.status === 200)!;
    expect(resumed.requestHeaders.get("last-event-id")).toBe(sseBeforeCrash.length ? String(sseBeforeCrash.at(-1)) : null);

    const wsSeen = wsReader.messages() as Envelope[];
    const wsResumed = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${reader}&after=${wsSeen.at(-1)?.seq ?? 0}`));
    await within(wsResumed.untilMessages(n - wsSeen.length), 15_000, "the rest on the resumed WebSocket");
    wsResumed.close();
    expect([...wsSeen, ...wsResumed.messages()]).toEqual(final);

    const polledBefore = polled.length;
    await within(pollReader(api, room, reader, polled, n), 30_000, "the rest by long-poll");
    expect(polled).toEqual(final);

    // 4. D1 catches up with the room's log; history paged from D1 matches it.
    const status = await api.untilStatus(room, (s) => s.outbox.pending === 0 && s.outbox.flushedSeq === n && s.trimmedSeq >= n - TAIL_EVENTS, "D1 to hold every event", 30_000);
    expect(status.seq).toBe(n);
    const backwards: Envelope[] = [];
    for (let before = n + 1, guard = 0; before > 1 && guard < 1_000; guard++) {
      const page = await api.messages(room, reader, { before, limit: 7 });
      expect(page.status).toBe(200);
      backwards.unshift(...page.body.messages);
      before = page.body.messages[0]?.seq ?? 1;
    }
    expect(backwards).toEqual(final);
    const forwards: Envelope[] = [];
    for (let guard = 0; forwards.length < n && guard < 1_000; guard++) {
      const page = await api.messages(room, reader, { after: forwards.at(-1)?.seq ?? 0, limit: 9 });
      expect(page.status).toBe(200);
      if (page.body.messages.length === 0) break;
      forwards.push(...page.body.messages);
    }
    expect(forwards).toEqual(final);

    console.info(
      `crash trial ${trial}: ${attempts.length} sends, ${acked.length} acknowledged before the SIGKILL, ${unacked.length} in flight ` +
        `(${alreadyAccepted} of them had been accepted), readers had SSE ${sseBeforeCrash.length} / WS ${wsSeen.length} / long-poll ${polledBefore}, ` +
        `D1 flushed to ${status.outbox.flushedSeq}, trimmed to ${status.trimmedSeq}`,
    );
  });
});
