/**
 * Issue 9 §5, property-based fuzzing of WebSocket frames with fast-check,
 * inside workerd. Random frames (JSON of every shape, near-valid client
 * frames, text, binary, oversized, deeply nested) go to hibernatable sockets
 * of one room, each followed by a {"type":"ping"} whose pong marks the end of
 * the server's answer. For every frame:
 *
 *   - the socket stays open and the room keeps answering (no crash);
 *   - the answer is what a small independent model of the contract says:
 *     an ack (or rate_limited / payload_too_large) for a valid send, an
 *     invalid_body or payload_too_large error for anything malformed,
 *     nothing for typing, nothing or a read signal for a valid receipt;
 *   - every error frame has the contract's shape;
 *   - at the end the room's seq is exactly the number of acknowledged sends.
 *
 * Sample sizes and the seed: fuzz-support.ts (`npm run fuzz` for 100,000+).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, tokenFor } from "./helpers";
import { anyText, checkErrorFrame, jsonish, Ledger, params, report, runsFor, Tally, timeoutFor } from "./fuzz-support";

const ROOM = `fz-ws-${crypto.randomUUID().slice(0, 6)}`;
const MAX_BYTES = Number(env.MAX_MESSAGE_BYTES ?? 16384);
/** Frames longer than this are refused before parsing (objects/ChatRoom.ts). */
const FRAME_CAP = 4 * MAX_BYTES + 4096;
const ledger = new Ledger();
/** user → clientId → the seq its first accepted send got (a retry is answered with it). */
const accepted = new Map<string, Map<string, number>>();

/**
 * A socket whose frames are collected. To know the server has answered a
 * frame, `sync` sends a marker the server must refuse, naming a fresh
 * clientId: its error frame comes after every answer to what was sent before.
 * (A ping cannot be the marker: the fuzz sends pings too.)
 */
class FuzzSocket {
  frames: any[] = [];
  closed?: { code: number; reason: string };
  #marker?: string;
  #waiting?: () => void;

  constructor(
    readonly user: string,
    readonly ws: WebSocket,
  ) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const data = typeof event.data === "string" ? event.data : "<binary>";
      let frame: any = data;
      if (data.startsWith("{")) frame = JSON.parse(data);
      if (frame?.type === "error" && frame.clientId === this.#marker && this.#waiting) {
        const done = this.#waiting;
        this.#waiting = undefined;
        done();
        return;
      }
      this.frames.push(frame);
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.#waiting?.();
    });
  }

  static async open(user: string): Promise<FuzzSocket> {
    const token = await tokenFor(user, { rooms: ["fz-ws-*"] });
    const response = await call(`/rooms/${ROOM}/ws?token=${token}`, { headers: { upgrade: "websocket" } });
    expect(response.status).toBe(101);
    return new FuzzSocket(user, response.webSocket!);
  }

  /** Resolves with every frame that arrived before the answer to a fresh marker. */
  async sync(): Promise<any[]> {
    this.#marker = `sync-${crypto.randomUUID()}`;
    const answered = new Promise<void>((resolve) => (this.#waiting = resolve));
    this.ws.send(JSON.stringify({ type: "sync-marker", clientId: this.#marker }));
    await answered;
    return this.frames.splice(0);
  }
}

type Expectation =
  | { kind: "send"; clientId?: string; tooLarge: boolean }
  | { kind: "invalid"; clientId?: string }
  | { kind: "too_large" }
  | { kind: "silent" }
  | { kind: "read"; seq: number }
  | { kind: "pong-json" }
  | { kind: "pong-text" };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The contract's answer to one client frame, decided without the server's code. */
function expectationFor(frame: string | Uint8Array): Expectation {
  if (typeof frame !== "string") return { kind: "invalid" };
  if (frame === "ping") return { kind: "pong-text" };
  if (frame.length > FRAME_CAP) return { kind: "too_large" };
  let json: unknown;
  try {
    json = JSON.parse(frame);
  } catch {
    return { kind: "invalid" };
  }
  const clientId = isObject(json) && typeof json.clientId === "string" && json.clientId !== "" ? json.clientId : undefined;
  if (!isObject(json)) return { kind: "invalid" };
  switch (json.type) {
    case "send": {
      const { data } = json;
      const cid = json.clientId;
      const validId = cid === undefined || (typeof cid === "string" && cid.length >= 1 && cid.length <= 128);
      if (!isObject(data) || typeof data.text !== "string" || data.text.length === 0 || !validId) return { kind: "invalid", clientId };
      return { kind: "send", clientId: cid as string | undefined, tooLarge: new TextEncoder().encode(JSON.stringify(data)).byteLength > MAX_BYTES };
    }
    case "typing":
      return { kind: "silent" };
    case "read":
      return typeof json.seq === "number" && Number.isInteger(json.seq) && json.seq >= 0 ? { kind: "read", seq: json.seq } : { kind: "invalid" };
    case "ping":
      return { kind: "pong-json" };
    case "ack": // flow control (docs/api.md): no answer
      return typeof json.seq === "number" && Number.isInteger(json.seq) && json.seq >= 0 ? { kind: "silent" } : { kind: "invalid" };
    default:
      return { kind: "invalid", clientId };
  }
}

// ---- arbitraries ----

const textArb = fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) }, { weight: 1, arbitrary: anyText(20) }, { weight: 1, arbitrary: fc.constantFrom("", "x".repeat(MAX_BYTES + 10)) });
const clientFrameArb = fc.record(
  {
    type: fc.oneof({ weight: 8, arbitrary: fc.constantFrom("send", "send", "typing", "read", "ping") }, { weight: 1, arbitrary: anyText(8) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 0 }) }),
    data: fc.oneof({ weight: 6, arbitrary: fc.record({ text: textArb }) }, { weight: 1, arbitrary: fc.dictionary(anyText(6), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
    clientId: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: anyText(10) }, { weight: 1, arbitrary: fc.constantFrom("", "c".repeat(129), null, 7) }),
    seq: fc.oneof(fc.nat(50), fc.integer(), fc.double(), fc.string({ maxLength: 3 })),
  },
  { requiredKeys: ["type"] },
);
/** Sends, mostly valid: the checks behind the schema (size, rate, idempotency) get their share. */
const sendFrameArb = fc.record(
  {
    type: fc.constant("send"),
    data: fc.oneof({ weight: 8, arbitrary: fc.record({ text: textArb }) }, { weight: 1, arbitrary: fc.dictionary(anyText(6), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }).map((d) => ({ ...d, text: "t" })) }),
    clientId: fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 6 }) }, { weight: 1, arbitrary: anyText(10) }, { weight: 1, arbitrary: fc.constantFrom("", "c".repeat(128), "c".repeat(129)) }),
  },
  { requiredKeys: ["type", "data"] },
);
const frameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: sendFrameArb.map((f) => JSON.stringify(f)) },
  { weight: 5, arbitrary: clientFrameArb.map((f) => JSON.stringify(f)) },
  { weight: 2, arbitrary: jsonish },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "ping",
      "pong",
      "x".repeat(FRAME_CAP + 1),
      `{"type":"send","data":{"text":"${"y".repeat(FRAME_CAP)}"}}`,
      `${"[".repeat(5_000)}${"]".repeat(5_000)}`,
      `{"type":"send","data":${"{\"a\":".repeat(2_000)}1${"}".repeat(2_000)}}`,
      '{"type":"send","data":{"text":"hi","__proto__":{"text":""}}}',
      '{"type":"read","seq":1e400}',
      '{"type":"send","data":{"text":"\\ud800"}}',
    ),
  },
);

describe("fuzzing WebSocket frames", () => {
  const sockets: FuzzSocket[] = [];

  beforeAll(async () => {
    for (const user of ["fz-wa", "fz-wb", "fz-wc"]) sockets.push(await FuzzSocket.open(user));
    for (const socket of sockets) await socket.sync();
  });

  afterAll(() => {
    for (const socket of sockets) if (!socket.closed) socket.ws.close(1000, "done");
  });

  it("any frame: the socket stays open, the answer is the contract's, nothing stored for a refused frame", { timeout: timeoutFor(runsFor("frames")) }, async () => {
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(fc.nat(sockets.length - 1), frameArb, async (which, frame) => {
        cases++;
        const socket = sockets[which]!;
        const expected = expectationFor(frame);
        const lastSeq = ledger.count(ROOM);
        socket.ws.send(frame);
        const answer = await socket.sync();
        const what = `${JSON.stringify(typeof frame === "string" ? frame.slice(0, 300) : "<binary>")} → ${JSON.stringify(answer).slice(0, 500)}`;
        expect(socket.closed, what).toBeUndefined();
        // Frames meant for this socket alone; broadcasts (messages, signals) are the room's business.
        const own = answer.filter((f) => f === "pong" || f?.type === "ack" || f?.type === "error" || f?.type === "pong");
        for (const f of own) if (f?.type === "error") checkErrorFrame(f, what);
        tally.add(own.map((f) => (typeof f === "string" ? f : f.type === "error" ? f.code : f.type)).join("+") || "nothing");
        switch (expected.kind) {
          case "send": {
            expect(own.length, what).toBe(1);
            const [reply] = own;
            const mine = accepted.get(socket.user) ?? accepted.set(socket.user, new Map()).get(socket.user)!;
            const earlier = expected.clientId === undefined ? undefined : mine.get(expected.clientId);
            if (earlier !== undefined) expect(reply, `${what} (a retry of seq ${earlier})`).toMatchObject({ type: "ack", clientId: expected.clientId, seq: earlier });
            else if (expected.tooLarge) expect(reply, what).toMatchObject({ type: "error", code: "payload_too_large" });
            else if (reply.type === "error") expect(reply.code, what).toBe("rate_limited");
            else {
              expect(reply, what).toMatchObject({ type: "ack", seq: expect.any(Number), id: expect.any(String) });
              expect(reply.clientId, what).toBe(expected.clientId);
              expect(reply.seq, `${what}: a new event gets the next seq`).toBe(lastSeq + 1);
              ledger.add(ROOM, reply.seq);
              if (expected.clientId !== undefined) mine.set(expected.clientId, reply.seq);
            }
            if (reply.type === "error") expect(reply.clientId, what).toBe(expected.clientId);
            break;
          }
          case "invalid":
            expect(own, what).toEqual([expect.objectContaining({ type: "error", code: "invalid_body" })]);
            if (expected.clientId !== undefined) expect(own[0].clientId, what).toBe(expected.clientId);
            break;
          case "too_large":
            expect(own, what).toEqual([expect.objectContaining({ type: "error", code: "payload_too_large" })]);
            break;
          case "silent":
            expect(own, what).toEqual([]);
            break;
          case "read":
            if (expected.seq > lastSeq) expect(own, what).toEqual([expect.objectContaining({ type: "error", code: "invalid_body" })]);
            else expect(own, what).toEqual([]);
            break;
          case "pong-json":
            expect(own, what).toEqual([{ type: "pong" }]);
            break;
          case "pong-text":
            expect(own, what).toEqual(["pong"]);
            break;
        }
        // The other sockets only collect broadcasts; they must stay open too.
        for (const other of sockets) {
          expect(other.closed, `${other.user}'s socket after ${what}`).toBeUndefined();
          if (other !== socket) other.frames.length = 0;
        }
      }),
      params(runsFor("frames")),
    );
    const events = await ledger.verify([ROOM]);
    report("frames", cases, started, tally);
    console.info(`fuzz frames ledger: ${events} acknowledged sends, room seq ${events}, none stored unacknowledged`);
  });
});
