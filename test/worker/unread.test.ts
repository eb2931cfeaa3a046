/**
 * Membership and unread counts (GET /me/unread): right after sends, reads and
 * inbox notifications, once the room has flushed to D1.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, notify, postJson, tokenFor } from "./helpers";

const flush = (room: string) => runDurableObjectAlarm(env.ROOMS.get(env.ROOMS.idFromName(room)));
const unread = async (token: string) => (await (await call("/me/unread", { headers: { authorization: `Bearer ${token}` } })).json()) as any;

describe("GET /me/unread", () => {
  it("counts others' messages above the user's last read, per room and in total", async () => {
    const alice = await tokenFor("ua-alice", { rooms: ["unread-*"] });
    const bob = await tokenFor("ua-bob", { rooms: ["unread-*"] });
    await postJson("/rooms/unread-a/messages", { data: { text: "hello" } }, alice); // alice becomes a member
    for (let i = 0; i < 3; i++) await postJson("/rooms/unread-a/messages", { data: { text: `b${i}` } }, bob);
    await postJson("/rooms/unread-b/messages", { data: { text: "elsewhere" } }, bob);
    await flush("unread-a");
    await flush("unread-b");

    let body = await unread(alice);
    expect(body.rooms).toContainEqual({ room: "unread-a", unread: 3, lastSeq: 4, lastRead: 0 });
    expect(body.rooms.find((r: any) => r.room === "unread-b")).toBeUndefined(); // never sent, read or notified there
    expect(body.rooms).toContainEqual({ room: "user:ua-alice", unread: 0, lastSeq: 0, lastRead: 0 });
    expect(body.total).toBe(3);

    const read = await postJson("/rooms/unread-a/read", { seq: 3 }, alice);
    expect(read.status).toBe(204);
    await flush("unread-a");
    body = await unread(alice);
    expect(body.rooms).toContainEqual({ room: "unread-a", unread: 1, lastSeq: 4, lastRead: 3 });
    expect(body.total).toBe(1);

    // Bob's own messages are never unread for him.
    const bobs = await unread(bob);
    expect(bobs.rooms).toContainEqual({ room: "unread-a", unread: 1, lastSeq: 4, lastRead: 0 });
  });

  it("counts notifications in the user's inbox room", async () => {
    const carol = await tokenFor("ua-carol", { rooms: [] });
    await notify("user:ua-carol", { event: "ticket_assigned", data: { ticket: 1 } });
    await notify("user:ua-carol", { event: "ticket_assigned", data: { ticket: 2 } });
    await flush("user:ua-carol");
    const body = await unread(carol);
    expect(body).toEqual({ total: 2, rooms: [{ room: "user:ua-carol", unread: 2, lastSeq: 2, lastRead: 0 }] });
  });

  it("leaves out rooms the token no longer grants, and needs a token", async () => {
    const wide = await tokenFor("ua-dave", { rooms: ["*"] });
    await postJson("/rooms/unread-secret/messages", { data: { text: "x" } }, wide);
    await flush("unread-secret");
    expect((await unread(wide)).rooms.map((r: any) => r.room)).toContain("unread-secret");
    const narrow = await tokenFor("ua-dave", { rooms: ["other"] });
    expect((await unread(narrow)).rooms.map((r: any) => r.room)).not.toContain("unread-secret");
    const anonymous = await call("/me/unread");
    expect(anonymous.status).toBe(401);
  });

  it("answers from one indexed query for a user in 1,000 rooms", async () => {
    // Seed D1 directly: 1,000 memberships with messages, as rooms would have flushed them.
    const user = "ua-many";
    const statements: D1PreparedStatement[] = [];
    for (let i = 0; i < 1000; i++) {
      const room = `many-${i}`;
      statements.push(env.DB.prepare("INSERT INTO rooms (room, last_seq, updated_at) VALUES (?, 2, 0)").bind(room));
      statements.push(env.DB.prepare("INSERT INTO members (user_id, room, last_read, updated_at) VALUES (?, ?, 1, 0)").bind(user, room));
      for (const seq of [1, 2]) {
        statements.push(
          env.DB.prepare("INSERT INTO messages (room, seq, id, event, from_id, from_name, data, ts, envelope) VALUES (?, ?, ?, 'message', 'someone', 'S', '{}', '', '{}')")
            .bind(room, seq, crypto.randomUUID()),
        );
      }
    }
    await env.DB.batch(statements);
    const body = await unread(await tokenFor(user, { rooms: ["many-*"] }));
    expect(body.rooms).toHaveLength(1001);
    expect(body.total).toBe(1000);
    const plan = await env.DB.prepare("EXPLAIN QUERY PLAN SELECT mb.room FROM members mb LEFT JOIN rooms r ON r.room = mb.room WHERE mb.user_id = ?").bind(user).all<any>();
    expect(plan.results.map((r) => r.detail).join("\n")).toMatch(/SEARCH mb USING PRIMARY KEY \(user_id=\?\)/);
  });
});
