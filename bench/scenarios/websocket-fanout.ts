/**
 * WebSocket fan-out: one room, N subscribed WebSockets, events published by
 * POST /rooms/:room/notify (each durable in the room and persisted to D1).
 * Each sample is the time from just before the notify is handed to fetch
 * until one socket has the event, so a run of E events gives N × E samples.
 * Events go out one at a time, each after every socket has the previous one
 * (or a timeout), so a sample is delivery latency, not queueing behind a
 * backlog. Order and duplicates are checked per socket.
 *
 * This is the small form of the benchmark issue's fan-out scenario (1,000
 * subscribers at 100 events/s beside Socket.io and raw ws), which grows here.
 */
import { postJson, tokenFor } from "../../test/e2e/clients.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";

export interface FanoutParams {
  room: string;
  sockets: number;
  events: number;
  /** An event not delivered to every socket within this is counted as lost. */
  eventTimeoutMs: number;
}

interface Subscriber {
  ws: WebSocket;
  /** Each event's index → ms after its publish (first arrival only). */
  seen: Map<number, number>;
  duplicates: number;
  outOfOrder: number;
  lastSeq: number;
}

export function websocketFanout(sockets: number): Scenario<FanoutParams> {
  const room = `bench-ws-fanout-${sockets}`;
  return {
    id: `ws-fanout-${sockets}`,
    title: (p) => `WebSocket fan-out, ${p.sockets} sockets, ${p.events} notifies`,
    series: [
      { key: "websocket", label: "ours (WebSocket)", description: "hibernatable WebSockets in one room, each event notified over HTTP, stored and fanned out by the room" },
    ],
    params: (mode) =>
      mode === "quick"
        ? { room, sockets: Math.min(sockets, 50), events: 5, eventTimeoutMs: 10_000 }
        : { room, sockets, events: 20, eventTimeoutMs: 10_000 },

    async warmup(ctx, params) {
      await this.run(ctx, { ...params, events: 2 }, -1);
    },

    async run(ctx, params) {
      const subscribers = await openSockets(ctx, params);
      const sentAt: number[] = [];
      let waiting: { index: number; remaining: number; done: () => void } | undefined;
      for (const sub of subscribers) {
        sub.ws.addEventListener("message", (event) => {
          const frame = JSON.parse(String(event.data));
          if (frame.type !== "message") return;
          const index = frame.message.data.index as number;
          if (frame.message.seq <= sub.lastSeq) sub.outOfOrder++;
          sub.lastSeq = Math.max(sub.lastSeq, frame.message.seq);
          if (sub.seen.has(index)) return void sub.duplicates++;
          sub.seen.set(index, performance.now() - sentAt[index]!);
          if (waiting?.index === index && --waiting.remaining === 0) waiting.done();
        });
      }
      for (let index = 0; index < params.events && !ctx.signal.aborted; index++) {
        const allArrived = new Promise<void>((done) => (waiting = { index, remaining: subscribers.length, done }));
        sentAt[index] = performance.now();
        const response = await postJson(`${ctx.url}/rooms/${params.room}/notify`, { event: "bench", data: { index } }, ctx.notifySecret);
        if (response.status !== 202) throw new Error(`notify answered ${response.status}: ${await response.text()}`);
        await Promise.race([allArrived, new Promise((r) => setTimeout(r, params.eventTimeoutMs))]);
      }
      for (const sub of subscribers) sub.ws.close();
      const latenciesMs = subscribers.flatMap((s) => [...s.seen.values()]);
      const run: SeriesRun = {
        latenciesMs,
        expected: subscribers.length * sentAt.length,
        delivered: latenciesMs.length,
        duplicates: subscribers.reduce((n, s) => n + s.duplicates + s.outOfOrder, 0),
      };
      return { websocket: run };
    },
  };
}

/** Opens every socket and waits for each welcome frame. */
async function openSockets(ctx: BenchContext, params: FanoutParams): Promise<Subscriber[]> {
  const token = await tokenFor("bench-fanout", { rooms: [params.room] });
  const wsUrl = `${ctx.url.replace(/^http/, "ws")}/rooms/${params.room}/ws?token=${token}`;
  return Promise.all(
    Array.from({ length: params.sockets }, () =>
      new Promise<Subscriber>((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        const sub: Subscriber = { ws, seen: new Map(), duplicates: 0, outOfOrder: 0, lastSeq: 0 };
        ws.addEventListener("message", (event) => {
          const frame = JSON.parse(String(event.data));
          if (frame.type === "welcome") {
            sub.lastSeq = frame.seq;
            resolve(sub);
          }
        });
        ws.addEventListener("error", () => reject(new Error("a bench WebSocket failed to open")), { once: true });
      }),
    ),
  );
}
