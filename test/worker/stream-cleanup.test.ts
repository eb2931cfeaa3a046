/**
 * Streams whose client goes away are removed at once: the SSE writer errors
 * when the response body is cancelled, and an aborted long-poll leaves.
 */
import { describe, expect, it } from "vitest";
import { call, tokenFor } from "./helpers";
import { roomStatus, untilSubscribers } from "./support";

describe("stream cleanup", () => {
  it("drops an SSE subscriber as soon as its client cancels the body", async () => {
    const room = "cleanup-sse";
    const token = await tokenFor("alice");
    const response = await call(`/rooms/${room}/events?token=${token}`);
    const reader = response.body!.getReader();
    await reader.read(); // retry: line
    expect((await roomStatus(room)).subscribers).toBe(1);
    await reader.cancel();
    await untilSubscribers(room, 0);
  });

  it("drops a long-poll waiter whose request is aborted", async () => {
    const room = "cleanup-poll";
    const token = await tokenFor("alice");
    const controller = new AbortController();
    const poll = call(`/rooms/${room}/messages?after=0&wait=20`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal }).catch((e) => e);
    await untilSubscribers(room, 1);
    controller.abort();
    await poll;
    await untilSubscribers(room, 0);
  });
});
