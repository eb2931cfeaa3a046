/**
 * Long-poll wake latency, beside the 500 ms database-polling loop it replaces.
 *
 * ours ("long-poll"): N clients each hold
 *   GET /rooms/:room/messages?after=SEQ&wait=25
 * The bench waits until the room reports all N held (GET /rooms/:room/status
 * → subscribers), then publishes one event with POST /rooms/:room/notify.
 * Each sample is the time from just before the notify request is handed to
 * fetch until the last byte of that poll's answer arrives.
 *
 * baseline ("poll every 500 ms"): the seed design checked the database every
 * 500 ms. Simulated here by N clients that each call
 *   GET /rooms/:room/messages?after=SEQ        (no wait: answered at once)
 * on a fixed 500 ms schedule with a random phase (as independent clients
 * would), against the same room and history. At a random moment in the
 * second period (every client has polled by then; the moment does not
 * depend on the phases) the same notify is sent; each sample is the time
 * from the notify being sent until the first poll answer that contains the
 * event arrives. Expected: about 250 ms on average, up to 500 ms plus a round trip.
 *
 * raw Node ("ws"): the ws baseline's process holds the same kind of request
 * (GET /messages?room=R&after=SEQ&wait=25, node:http, in memory) and answers
 * every held one with a pre-built body when its POST /notify arrives. Timed as ours.
 *
 * Socket.io 4 over HTTP long-polling ("socketio"): N socket.io-client
 * sockets restricted to the polling transport, connected to the Socket.io
 * baseline's room for the whole run (Socket.io keeps a GET held per client
 * between packets). Each sample: from just before the baseline's POST
 * /notify is sent until that client's "message" event fires.
 *
 * A run is `rounds` rounds of each, alternating (ours, raw Node, Socket.io,
 * polling loop, ours, …) so every series sees the same machine over time.
 */
import { io as socketIoClient, type Socket } from "socket.io-client";
import { postJson, tokenFor } from "../../test/e2e/clients.ts";
import { getJson, sleep, sleepUntil, untilAborted } from "../lib/http.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
import { processCpuMs } from "../lib/machine.ts";
import { distribution } from "../lib/stats.ts";

export interface LongPollWakeParams {
  /** The room both series use (its own per size). */
  room: string;
  /** Concurrent clients per round, for both series. */
  polls: number;
  /** Rounds (one published event each) per series per run. */
  rounds: number;
  /** `wait` of the held polls, seconds (the contract's maximum). */
  waitSeconds: number;
  /** The baseline's polling period. */
  periodMs: number;
  /** Events published before the measured runs, so every read has history behind it. */
  historyEvents: number;
  /** A round that takes longer than this is abandoned; its missing answers count as undelivered. */
  roundTimeoutMs: number;
}

interface MessagesBody {
  messages: { seq: number }[];
  seq: number;
}

interface RoundResult {
  latenciesMs: number[];
  expected: number;
  delivered: number;
  duplicates: number;
  /** Request round trips worth recording (baseline polls; ours: the notify). */
  rttsMs: number[];
  /** ours: ms from sending the polls to all N held (0 for the baseline). */
  holdMs: number;
  /** baseline: poll requests sent (0 for ours). */
  requests: number;
  durationMs: number;
  errors: number;
  /** ms of CPU the server used over the round (ours and the floor, when its process is known). */
  serverCpuMs?: number;
}

/**
 * The scenario at one size. Two sizes run in the full bench: 50 clients (what
 * the seed design served at most), where the server keeps up with the
 * baseline's 100 requests/s, and 200, where it has to work for both.
 * `inQuick`: whether `bench:quick` runs this size (with fewer rounds).
 */
export function longPollWake(polls: number, inQuick: boolean): Scenario<LongPollWakeParams> {
  const room = `bench-long-poll-wake-${polls}`;
  return {
    id: `long-poll-wake-${polls}`,
    title: (p) => `long-poll wake, ${p.polls} held poll${p.polls === 1 ? "" : "s"}`,
    series: [
      {
        key: "longpoll",
        label: "ours (long-poll)",
        description: "GET /rooms/:room/messages?after=N&wait=25 held in the room, woken by the Hub's fan-out",
      },
      {
        key: "floor",
        label: "floor",
        description: "bench/floor under serve: the same GET held in a minimal object, answered with one pre-built body per held poll on notify",
      },
      {
        key: "socketio",
        label: "Socket.io 4",
        description: "socket.io-client 4.8 with transports: ['polling'] (HTTP long-polling) in a Socket.io 4.8 room; event broadcast from an HTTP notify",
      },
      {
        key: "ws",
        label: "raw ws",
        description: "raw node:http long-poll in the ws baseline's process: GET /messages?after=N&wait=25 held in memory, answered on notify",
      },
      {
        key: "poll500",
        label: "500 ms polling",
        description: "GET /rooms/:room/messages?after=N without wait, every 500 ms per client, random phase (the seed design's database-polling loop)",
      },
    ],
    figures: [{ key: "pollServerUs", label: "server CPU per answered long-poll (held, woken, answered)", unit: "µs", better: "lower" }],
    runs: 3,
    params: (mode) =>
      mode === "quick"
        ? inQuick
          ? { room, polls, rounds: 2, waitSeconds: 25, periodMs: 500, historyEvents: 20, roundTimeoutMs: 10_000 }
          : undefined
        : { room, polls, rounds: 10, waitSeconds: 25, periodMs: 500, historyEvents: 100, roundTimeoutMs: 10_000 },

    async warmup(ctx, params) {
      for (let i = 0; i < params.historyEvents; i++) await publish(ctx, params.room, { history: i });
      const tokens = await tokensFor(params.polls);
      await longPollRound(ctx, ours(ctx), params, tokens, -1);
      if (ctx.floor) await longPollRound(ctx, ctx.floor, params, tokens, -1);
      await rawLongPollRound(ctx, params, -1);
      const clients = await connectSocketIo(ctx, params);
      try {
        await socketIoRound(ctx, params, clients, -1);
      } finally {
        for (const client of clients) client.disconnect();
      }
      await pollingRound(ctx, params, tokens, -1);
    },

    async run(ctx, params) {
      const tokens = await tokensFor(params.polls);
      const clients = await connectSocketIo(ctx, params);
      const ourRounds: RoundResult[] = [];
      const floorRounds: RoundResult[] = [];
      const raw: RoundResult[] = [];
      const sio: RoundResult[] = [];
      const baseline: RoundResult[] = [];
      try {
        for (let round = 0; round < params.rounds; round++) {
          if (ctx.signal.aborted) break;
          ourRounds.push(await longPollRound(ctx, ours(ctx), params, tokens, round));
          if (ctx.signal.aborted) break;
          if (ctx.floor) floorRounds.push(await longPollRound(ctx, ctx.floor, params, tokens, round));
          if (ctx.signal.aborted) break;
          raw.push(await rawLongPollRound(ctx, params, round));
          if (ctx.signal.aborted) break;
          sio.push(await socketIoRound(ctx, params, clients, round));
          if (ctx.signal.aborted) break;
          baseline.push(await pollingRound(ctx, params, tokens, round));
        }
      } finally {
        for (const client of clients) client.disconnect();
      }
      const expected = params.polls * params.rounds;
      const longpoll = merge(ourRounds, expected);
      longpoll.extra = {
        notifyRttP50Ms: distribution(ourRounds.flatMap((r) => r.rttsMs)).p50,
        /** Median over rounds of the round's first answer: how long before any answer leaves. */
        firstAnswerP50Ms: distribution(ourRounds.map((r) => Math.min(...r.latenciesMs))).p50,
        holdAllMsP50: distribution(ourRounds.map((r) => r.holdMs)).p50,
        errors: sum(ourRounds.map((r) => r.errors)),
        ...cpuPerPoll(ourRounds),
      };
      const floorSeries: Record<string, SeriesRun> = ctx.floor ? { floor: { ...merge(floorRounds, expected), extra: { errors: sum(floorRounds.map((r) => r.errors)), ...cpuPerPoll(floorRounds) } } } : {};
      const poll500 = merge(baseline, expected);
      const seconds = sum(baseline.map((r) => r.durationMs)) / 1000;
      poll500.extra = {
        pollRttP50Ms: distribution(baseline.flatMap((r) => r.rttsMs)).p50,
        pollRttP99Ms: distribution(baseline.flatMap((r) => r.rttsMs)).p99,
        pollRequestsPerSecond: seconds > 0 ? sum(baseline.map((r) => r.requests)) / seconds : 0,
        errors: sum(baseline.map((r) => r.errors)),
      };
      const ws = merge(raw, expected);
      ws.extra = { errors: sum(raw.map((r) => r.errors)) };
      const socketio = merge(sio, expected);
      return { longpoll, ...floorSeries, socketio, ws, poll500 };
    },
  };
}

/** The raw Node baseline's round: N held GETs on the ws baseline, one notify, N answers timed. */
async function rawLongPollRound(ctx: BenchContext, params: LongPollWakeParams, round: number): Promise<RoundResult> {
  const base = ctx.baselines.ws.url;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(params.roundTimeoutMs)]);
  const state = async () => (await getJson<{ seq: number; polls: number }>(`${base}/status?room=${params.room}`)).body;
  const seq = (await state()).seq;
  const url = `${base}/messages?room=${params.room}&after=${seq}&wait=${params.waitSeconds}`;
  const arrivals: (number | undefined)[] = new Array(params.polls).fill(undefined);
  let duplicates = 0;
  let errors = 0;
  let settled = 0;
  const begun = performance.now();
  const polls = arrivals.map((_, i) =>
    getJson<MessagesBody>(url, {}, signal)
      .then((response) => {
        const hits = response.status === 200 ? response.body.messages.filter((m) => m.seq === seq + 1).length : 0;
        if (hits > 0) arrivals[i] = response.endedAt;
        if (hits > 1) duplicates += hits - 1;
        if (response.status !== 200) errors++;
      })
      .catch(() => void errors++)
      .finally(() => void settled++),
  );
  while (!signal.aborted && (await state()).polls + settled < params.polls) await sleep(2);
  const holdMs = performance.now() - begun;
  const t0 = performance.now();
  await postJson(`${base}/notify`, { room: params.room, event: "bench.wake", data: { round } }).catch(() => undefined);
  const rtt = performance.now() - t0;
  await Promise.all(polls);
  const result = roundResult(arrivals, t0, { duplicates, rttsMs: [rtt], holdMs, requests: 0, durationMs: performance.now() - begun, errors });
  ctx.debug(`raw long-poll round ${round}: ${describe(result)}`);
  return result;
}

/** N socket.io-client sockets on HTTP long-polling only, each welcomed into the Socket.io baseline's room. */
async function connectSocketIo(ctx: BenchContext, params: LongPollWakeParams): Promise<Socket[]> {
  const clients = Array.from({ length: params.polls }, () =>
    socketIoClient(ctx.baselines.socketio.url, { transports: ["polling"], query: { room: params.room }, forceNew: true, reconnection: false }),
  );
  const welcomed = clients.map(
    (client) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("a Socket.io polling client was not welcomed within 30 s")), 30_000);
        client.once("welcome", () => {
          clearTimeout(timer);
          resolve();
        });
        client.once("connect_error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
      }),
  );
  try {
    await Promise.all(welcomed);
  } catch (error) {
    for (const client of clients) client.disconnect();
    throw error;
  }
  return clients;
}

/** Socket.io's round: one notify to the baseline, each polling client's "message" event timed. */
async function socketIoRound(ctx: BenchContext, params: LongPollWakeParams, clients: Socket[], round: number): Promise<RoundResult> {
  const arrivals: (number | undefined)[] = new Array(clients.length).fill(undefined);
  let duplicates = 0;
  let remaining = clients.length;
  let allArrived!: () => void;
  const done = new Promise<void>((resolve) => (allArrived = resolve));
  const listeners = clients.map((client, i) => {
    const listener = (event: { data?: { round?: number } }) => {
      const at = performance.now();
      if (event.data?.round !== round) return;
      if (arrivals[i] !== undefined) return void duplicates++;
      arrivals[i] = at;
      if (--remaining === 0) allArrived();
    };
    client.on("message", listener);
    return listener;
  });
  const begun = performance.now();
  const t0 = performance.now();
  const response = await postJson(`${ctx.baselines.socketio.url}/notify`, { room: params.room, event: "bench.wake", data: { round } }).catch(() => undefined);
  const rtt = performance.now() - t0;
  const timeout = AbortSignal.any([ctx.signal, AbortSignal.timeout(params.roundTimeoutMs)]);
  await untilAborted(done, timeout);
  clients.forEach((client, i) => client.off("message", listeners[i]));
  const result = roundResult(arrivals, t0, { duplicates, rttsMs: [rtt], holdMs: 0, requests: 0, durationMs: performance.now() - begun, errors: response?.status === 202 ? 0 : 1 });
  ctx.debug(`Socket.io polling round ${round}: ${describe(result)}`);
  return result;
}

/** Where a long-poll round runs: ours, or the floor (same routes), and the process whose CPU it costs. */
interface PollServer {
  url: string;
  pid?: number;
}

const ours = (ctx: BenchContext): PollServer => ({ url: ctx.url, pid: ctx.serverPid });

/** Server CPU per answered poll over the rounds (absent when the process is not known, as under wrangler dev). */
function cpuPerPoll(rounds: RoundResult[]): Record<string, number> {
  const measured = rounds.filter((r) => r.serverCpuMs !== undefined);
  const answered = sum(measured.map((r) => r.delivered));
  return measured.length && answered ? { pollServerUs: (sum(measured.map((r) => r.serverCpuMs!)) * 1000) / answered } : {};
}

/**
 * One round of ours (or the floor): N held polls, one notify, N answers
 * timed. The server's CPU is counted from the first poll sent to the last
 * answer: holding, waking and answering N polls, plus the bench's status
 * checks while they are taken in (every 20 ms, the same for both).
 */
async function longPollRound(ctx: BenchContext, server: PollServer, params: LongPollWakeParams, tokens: string[], round: number): Promise<RoundResult> {
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(params.roundTimeoutMs)]);
  const seq = (await status(ctx, params.room, server.url)).seq;
  const target = seq + 1;
  const url = `${server.url}/rooms/${params.room}/messages?after=${seq}&wait=${params.waitSeconds}`;
  const cpuBefore = server.pid === undefined ? undefined : processCpuMs(server.pid);
  const arrivals: (number | undefined)[] = new Array(tokens.length).fill(undefined);
  let duplicates = 0;
  let errors = 0;
  let settled = 0;
  const begun = performance.now();
  const polls = tokens.map((token, i) =>
    getJson<MessagesBody>(url, { authorization: `Bearer ${token}` }, signal)
      .then((response) => {
        const hits = response.status === 200 ? response.body.messages.filter((m) => m.seq === target).length : 0;
        if (hits > 0) arrivals[i] = response.endedAt;
        if (hits > 1) duplicates += hits - 1;
        if (response.status !== 200) errors++;
      })
      .catch(() => void errors++)
      .finally(() => void settled++),
  );
  // Publish only once the room holds every poll (or those that failed have failed).
  let held = 0;
  while (!signal.aborted) {
    held = (await status(ctx, params.room, server.url)).subscribers;
    if (held + settled >= tokens.length) break;
    await sleep(20);
  }
  const holdMs = performance.now() - begun;
  const t0 = performance.now();
  const published = await publish(ctx, params.room, { round }, signal, server.url).catch(() => undefined);
  const rtt = performance.now() - t0;
  await Promise.all(polls);
  const cpuAfter = server.pid === undefined ? undefined : processCpuMs(server.pid);
  if (published !== undefined && published !== target) throw new Error(`notify got seq ${published}, expected ${target}: something else writes to ${params.room}`);
  const serverCpuMs = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
  const result = roundResult(arrivals, t0, { duplicates, rttsMs: [rtt], holdMs, requests: 0, durationMs: performance.now() - begun, errors, serverCpuMs });
  ctx.debug(`long-poll round ${round}: ${held} held in ${Math.round(holdMs)} ms, notify ${Math.round(rtt)} ms, ${describe(result)}`);
  return result;
}

/** One round of the baseline: N clients polling every periodMs, one notify, each client's first sighting timed. */
async function pollingRound(ctx: BenchContext, params: LongPollWakeParams, tokens: string[], round: number): Promise<RoundResult> {
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(params.roundTimeoutMs)]);
  const seq = (await status(ctx, params.room)).seq;
  const target = seq + 1;
  const url = `${ctx.url}/rooms/${params.room}/messages?after=${seq}`;
  const arrivals: (number | undefined)[] = new Array(tokens.length).fill(undefined);
  const rtts: number[] = [];
  let duplicates = 0;
  let errors = 0;
  let requests = 0;
  let ready = 0;
  let allReady!: () => void;
  const everyoneHasPolled = new Promise<void>((resolve) => (allReady = resolve));
  const begun = performance.now();
  const clients = tokens.map(async (token, i) => {
    const phase = Math.random() * params.periodMs;
    let polled = false;
    for (let tick = 0; !signal.aborted; ) {
      await sleepUntil(begun + phase + tick * params.periodMs, signal);
      if (signal.aborted) break;
      try {
        requests++;
        const response = await getJson<MessagesBody>(url, { authorization: `Bearer ${token}` }, signal);
        rtts.push(response.endedAt - response.sentAt);
        if (response.status !== 200) errors++;
        const hits = response.status === 200 ? response.body.messages.filter((m) => m.seq === target).length : 0;
        if (hits > 1) duplicates += hits - 1;
        if (hits > 0) {
          arrivals[i] = response.endedAt;
          if (!polled && ++ready === tokens.length) allReady();
          return;
        }
      } catch {
        if (!signal.aborted) errors++;
      }
      if (!polled) {
        polled = true;
        if (++ready === tokens.length) allReady();
      }
      // Next tick on the fixed schedule; ticks missed while a request was in flight are skipped.
      tick = Math.max(tick + 1, Math.floor((performance.now() - begun - phase) / params.periodMs) + 1);
    }
  });
  // Publish at a moment chosen independently of the clients' phases (so each client's wait is uniform over
  // its period), after a full period so every client is in its steady loop, and never before all have polled.
  await sleepUntil(begun + params.periodMs + Math.random() * params.periodMs, signal);
  await untilAborted(everyoneHasPolled, signal);
  const t0 = performance.now();
  const published = await publish(ctx, params.room, { round }, signal).catch(() => undefined);
  await Promise.all(clients);
  if (published !== undefined && published !== target) throw new Error(`notify got seq ${published}, expected ${target}: something else writes to ${params.room}`);
  const result = roundResult(arrivals, t0, { duplicates, rttsMs: rtts, holdMs: 0, requests, durationMs: performance.now() - begun, errors });
  ctx.debug(`polling round ${round}: ${requests} requests, poll p50 ${Math.round(distribution(rtts).p50)} ms, ${describe(result)}`);
  return result;
}

/** Samples from each client's arrival time (undefined: the event never reached it) and the clock's start. */
function roundResult(arrivals: (number | undefined)[], t0: number, rest: Omit<RoundResult, "latenciesMs" | "expected" | "delivered">): RoundResult {
  const latenciesMs = arrivals.filter((a): a is number => a !== undefined).map((a) => a - t0);
  return { latenciesMs, expected: arrivals.length, delivered: latenciesMs.length, ...rest };
}

function describe(r: RoundResult): string {
  const d = distribution(r.latenciesMs);
  return `delivered ${r.delivered}/${r.expected}, p50 ${Math.round(d.p50)} ms, max ${Math.round(d.max)} ms, ${r.errors} errors, round ${Math.round(r.durationMs)} ms`;
}

function merge(rounds: RoundResult[], expected: number): SeriesRun {
  return {
    latenciesMs: rounds.flatMap((r) => r.latenciesMs),
    expected,
    delivered: sum(rounds.map((r) => r.delivered)),
    duplicates: sum(rounds.map((r) => r.duplicates)),
  };
}

/** Publishes one event to the room; resolves with its seq. */
async function publish(ctx: BenchContext, room: string, data: Record<string, number>, signal?: AbortSignal, base = ctx.url): Promise<number> {
  if (signal?.aborted) throw new Error("aborted");
  const response = await postJson(`${base}/rooms/${room}/notify`, { event: "bench.wake", data }, ctx.notifySecret);
  const body = (await response.json()) as { message?: { seq: number } };
  if (response.status !== 202 || !body.message) throw new Error(`notify answered ${response.status}: ${JSON.stringify(body)}`);
  return body.message.seq;
}

async function status(ctx: BenchContext, room: string, base = ctx.url): Promise<{ seq: number; subscribers: number }> {
  const response = await getJson<{ seq: number; subscribers: number }>(`${base}/rooms/${room}/status`, { authorization: `Bearer ${ctx.notifySecret}` });
  if (response.status !== 200) throw new Error(`room status answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

function tokensFor(n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => tokenFor(`bench-${i}`)));
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
