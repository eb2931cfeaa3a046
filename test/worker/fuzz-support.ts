/**
 * Shared pieces of the fuzz suites (fuzz-http.test.ts, fuzz-ws.test.ts):
 * how many cases to run, the seed, the contract's error-shape oracle, the
 * arbitraries for tokens, room ids and junk, and a ledger of the seqs the
 * service acknowledged, to prove that nothing was stored for a rejection.
 *
 * `npm test` runs a small seed-fixed sample (about 2,000 cases in all).
 * `npm run fuzz` sets FUZZ_RUNS (the total number of cases, spread over the
 * properties by weight) and a fresh seed unless FUZZ_SEED is given; both
 * reach the tests as bindings (vitest.config.mts). A failure prints the seed
 * and the shrunk counter-example; re-run with FUZZ_SEED=<seed> to replay it.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { SignJWT } from "jose";
import { expect } from "vitest";
import { ERROR_STATUS } from "../../protocol/errors";
import { ROOM_ID_PATTERN } from "../../protocol/limits";
import { roomStub } from "./support";

/** Weights of the properties; their sum is the default sample, about 2,000 cases. */
export const WEIGHTS = {
  routes: 500,
  tokens: 250,
  queries: 300,
  bodies: 450,
  roomIds: 250,
  frames: 300,
} as const;
const SAMPLE_TOTAL = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);

const fuzzEnv = env as unknown as { FUZZ_RUNS?: string; FUZZ_SEED?: string };
const requested = Number(fuzzEnv.FUZZ_RUNS || 0);
/** A long run (npm run fuzz) rather than the fixed sample of npm test. */
export const LONG_RUN = requested > 0;
export const SEED = fuzzEnv.FUZZ_SEED ? Number(fuzzEnv.FUZZ_SEED) : LONG_RUN ? Date.now() % 2 ** 31 : 20261121;

/** Cases for one property. */
export function runsFor(property: keyof typeof WEIGHTS): number {
  const weight = WEIGHTS[property];
  return LONG_RUN ? Math.ceil((requested * weight) / SAMPLE_TOTAL) : weight;
}

/** A test timeout generous enough for `runs` cases (a few ms each) on a slow machine. */
export const timeoutFor = (runs: number): number => 60_000 + runs * 25;

/**
 * fast-check's parameters: the seed and the run count. The service keeps
 * state between cases (rooms, rate buckets, idempotency keys), so a shrunk
 * counter-example can mislead: the first failing case is reported as found.
 */
export function params(runs: number): fc.Parameters<unknown> {
  return { numRuns: runs, seed: SEED, endOnFailure: true };
}

/** Counts outcomes (statuses, error codes, frame types), to show what a run exercised. */
export class Tally {
  readonly #counts = new Map<string, number>();

  add(outcome: string | number): void {
    const key = String(outcome);
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  toString(): string {
    return [...this.#counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
  }
}

/** One line per property (`npm run fuzz` adds them up): cases, time, seed and what the answers were. */
export function report(name: string, cases: number, started: number, tally?: Tally): void {
  console.info(`fuzz ${name}: ${cases} cases in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${SEED})${tally ? `; answers: ${tally}` : ""}`);
}

// ---- the oracle ----

const KNOWN_CODES = new Set(Object.keys(ERROR_STATUS));

/**
 * Checks one HTTP answer against the contract: never a 5xx; every error is
 * exactly {"error":{"code","message"}} (the legacy routes add success:false),
 * with a known code whose status is the one answered; 429 and 503 carry a
 * Retry-After in whole seconds; 405 an Allow header. Returns the parsed body
 * (undefined for streams and empty bodies).
 */
export async function checkAnswer(response: Response, what: string, method = "GET"): Promise<any> {
  const where = `${what} → ${response.status}`;
  expect(response.status, where).toBeLessThan(500);
  if (response.status === 101) return undefined;
  const type = response.headers.get("content-type") ?? "";
  if (response.status < 400) {
    if (type.startsWith("text/event-stream") || response.status === 204 || method === "HEAD" || method === "OPTIONS") {
      await response.body?.cancel();
      return undefined;
    }
    const text = await response.text();
    if (!type.startsWith("application/json")) return text; // static assets, none of them JSON
    return JSON.parse(text);
  }
  if (method === "HEAD") {
    await response.body?.cancel();
    return undefined;
  }
  expect(type, where).toMatch(/^application\/json/);
  const text = await response.text();
  let parsed: any;
  expect(() => (parsed = JSON.parse(text)), `${where}: ${text}`).not.toThrow();
  const { success, ...body } = parsed;
  if (success !== undefined) expect(success, where).toBe(false);
  expect(Object.keys(body), `${where}: ${text}`).toEqual(["error"]);
  expect(Object.keys(body.error).sort(), `${where}: ${text}`).toEqual(["code", "message"]);
  expect(KNOWN_CODES.has(body.error.code), `${where}: unknown code ${body.error.code}`).toBe(true);
  expect(ERROR_STATUS[body.error.code as keyof typeof ERROR_STATUS], `${where}: ${text}`).toBe(response.status);
  expect(typeof body.error.message === "string" && body.error.message.length > 0, where).toBe(true);
  if (response.status === 429 || response.status === 503) expect(response.headers.get("retry-after"), where).toMatch(/^[1-9]\d*$/);
  if (response.status === 405) expect(response.headers.get("allow"), where).toBeTruthy();
  return parsed;
}

/** Checks a WebSocket error frame: {type:"error", code, message, clientId?, retryAfter?}. */
export function checkErrorFrame(frame: any, what: string): void {
  expect(Object.keys(frame).every((k) => ["type", "code", "message", "clientId", "retryAfter"].includes(k)), `${what}: ${JSON.stringify(frame)}`).toBe(true);
  expect(KNOWN_CODES.has(frame.code), `${what}: ${JSON.stringify(frame)}`).toBe(true);
  expect(ERROR_STATUS[frame.code as keyof typeof ERROR_STATUS], `${what}: ${JSON.stringify(frame)}`).toBeLessThan(500);
  expect(typeof frame.message === "string" && frame.message.length > 0, what).toBe(true);
  if (frame.clientId !== undefined) expect(typeof frame.clientId, what).toBe("string");
  if (frame.retryAfter !== undefined) expect(Number.isInteger(frame.retryAfter) && frame.retryAfter >= 1, what).toBe(true);
}

// ---- the ledger: seqs the service acknowledged, per room ----

/**
 * Every seq a success answer named (201/202 envelopes, legacy messageIds,
 * acks), per room. At the end each room's status must show exactly these:
 * seq N with 1..N all acknowledged. An event stored for a rejected request
 * would show as a seq nobody was told about.
 */
export class Ledger {
  readonly #seqs = new Map<string, Set<number>>();

  add(room: string, seq: unknown): void {
    expect(Number.isInteger(seq) && (seq as number) >= 1, `${room}: acknowledged seq ${String(seq)}`).toBe(true);
    let set = this.#seqs.get(room);
    if (!set) this.#seqs.set(room, (set = new Set()));
    set.add(seq as number);
  }

  /** How many distinct events `room` acknowledged so far (its last seq, when it only had these). */
  count(room: string): number {
    return this.#seqs.get(room)?.size ?? 0;
  }

  /** Every room of `rooms` holds exactly the acknowledged seqs, no more. Returns how many events that is. */
  async verify(rooms: readonly string[]): Promise<number> {
    let events = 0;
    for (const room of rooms) {
      const acknowledged = this.#seqs.get(room) ?? new Set<number>();
      // The object's own status (rooms named "." or "..", valid ids, have no reachable URL: see docs/security.md).
      const status = await roomStub(room).status(room);
      expect(status.seq, `${room}: the room's seq against the ${acknowledged.size} acknowledged events`).toBe(acknowledged.size);
      for (let seq = 1; seq <= status.seq; seq++) expect(acknowledged.has(seq), `${room}: seq ${seq} stored but never acknowledged`).toBe(true);
      events += status.seq;
    }
    return events;
  }
}

// ---- arbitraries ----

export const isRoomId = (room: string) => ROOM_ID_PATTERN.test(room);

/** Lone surrogates replaced (what any URL or header would carry). */
export const wellFormed = (text: string): string => (text as unknown as { toWellFormed(): string }).toWellFormed();
/** encodeURIComponent that never throws (a lone surrogate becomes U+FFFD first). */
export const enc = (text: string): string => encodeURIComponent(wellFormed(text));

/** Text of every kind: ASCII, any code point (lone surrogates included), the room-id alphabet. */
export const anyText = (maxLength = 40) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: "binary", maxLength }),
    fc.string({ unit: fc.constantFrom(..."AZaz09_-=@,.;:/%?#&+ *\\\"'<>{}[]`~!$^|\u0000\u00e9\u2028\ud800"), maxLength }),
  );

/** Room ids: mostly near the contract's alphabet, valid and not. */
export const roomIdArb = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_\-=@,.;:]{1,164}$/),
  fc.string({ unit: fc.constantFrom(..."Az9_-=@,.;:*/ %é"), minLength: 0, maxLength: 170 }),
  anyText(200),
  fc.constantFrom("", "a".repeat(164), "a".repeat(165), "user:", "user:alice", ".", "..", "%", "%2F", "%E0%A4%A"),
);

/** A path segment from a room id: percent-encoded (the normal way) or raw (whatever the URL parser makes of it). */
export const segmentArb = fc.tuple(roomIdArb, fc.boolean()).map(([room, raw]) => (raw ? wellFormed(room) : enc(room)));

/** JSON values of every shape, and text that is almost JSON. */
export const jsonish = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: anyText(60) },
  { weight: 1, arbitrary: fc.constantFrom("", "{", "[]", "null", "{\"data\":", "\u0000", "{\"data\":{\"text\":\"x\"}}}", "1e999", "\"\\ud800\"") },
);

const SECRET = new TextEncoder().encode(env.JWT_SECRET!);
const WRONG_SECRET = new TextEncoder().encode("not-the-secret-0123456789abcdef!");
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

export interface TokenCase {
  token: string;
  /** Whether the service must accept it as a valid identity ("either": a mutation that may decode to the same token). */
  valid: boolean | "either";
  /** The sub, when valid. */
  sub?: string;
  /** Room grants, when valid. */
  rooms?: string[];
}

/** Claims that verify: a sub and well-typed optional claims. */
const goodClaims = fc.record(
  {
    sub: fc.oneof(fc.stringMatching(/^[a-z]{1,12}$/), fc.string({ minLength: 1, maxLength: 128 })),
    name: fc.string({ maxLength: 128 }),
    role: fc.string({ maxLength: 64 }),
    rooms: fc.array(fc.oneof(fc.constantFrom("*", "fz-*", "user:*"), fc.stringMatching(/^[a-z:-]{0,10}\*?$/)), { maxLength: 4 }),
    exp: fc.integer({ min: 60, max: 86_400 }).map((s) => Math.floor(Date.now() / 1000) + s),
  },
  { requiredKeys: ["sub"] },
);

/** Claims that must be refused: each breaks one rule. */
const badClaims = fc.oneof(
  goodClaims.map(({ sub, ...rest }) => ({ ...rest, _broken: sub })),
  goodClaims.map((c) => ({ ...c, sub: "" })),
  goodClaims.chain((c) => fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())).map((sub) => ({ ...c, sub }))),
  goodClaims.map((c) => ({ ...c, sub: "x".repeat(129) })),
  goodClaims.map((c) => ({ ...c, name: 42 })),
  goodClaims.map((c) => ({ ...c, role: "r".repeat(65) })),
  goodClaims.map((c) => ({ ...c, rooms: "*" })),
  goodClaims.map((c) => ({ ...c, rooms: [1, 2] })),
  goodClaims.map((c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 60 })),
  goodClaims.map((c) => ({ ...c, nbf: Math.floor(Date.now() / 1000) + 3600 })),
);

/** Tokens: valid ones with random claims, and every way of being invalid. */
export const tokenArb: fc.Arbitrary<() => Promise<TokenCase>> = fc.oneof(
  { weight: 6, arbitrary: goodClaims.map((claims) => async () => ({
    token: await new SignJWT(claims as Record<string, unknown>).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(SECRET),
    valid: true,
    sub: claims.sub,
    rooms: claims.rooms ?? [],
  })) },
  badClaims.map((claims) => async () => ({
    token: await new SignJWT(claims as Record<string, unknown>).setProtectedHeader({ alg: "HS256" }).sign(SECRET),
    valid: false,
  })),
  goodClaims.map((claims) => async () => ({ token: await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(WRONG_SECRET), valid: false })),
  fc.tuple(goodClaims, fc.constantFrom("HS384", "HS512")).map(([claims, alg]) => async () => ({
    token: await new SignJWT(claims).setProtectedHeader({ alg }).sign(SECRET),
    valid: false,
  })),
  goodClaims.map((claims) => async () => ({ token: `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`, valid: false })),
  fc.tuple(goodClaims, fc.nat(200), fc.string({ minLength: 1, maxLength: 3 })).map(([claims, at, junk]) => async (): Promise<TokenCase> => {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(SECRET);
    const i = at % token.length;
    const mutated = token.slice(0, i) + junk + token.slice(i + 1);
    // Base64url's last character carries spare bits: some mutations decode to the very same token.
    return { token: mutated, valid: mutated === token ? true : "either", sub: claims.sub, rooms: claims.rooms ?? [] };
  }),
  anyText(80).filter((t) => t.trim().length > 0).map((token) => async () => ({ token, valid: false })),
);

/** What a valid identity may reach (the user:<sub> inbox always). */
export function grants(token: TokenCase, room: string): boolean {
  if (token.valid === false) return false;
  if (room === `user:${token.sub}`) return true;
  return (token.rooms ?? []).some((g) => g === room || (g.endsWith("*") && room.startsWith(g.slice(0, -1))));
}
