/**
 * Issue 9 §5, property-based fuzzing of the HTTP surface with fast-check,
 * inside workerd: random requests through the Worker into the room objects.
 * For every case: never a 5xx and never a crash; every rejection in the
 * contract's error shape, with the status its code maps to; and, checked
 * against each room's status at the end, nothing stored for a rejected
 * request (the room's seq equals the number of events the service
 * acknowledged). Where the contract decides the answer exactly (tokens and
 * grants, room ids, query parameters) the property checks that answer too.
 *
 * Sample sizes and the seed: fuzz-support.ts (`npm run fuzz` for 100,000+).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { call, tokenFor } from "./helpers";
import {
  anyText,
  enc,
  checkAnswer,
  grants,
  isRoomId,
  jsonish,
  Ledger,
  Tally,
  params,
  report,
  roomIdArb,
  runsFor,
  segmentArb,
  timeoutFor,
  tokenArb,
  wellFormed,
} from "./fuzz-support";

const RUN = crypto.randomUUID().slice(0, 6);
/** The rooms requests may really reach; everything else is refused before a room is touched. */
const POOL = [`fz-${RUN}-a`, `fz-${RUN}-b`, `fz-${RUN}:c`];
const SESSIONS = [900_000_001, 900_000_002];
const SESSION_ROOMS = SESSIONS.map((s) => `chat-session:${s}`);
const ledger = new Ledger();
/** Rooms a success answer named, to verify at the end. */
const touched = new Set<string>([...POOL, ...SESSION_ROOMS]);

/** Pre-signed identities: members of the pool (and the legacy sessions), a user granted nothing. */
const users = ["fz-ann", "fz-ben", "fz-cy", "fz-di"];
let memberTokens: string[] = [];
let outsiderToken = "";

async function setup(): Promise<void> {
  if (memberTokens.length) return;
  memberTokens = await Promise.all(users.map((u) => tokenFor(u, { rooms: [`fz-${RUN}*`, "chat-session:*"] })));
  outsiderToken = await tokenFor("fz-outsider", { rooms: [] });
}

/** Records what a success answer of a creating route acknowledged (a page of history acknowledges nothing). */
function record(method: string, path: string, body: BodyInit | null, answer: any): void {
  if (method !== "POST" || !answer || typeof answer !== "object") return;
  const bare = path.split("?")[0]!;
  if (bare === "/api/chat/message" && answer.success === true) {
    const room = `chat-session:${JSON.parse(body as string).chat_session_id}`;
    touched.add(room);
    ledger.add(room, answer.messageId);
    return;
  }
  if (!/^\/rooms\/[^/]+\/(messages|notify)$|^\/notify$/.test(bare)) return;
  for (const message of answer.message ? [answer.message] : Array.isArray(answer.messages) ? answer.messages : []) {
    touched.add(message.room);
    ledger.add(message.room, message.seq);
  }
}

interface Sent {
  response?: Response;
  /** The request was still held (a long-poll) when we gave up waiting for it. */
  held: boolean;
}

/**
 * Sends a request. One that may be a long-poll (a GET whose query has `wait`
 * or `longPoll`) may be held for up to 25 s: it is given up (and aborted)
 * after `holdMs`. Any other request is awaited to its answer.
 */
async function send(path: string, init: RequestInit, holdMs = 1_000): Promise<Sent> {
  const query = path.split("?")[1] ?? "";
  if ((init.method ?? "GET") !== "GET" || !/(^|&)(wait|longPoll)=/.test(query)) return { response: await call(path, init), held: false };
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const held = new Promise<"held">((resolve) => (timer = setTimeout(() => resolve("held"), holdMs)));
  const answer = call(path, { ...init, signal: controller.signal });
  const first = await Promise.race([answer, held]);
  clearTimeout(timer);
  if (first === "held") {
    controller.abort();
    await answer.then((r) => r.body?.cancel(), () => {});
    return { held: true };
  }
  return { response: first, held: false };
}

/**
 * Headers, dropping any value a browser's Headers class would refuse or that
 * is not ASCII (workerd sends those as UTF-8, with a warning): that would be
 * the client's error, not the server's. Unicode reaches the server in paths,
 * queries and bodies instead.
 */
function headersFrom(entries: [string, string][]): Headers {
  const headers = new Headers();
  for (const [name, value] of entries) {
    if (/[^\t\x20-\x7e]/.test(value)) continue;
    try {
      headers.set(name, value);
    } catch {
      // not a valid header value: a real client could not send it either
    }
  }
  return headers;
}

/** A 101 is a live WebSocket: accept and close it so nothing is left open. */
function closeSocket(response: Response | undefined): void {
  const ws = response?.webSocket;
  if (!ws) return;
  ws.accept();
  ws.close(1000, "fuzz");
}

/** Counts an answer by status and error code; returns the answer. */
function tallied(tally: Tally, response: Response, answer: any): any {
  tally.add(answer?.error?.code ? `${response.status} ${answer.error.code}` : response.status);
  return answer;
}

// ---- arbitraries for requests ----

const methodArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("GET", "POST") }, { weight: 1, arbitrary: fc.constantFrom("DELETE", "PUT", "PATCH", "OPTIONS", "HEAD") });
const roomSegmentArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...POOL).map(enc) }, { weight: 2, arbitrary: segmentArb });
const sessionSegmentArb = fc.oneof(fc.constantFrom(...SESSIONS.map(String)), fc.constantFrom("0", "007", "-1", "1.5", "1e3", "x", "9".repeat(16), ""), anyText(12).map(enc));
const pathArb = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(roomSegmentArb, fc.constantFrom("ws", "events", "messages", "typing", "read", "presence", "notify", "status", "nope", "")).map(([room, leaf]) => `/rooms/${room}/${leaf}`) },
  { weight: 2, arbitrary: fc.constantFrom("/health", "/notify", "/me/unread", "/api/chat/message", "/dev/token", "/push/vapid-public-key", "/push/subscriptions", "/push/test", "/", "/rooms", "/rooms/", "/api/chat/messages/") },
  { weight: 1, arbitrary: sessionSegmentArb.map((s) => `/api/chat/messages/${s}`) },
  { weight: 1, arbitrary: fc.array(anyText(10).map(enc), { maxLength: 4 }).map((parts) => `/${parts.join("/")}`) },
);

const queryValueArb = fc.oneof(
  fc.nat(2000).map(String),
  fc.constantFrom("0", "-1", "1.5", "1e3", "", " 1", "0x10", "999999999999999", "9999999999999999", "NaN", "true", "false", "1", "25", "25.5", "0.001", "1000", "1001"),
  anyText(12),
);
const queryKeyArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("after", "before", "wait", "limit", "token", "lastMessageId", "longPoll") },
  { weight: 1, arbitrary: fc.constantFrom("constructor", "__proto__", "toString", "hasOwnProperty", "valueOf") },
  { weight: 1, arbitrary: anyText(6) },
);
const queryArb = fc.array(fc.tuple(queryKeyArb, queryValueArb), { maxLength: 4 }).map((pairs) => new URLSearchParams(pairs).toString());

type AuthKind = "member" | "outsider" | "notify" | "none" | "junk";
const authArb = fc.tuple(fc.constantFrom<AuthKind>("member", "member", "member", "outsider", "notify", "none", "junk"), fc.nat(users.length - 1), anyText(30), fc.boolean());

const contentTypeArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant("application/json") },
  { weight: 2, arbitrary: fc.constantFrom("application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "", "application/jsonx", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded") },
);

const textArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 2, arbitrary: anyText(30) },
  { weight: 1, arbitrary: fc.constantFrom("", "x".repeat(17_000)) },
);
const dataArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ text: textArb }) },
  { weight: 1, arbitrary: fc.record({ text: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.dictionary(anyText(8), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).map((d) => ({ ...d, text: "hi" })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const idArb = fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) }, { weight: 1, arbitrary: anyText(20) }, { weight: 1, arbitrary: fc.constant("k".repeat(129)) }, { weight: 1, arbitrary: fc.integer() });
const eventNameArb = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9_\-.:]{1,64}$/) }, { weight: 1, arbitrary: fc.constant("message") }, { weight: 1, arbitrary: anyText(70) });
const pushArb = fc.oneof(fc.constant(false), fc.constant(true), fc.record({ title: anyText(20), body: anyText(20), url: anyText(20) }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 }));
const notifyFields = fc.record(
  {
    event: eventNameArb,
    data: dataArb,
    from: fc.oneof({ weight: 4, arbitrary: fc.record({ id: idArb, name: anyText(20) }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
    idempotencyKey: idArb,
    push: pushArb,
  },
  { requiredKeys: ["event", "data"] },
);
/** Body shapes by route, close to valid so the checks behind the schema are reached too. */
const sendShaped = fc.oneof(fc.record({ data: dataArb, clientId: idArb }, { requiredKeys: ["data"] }), fc.record({ data: dataArb, clientId: idArb }, { requiredKeys: [] }));
const notifyShaped = fc.oneof(
  { weight: 4, arbitrary: notifyFields },
  { weight: 1, arbitrary: fc.tuple(notifyFields, fc.jsonValue({ maxDepth: 1 })).map(([fields, junk]) => ({ ...fields, [String(junk)]: junk })) },
);
const batchShaped = fc
  .tuple(notifyFields, fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...POOL) }, { weight: 1, arbitrary: roomIdArb }), { maxLength: 5 }))
  .map(([fields, rooms]) => ({ ...fields, rooms }));
const readShaped = fc.record({ seq: fc.oneof(fc.nat(40), fc.integer(), fc.double(), fc.string()) }, { requiredKeys: [] });
const legacyShaped = fc.record(
  { chat_session_id: fc.oneof(fc.constantFrom(...SESSIONS), fc.constantFrom(...SESSIONS.map(String)), fc.constantFrom(-1, 1.5, "007", "x", null)), message: textArb },
  { requiredKeys: [] },
);
const devTokenShaped = fc.record({ user: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_\-.@]{1,64}$/), anyText(10)), name: anyText(70) }, { requiredKeys: [] });
const pushShaped = fc.record(
  {
    subscription: fc.record({ endpoint: fc.oneof(fc.webUrl(), anyText(20)), keys: fc.record({ p256dh: anyText(20), auth: anyText(10) }) }, { requiredKeys: [] }),
    endpoint: fc.oneof(fc.webUrl(), anyText(20)),
  },
  { requiredKeys: [] },
);
const bodyObjectArb = fc.oneof(sendShaped, notifyShaped, batchShaped, readShaped, legacyShaped, devTokenShaped, pushShaped);
/** The shaped body for a route (bodies property), by the route's last path segment. */
const shapedFor = (path: string): fc.Arbitrary<unknown> =>
  path.endsWith("/messages") ? sendShaped
  : path === "/notify" ? batchShaped
  : path.endsWith("/notify") ? notifyShaped
  : path.endsWith("/read") ? readShaped
  : path === "/api/chat/message" ? legacyShaped
  : path.startsWith("/push/") ? pushShaped
  : bodyObjectArb;
const bodyArb: fc.Arbitrary<BodyInit | null> = fc.oneof(
  { weight: 6, arbitrary: bodyObjectArb.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: jsonish },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom<BodyInit | null>(null, "x".repeat(70_000), `{"data":{"text":"${"y".repeat(70_000)}"}}`) },
);

function authHeader([kind, i, junk]: [AuthKind, number, string, boolean]): string | undefined {
  switch (kind) {
    case "member":
      return `Bearer ${memberTokens[i]}`;
    case "outsider":
      return `Bearer ${outsiderToken}`;
    case "notify":
      return `Bearer ${env.NOTIFY_SECRET}`;
    case "junk":
      return junk;
    case "none":
      return undefined;
  }
}

const describeBody = (body: BodyInit | null) => (typeof body === "string" ? body.slice(0, 300) : body === null ? "<none>" : "<bytes>");

// ---- the contract's verdict on a query (GET …/messages, /events, /ws) ----

const SEQ = /^\d{1,15}$/;
function queryVerdict(route: "messages" | "events" | "ws", pairs: [string, string][], lastEventId: string | null): "ok" | "invalid_query" {
  const seen = new Map<string, string>();
  for (const [key, value] of pairs) {
    if (seen.has(key)) return "invalid_query"; // any parameter given twice
    seen.set(key, value);
  }
  const after = seen.get("after");
  const before = seen.get("before");
  const wait = seen.get("wait");
  const limit = seen.get("limit");
  if (after !== undefined && !SEQ.test(after)) return "invalid_query";
  if (before !== undefined && (!SEQ.test(before) || Number(before) < 1)) return "invalid_query";
  if (wait !== undefined && !/^\d{1,6}(\.\d+)?$/.test(wait)) return "invalid_query";
  if (limit !== undefined && (!/^\d{1,6}$/.test(limit) || Number(limit) < 1)) return "invalid_query";
  if (route === "messages" && limit !== undefined && Number(limit) > 1000) return "invalid_query";
  if (route === "messages" && wait !== undefined && Number(wait) > 0 && after === undefined) return "invalid_query";
  if (route === "events" && lastEventId !== null && lastEventId !== "" && !SEQ.test(lastEventId)) return "invalid_query";
  return "ok";
}

// ---- properties ----

describe("fuzzing the HTTP surface", () => {
  afterAll(async () => {
    const events = await ledger.verify([...touched]);
    console.info(`fuzz ledger: ${touched.size} rooms checked, ${events} acknowledged events, none stored unacknowledged`);
  }, 300_000);

  it("any route, method, query, header and body: no 5xx, errors in the contract's shape", { timeout: timeoutFor(runsFor("routes")) }, async () => {
    await setup();
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    const upgradeArb = fc.constantFrom(undefined, undefined, "websocket", "h2c");
    const originArb = fc.constantFrom(undefined, undefined, "https://app.example", "https://evil.example");
    await fc.assert(
      fc.asyncProperty(methodArb, pathArb, queryArb, authArb, contentTypeArb, bodyArb, upgradeArb, originArb, async (method, path, query, auth, contentType, body, upgrade, origin) => {
        cases++;
        const header = authHeader(auth);
        const inQuery = header !== undefined && auth[3];
        const entries: [string, string][] = [];
        if (header !== undefined && !inQuery) entries.push(["authorization", header]);
        if (contentType) entries.push(["content-type", contentType]);
        // workerd turns any request carrying Upgrade: websocket into a GET (a handshake is always a GET), so only GETs carry it.
        if (upgrade && method === "GET") entries.push(["upgrade", upgrade]);
        if (origin) entries.push(["origin", origin]);
        const tokenQuery = inQuery ? `${new URLSearchParams({ token: header!.replace(/^Bearer /, "") })}&` : "";
        const target = `${path}?${tokenQuery}${query}`;
        const withBody = method !== "GET" && method !== "HEAD";
        const { response, held } = await send(target, { method, headers: headersFrom(entries), body: withBody ? body : null });
        const what = `${method} ${target} ${withBody ? describeBody(body) : ""}`;
        if (held) {
          tally.add("held");
          // Only a valid long-poll may be held: GET …/messages or the legacy poll.
          expect(method, what).toBe("GET");
          expect(path, what).toMatch(/^\/rooms\/[^/]+\/messages$|^\/api\/chat\/messages\//);
          return;
        }
        closeSocket(response);
        record(method, path, body, tallied(tally, response!, await checkAnswer(response!, what, method)));
      }),
      params(runsFor("routes")),
    );
    report("routes", cases, started, tally);
  });

  it("tokens: only a well-formed HS256 token signed with JWT_SECRET reaches a room, and only a granted one", { timeout: timeoutFor(runsFor("tokens")) }, async () => {
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(tokenArb, fc.nat(3), fc.constantFrom("header", "query", "lowercase", "both"), fc.boolean(), async (makeToken, pick, placement, post) => {
        cases++;
        const token = await makeToken();
        const room = [POOL[0]!, `user:${token.sub ?? "nobody"}`, "somewhere-else", POOL[1]!][pick]!;
        const entries: [string, string][] = [["content-type", "application/json"]];
        if (placement !== "query") entries.push(["authorization", `${placement === "lowercase" ? "bearer" : "Bearer"} ${token.token}`]);
        const headers = headersFrom(entries);
        if (placement !== "query" && !headers.has("authorization")) return; // no client could send this header
        // "both": the header wins, so a junk token in the query must not matter.
        const query = placement === "query" ? `?${new URLSearchParams({ token: token.token })}` : placement === "both" ? "?token=junk" : "";
        const presented = placement === "query" ? new URL(`https://x/${query}`).searchParams.get("token")! : headers.get("authorization")!.replace(/^bearer\s+/i, "").trim();
        const path = `/rooms/${enc(room)}/${post ? "messages" : "presence"}${query}`;
        const response = await call(path, { method: post ? "POST" : "GET", headers, body: post ? JSON.stringify({ data: { text: "fuzz" } }) : null });
        const answer = tallied(tally, response, await checkAnswer(response, `${post ? "POST" : "GET"} ${path} (${placement})`, post ? "POST" : "GET"));
        if (post) record("POST", path, null, answer);
        const what = `${JSON.stringify(token.token)} (${placement}, valid ${token.valid}) for ${room}: ${response.status} ${JSON.stringify(answer)}`;
        const validOutcome = grants(token, room) ? [200, 201, 429] : [403];
        if (!isRoomId(room)) expect(answer.error.code, what).toBe("invalid_room");
        else if (token.valid === true || (token.valid === "either" && response.status !== 401)) expect(validOutcome, what).toContain(response.status);
        else {
          expect(response.status, what).toBe(401);
          expect(answer.error.code, what).toBe(presented === "" ? "missing_token" : "invalid_token");
        }
      }),
      params(runsFor("tokens")),
    );
    report("tokens", cases, started, tally);
  });

  it("query strings: each parameter is taken or refused exactly as the contract says", { timeout: timeoutFor(runsFor("queries")) }, async () => {
    await setup();
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    const pairsArb = fc.array(fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.constantFrom("after", "before", "wait", "limit") }, { weight: 1, arbitrary: queryKeyArb }), queryValueArb), { maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<"messages" | "events" | "ws">("messages", "events", "ws"), fc.constantFrom(...POOL), pairsArb, fc.option(queryValueArb), async (route, room, pairs, lastEventId) => {
        cases++;
        const query = new URLSearchParams(pairs).toString();
        const entries: [string, string][] = [["authorization", `Bearer ${memberTokens[0]}`]];
        if (route === "ws") entries.push(["upgrade", "websocket"]);
        if (route === "events" && lastEventId !== null) entries.push(["last-event-id", lastEventId]);
        const headers = headersFrom(entries);
        const path = `/rooms/${enc(room)}/${route}?${query}`;
        // What the server sees: URLSearchParams' parse of the query, the Last-Event-ID the Headers class kept.
        const expected = queryVerdict(route, [...new URLSearchParams(query)] as [string, string][], headers.get("last-event-id"));
        const { response, held } = await send(path, { headers });
        if (held) {
          tally.add("held");
          expect({ route, expected }, `${path} was held`).toEqual({ route: "messages", expected: "ok" });
          return;
        }
        closeSocket(response);
        const answer = tallied(tally, response!, await checkAnswer(response!, path));
        if (expected === "ok") expect(response!.status, `${path} → ${JSON.stringify(answer)}`).toBe(route === "ws" ? 101 : 200);
        else expect(answer?.error?.code, `${path} → ${response!.status}`).toBe("invalid_query");
      }),
      params(runsFor("queries")),
    );
    report("queries", cases, started, tally);
  });

  it("JSON bodies on every route that takes one: no 5xx, errors in shape, accepted events acknowledged", { timeout: timeoutFor(runsFor("bodies")) }, async () => {
    await setup();
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    const routes = [
      ...POOL.flatMap((room) => ["messages", "notify", "read", "typing"].map((leaf) => `/rooms/${enc(room)}/${leaf}`)),
      "/notify",
      "/api/chat/message",
      "/push/subscriptions",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes).chain((path) => fc.tuple(fc.constant(path), fc.oneof({ weight: 3, arbitrary: shapedFor(path).map((b): BodyInit => JSON.stringify(b)) }, { weight: 1, arbitrary: bodyArb }))),
        fc.nat(users.length - 1),
        contentTypeArb,
        async ([path, body], user, contentType) => {
        cases++;
        const bearer = path.endsWith("/notify") ? env.NOTIFY_SECRET! : memberTokens[user]!;
        const headers = headersFrom(contentType ? [["content-type", contentType], ["authorization", `Bearer ${bearer}`]] : [["authorization", `Bearer ${bearer}`]]);
        const response = await call(path, { method: "POST", headers, body });
        record("POST", path, body, tallied(tally, response, await checkAnswer(response, `POST ${path} ${describeBody(body)}`, "POST")));
      }),
      params(runsFor("bodies")),
    );
    report("bodies", cases, started, tally);
  });

  it("room ids: refused with 400 invalid_room exactly when the decoded id breaks the pattern", { timeout: timeoutFor(runsFor("roomIds")) }, async () => {
    await setup();
    const everyRoom = await tokenFor("fz-everywhere", { rooms: ["*"] });
    let cases = 0;
    const tally = new Tally();
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(roomIdArb, fc.constantFrom("ws", "events", "messages", "typing", "read", "presence", "notify", "status"), fc.boolean(), async (room, leaf, postMessages) => {
        cases++;
        // Each request fails after the room id (wrong secret, a room not granted, a bad query or body),
        // so a valid id is refused for something else and no room object is created.
        const post = ["typing", "read", "notify"].includes(leaf) || (leaf === "messages" && postMessages);
        const bearer = leaf === "notify" || leaf === "status" ? "not-the-notify-secret" : leaf === "typing" || leaf === "presence" ? outsiderToken : everyRoom;
        const headers = headersFrom([["authorization", `Bearer ${bearer}`], ["content-type", "text/plain"], ...(leaf === "ws" ? [["upgrade", "websocket"] as [string, string]] : [])]);
        const path = `/rooms/${enc(room)}/${leaf}?after=x`;
        const response = await call(path, { method: post ? "POST" : "GET", headers, body: post ? "{}" : null });
        const answer = tallied(tally, response, await checkAnswer(response, path, post ? "POST" : "GET"));
        const id = wellFormed(room);
        const what = `${path} → ${response.status} ${JSON.stringify(answer)}`;
        if (id === "") expect(answer?.error?.code, what).toBe("not_found"); // /rooms//leaf is no route
        else if (id === "." || id === "..") expect(response.status, what).toBeLessThan(500); // dot segments: the URL parser rewrites the path
        else if (!isRoomId(id)) expect(answer?.error?.code, what).toBe("invalid_room");
        else expect(["invalid_query", "invalid_token", "forbidden_room", "unsupported_media_type"], what).toContain(answer?.error?.code);
      }),
      params(runsFor("roomIds")),
    );
    report("room ids", cases, started, tally);
  });
});
