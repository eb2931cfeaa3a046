/**
 * The client's unread counts and the inbox pattern, against wrangler dev:
 * a notify to user:<id> reaches the inbox handle, and unreadCounts() follows
 * sends, inbox notifications and read receipts.
 */
import { describe, expect, inject, it } from "vitest";
import { connect, unreadCounts } from "../../client/src/index";
import { postJson, tokenFor } from "./clients";
import { DEFAULT_SECRETS } from "./server";
import { eventually } from "./transports";

const url = inject("serverUrl");

/** D1 is written a moment after each change and has no event to await: re-read until a generous deadline. */
async function untilUnread(token: string, check: (counts: Awaited<ReturnType<typeof unreadCounts>>) => boolean) {
  return eventually(async () => {
    const counts = await unreadCounts({ url, token });
    return check(counts) && counts;
  }, "the unread counts to match", 30_000);
}

describe("client: unread counts and the inbox", () => {
  it("counts others' messages and inbox notifications, and follows read receipts", async () => {
    const id = `inbox-${Date.now()}`;
    const room = `support-${id}`;
    const me = await tokenFor(id, { rooms: ["support-*"] });
    const agent = await tokenFor(`agent-${id}`, { rooms: ["support-*"] });

    const inbox = connect(`user:${id}`, { url, token: me });
    const conversation = connect(room, { url, token: me });
    const notified = new Promise((resolve) => inbox.on("message", resolve));
    await conversation.send({ text: "my question" });
    await postJson(`${url}/rooms/${room}/messages`, { data: { text: "an answer" } }, agent);
    await postJson(`${url}/rooms/${room}/messages`, { data: { text: "and more" } }, agent);
    await postJson(`${url}/rooms/user:${id}/notify`, { event: "ticket_assigned", data: { ticket: 9 } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(await notified).toMatchObject({ room: `user:${id}`, event: "ticket_assigned", data: { ticket: 9 } });

    const before = await untilUnread(me, (c) => c.total === 3);
    expect(before.rooms).toEqual(
      expect.arrayContaining([
        { room, unread: 2, lastSeq: 3, lastRead: 0 },
        { room: `user:${id}`, unread: 1, lastSeq: 1, lastRead: 0 },
      ]),
    );

    await conversation.read(3);
    const after = await untilUnread(me, (c) => c.total === 1);
    expect(after.rooms).toContainEqual({ room, unread: 0, lastSeq: 3, lastRead: 3 });

    await expect(unreadCounts({ url, token: "not-a-token" })).rejects.toMatchObject({ code: "invalid_token" });
    inbox.close();
    conversation.close();
  });
});
