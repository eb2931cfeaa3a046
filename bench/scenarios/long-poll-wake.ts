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
 * A run is `rounds` rounds of each, alternating (ours, baseline, ours, …) so
 * both see the same history and the same machine over time.
 */
import { postJson, tokenFor } from "../../test/e2e/clients.ts";
import { getJson, sleep, sleepUntil, untilAborted } from "../lib/http.ts";
import type { BenchContext, Scenario, SeriesRun } from "../lib/scenario.ts";
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
        key: "poll500",
        label: "500 ms polling",
        description: "GET /rooms/:room/messages?after=N without wait, every 500 ms per client, random phase (the seed design's database-polling loop)",
      },
    ],
    params: (mode) =>
      mode === "quick"
        ? inQuick
          ? { room, polls, rounds: 3, waitSeconds: 25, periodMs: 500, historyEvents: 20, roundTimeoutMs: 10_000 }
          : undefined
        : { room, polls, rounds: 10, waitSeconds: 25, periodMs: 500, historyEvents: 100, roundTimeoutMs: 10_000 },

    async warmup(ctx, params) {
      for (let i = 0; i < params.historyEvents; i++) await publish(ctx, params.room, { history: i });
      const tokens = await tokensFor(params.polls);
      await longPollRound(ctx, params, tokens, -1);
      await pollingRound(ctx, params, tokens, -1);
    },

    async run(ctx, params) {
      const tokens = await tokensFor(params.polls);
      const ours: RoundResult[] = [];
      const baseline: RoundResult[] = [];
      for (let round = 0; round < params.rounds; round++) {
        if (ctx.signal.aborted) break;
        ours.push(await longPollRound(ctx, params, tokens, round));
        if (ctx.signal.aborted) break;
        baseline.push(await pollingRound(ctx, params, tokens, round));
      }
      const expected = params.polls * params.rounds;
      const longpoll = merge(ours, expected);
      longpoll.extra = {
        notifyRttP50Ms: distribution(ours.flatMap((r) => r.rttsMs)).p50,
      /** Median over rounds of the round's first answer: how long before any answer leaves. */
      firstAnswerP50Ms: distribution(ours.map((r) => Math.min(...r.latenciesMs))).p50,
        holdAllMsP50: distribution(ours.map((r) => r.holdMs)).p50,
        errors: sum(ours.map((r) => r.errors)),
      };
      const poll500 = merge(baseline, expected);
      const seconds = sum(baseline.map((r) => r.durationMs)) / 1000;
      poll500.extra = {
        pollRttP50Ms: distribution(baseline.flatMap((r) => r.rttsMs)).p50,
        pollRttP99Ms: distribution(baseline.flatMap((r) => r.rttsMs)).p99,
        pollRequestsPerSecond: seconds > 0 ? sum(baseline.map((r) => r.requests)) / seconds : 0,
        errors: sum(baseline.map((r) => r.errors)),
      };
      return { longpoll, poll500 };
    },
  };
}

/** One round of ours: N held polls, one notify, N answers timed. */
async function longPollRound(ctx: BenchContext, params: LongPollWakeParams, tokens: string[], round: number): Promise<RoundResult> {
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(params.roundTimeoutMs)]);
  const seq = (await status(ctx, params.room)).seq;
  const target = seq + 1;
  const url = `${ctx.url}/rooms/${params.room}/messages?after=${seq}&wait=${params.waitSeconds}`;
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
    held = (await status(ctx, params.room)).subscribers;
    if (held + settled >= tokens.length) break;
    await sleep(2);
  }
  const holdMs = performance.now() - begun;
  const t0 = performance.now();
  const published = await publish(ctx, params.room, { round }, signal).catch(() => undefined);
  const rtt = performance.now() - t0;
  await Promise.all(polls);
  if (published !== undefined && published !== target) throw new Error(`notify got seq ${published}, expected ${target}: something else writes to ${params.room}`);
  const result = roundResult(arrivals, t0, { duplicates, rttsMs: [rtt], holdMs, requests: 0, durationMs: performance.now() - begun, errors });
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
async function publish(ctx: BenchContext, room: string, data: Record<string, number>, signal?: AbortSignal): Promise<number> {
  if (signal?.aborted) throw new Error("aborted");
  const response = await postJson(`${ctx.url}/rooms/${room}/notify`, { event: "bench.wake", data }, ctx.notifySecret);
  const body = (await response.json()) as { message?: { seq: number } };
  if (response.status !== 202 || !body.message) throw new Error(`notify answered ${response.status}: ${JSON.stringify(body)}`);
  return body.message.seq;
}

async function status(ctx: BenchContext, room: string): Promise<{ seq: number; subscribers: number }> {
  const response = await getJson<{ seq: number; subscribers: number }>(`${ctx.url}/rooms/${room}/status`, { authorization: `Bearer ${ctx.notifySecret}` });
  if (response.status !== 200) throw new Error(`room status answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

function tokensFor(n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => tokenFor(`bench-${i}`)));
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
