/** Assertions and room helpers shared by the issue-2 suites (on top of ./helpers). */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, notify } from "./helpers";

/** A room name no other test uses (D1 and object storage are shared across files). */
export function uniqueRoom(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export function roomStub(room: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(room));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export const seqsOf = (list: { seq: number }[]) => list.map((e) => e.seq);

/** GET with a Bearer token. */
export function get(path: string, token?: string, headers: Record<string, string> = {}): Promise<Response> {
  return call(path, { headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers });
}

/**
 * Asserts the contract's error: the status, a JSON body that is exactly
 * {"error":{"code","message"}} with a non-empty human message, and the code
 * (legacy routes may also carry `success: false`).
 */
export async function expectError(response: Response, status: number, code: string): Promise<string> {
  const text = await response.text();
  expect({ status: response.status, text }).toMatchObject({ status });
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const { success, ...body } = JSON.parse(text);
  // The legacy polling API (SPEC §9) adds `success: false` for its old clients; nothing else may be added.
  if (success !== undefined) expect(success).toBe(false);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message"]);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.message as string;
}

export interface RoomStatus {
  seq: number;
  trimmedSeq: number;
  subscribers: number;
  outbox: { pending: number; pendingMembers?: number; flushedSeq: number; consecutiveFailures: number; lastError?: string };
}

/** The operator status route (NOTIFY_SECRET). */
export async function roomStatus(room: string): Promise<RoomStatus> {
  const response = await get(`/rooms/${encodeURIComponent(room)}/status`, env.NOTIFY_SECRET);
  expect(response.status).toBe(200);
  return response.json();
}

/**
 * Re-checks state that has no event to await (a room's subscriber count, D1 rows) until `check`
 * holds. The deadline is a safety net for a loaded machine, not a timing claim.
 */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await scheduler.wait(10);
  }
}

/** Waits for the room to hold `n` subscribers (streams, sockets, held long-polls). */
export function untilSubscribers(room: string, n: number): Promise<void> {
  return eventually(async () => (await roomStatus(room)).subscribers === n, `room ${room} to hold ${n} subscriber(s)`);
}

/**
 * Drives the room's alarm until its D1 outbox is empty. The alarm may also
 * fire by itself (D1_FLUSH_DELAY_MS is 10 ms in tests), so this runs it
 * until the status says nothing is pending, within a bounded number of turns.
 */
export async function flushRoom(room: string): Promise<RoomStatus> {
  const stub = roomStub(room);
  for (let turn = 0; turn < 100; turn++) {
    await runDurableObjectAlarm(stub);
    const status = await roomStatus(room);
    if (status.outbox.pending === 0 && !status.outbox.pendingMembers && status.outbox.consecutiveFailures === 0) return status;
    await scheduler.wait(5); // an alarm started by the runtime is still writing
  }
  throw new Error(`room ${room}: outbox did not drain`);
}

/** Publishes `count` server events to a room, one after another, returning their envelopes. */
export async function seedEvents(room: string, count: number, event = "seeded"): Promise<any[]> {
  const out: any[] = [];
  for (let i = 0; i < count; i++) {
    const response = await notify(room, { event, data: { n: out.length + 1 } });
    expect(response.status).toBe(202);
    out.push(((await response.json()) as any).message);
  }
  return out;
}

export interface D1Row {
  seq: number;
  id: string;
  event: string;
  from_id: string | null;
  from_name: string | null;
  from_role: string | null;
  data: string;
  client_id: string | null;
  envelope: string;
}

export async function d1Messages(room: string): Promise<D1Row[]> {
  const { results } = await env.DB.prepare("SELECT seq, id, event, from_id, from_name, from_role, data, client_id, envelope FROM messages WHERE room = ? ORDER BY seq")
    .bind(room)
    .all<D1Row>();
  return results;
}

export async function d1LastSeq(room: string): Promise<number | null> {
  const row = await env.DB.prepare("SELECT last_seq FROM rooms WHERE room = ?").bind(room).first<{ last_seq: number }>();
  return row?.last_seq ?? null;
}
