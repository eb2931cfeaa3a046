/**
 * The client library across a server crash: a real `wrangler dev` is
 * SIGKILLed and restarted over the same state and port while clients on
 * every transport are connected and sending. They reconnect by themselves,
 * resume from their last seq, and their queued sends are stored once each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenFor } from "./clients";
import { DevServer } from "./server";
import { attemptFailed, eventually, expectGapFree, open, waitConnected, type Recorded } from "./client-helpers";

let server: DevServer;
const clients: Recorded[] = [];

beforeAll(async () => {
  server = await DevServer.start();
});

afterAll(async () => {
  for (const c of clients) c.room.close();
  await server?.stop();
});

describe("client library across a server restart", () => {
  it("reconnects, resumes on every transport and delivers sends queued while the server was down exactly once", async () => {
    const room = `client-restart-${Date.now()}`;
    const ws = open(server.url, room, { token: await tokenFor("on-ws") });
    const sse = open(server.url, room, { token: await tokenFor("on-sse"), transports: ["sse"] });
    const poll = open(server.url, room, { token: await tokenFor("on-poll"), transports: ["longpoll"] });
    const all = [ws, sse, poll];
    clients.push(...all);
    await waitConnected(ws, "websocket");
    await waitConnected(sse, "sse");
    await waitConnected(poll, "longpoll");

    for (const text of ["before 1", "before 2", "before 3"]) await ws.room.send(text);
    for (const c of all) await eventually(() => c.messages.length === 3, `${c.room.user?.id} has the first 3`);

    await server.crash();
    for (const c of all) await eventually(() => c.room.status.state !== "connected", `${c.room.user?.id} notices the crash`);

    // Sent while nothing is listening: each waits in its client's outbox.
    const marks = all.map((c) => c.statuses.length);
    const queued = [ws.room.send("while down (ws)"), sse.room.send("while down (sse)"), poll.room.send("while down (poll)")];
    // Each client has tried the server again, and failed, since: the send is still waiting, not lost or failed.
    await Promise.all(all.map((c, i) => attemptFailed(c, marks[i]!, `${c.room.user?.id} while the server is down`)));
    for (const c of all) expect(c.room.pendingSends).toBe(1);

    server = await server.restart();
    const acks = await Promise.all(queued);
    expect(acks.map((a) => a.seq).sort()).toEqual([4, 5, 6]);
    await ws.room.send("after restart");

    for (const c of all) {
      await eventually(() => c.messages.length === 7, `${c.room.user?.id} has all 7`, 30_000);
      expect(c.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expectGapFree(c.seqs());
      expect(c.statuses.some((s) => s.state === "reconnecting")).toBe(true);
    }
    // A server that was down is not a blocked transport: the WebSocket client came back on WebSocket.
    await waitConnected(ws, "websocket");
    await waitConnected(sse, "sse");
    await waitConnected(poll, "longpoll");

    const page = await ws.room.history({ limit: 100 });
    const texts = page.messages.map((m) => m.data.text);
    expect(texts).toHaveLength(7);
    expect(new Set(texts).size).toBe(7);
    expect(texts.slice(0, 3)).toEqual(["before 1", "before 2", "before 3"]);
    expect(texts[6]).toBe("after restart");
  }, 120_000);
});
