/**
 * Server-side triggers (SPEC §5): publish an event to one room or to many,
 * authenticated by NOTIFY_SECRET. Also the room status route operators use.
 */
import * as v from "valibot";
import { batchNotifyBodySchema, MAX_NOTIFY_EVENTS, notifyBodySchema, notifyEventsBodySchema } from "../../protocol/schemas";
import type { AcceptedMessage, AcceptedMessages } from "../../objects/ChatRoom";
import type { Envelope } from "../../protocol/envelope";
import { authenticateTrigger } from "../auth/notify-secret";
import { parseJsonBytes, readCappedBytes, readJsonBody, requireJsonContentType, validateBody } from "../http/body";
import { ApiError, json } from "../http/errors";
import { requireRoomId, roomIdFrom, roomStub, unwrap } from "../rooms";
import { bodyLimit, type RouteHandler } from "./context";

/**
 * One event (`{"event",…}` → `{"message"}`), or many into this room
 * (`{"events":[…]}` → `{"messages":[…]}`, SPEC §5): every item is
 * validated here, a bad one named by its index, before the room sees any.
 */
export const notifyRoom: RouteHandler = async (request, env) => {
  const room = roomIdFrom(request.params.room);
  await authenticateTrigger(request, env);
  requireJsonContentType(request);
  const single = bodyLimit(env);
  const bytes = await readCappedBytes(request, single * MAX_NOTIFY_EVENTS);
  const body = parseNotifyJson(bytes, single);
  if (typeof body !== "object" || body === null || !("events" in body)) {
    // One event keeps its own cap; only a batch may be larger.
    if (bytes.byteLength > single) throw new ApiError("payload_too_large", `request body is larger than ${single} bytes`);
    const { created, message } = unwrap<AcceptedMessage>(await roomStub(env, room).notify(room, validateBody(body, notifyBodySchema)));
    return json({ message }, created ? 202 : 200);
  }
  const { events } = validateBody(body, notifyEventsBodySchema);
  const { created, messages } = unwrap<AcceptedMessages>(await roomStub(env, room).notifyMany(room, events));
  return json({ messages }, created ? 202 : 200);
};

/**
 * The body as JSON. A body over the one-event cap that is not even JSON is
 * answered as too large, not as malformed: it could only have been a batch,
 * and a sender who pasted a huge blob learns the limit it crossed.
 */
function parseNotifyJson(bytes: Uint8Array, single: number): unknown {
  try {
    return parseJsonBytes(bytes, v.unknown());
  } catch (error) {
    if (bytes.byteLength <= single) throw error;
    throw new ApiError("payload_too_large", `request body is larger than ${single} bytes (only a batch {"events":[…]} may be larger)`);
  }
}

/** One event to up to 100 rooms; answers with each room's envelope, in the order given. */
export const notifyRooms: RouteHandler = async (request, env) => {
  await authenticateTrigger(request, env);
  const { rooms, ...event } = await readJsonBody(request, batchNotifyBodySchema, bodyLimit(env));
  rooms.forEach((room, i) => requireRoomId(room, `rooms.${i}`));
  const results = await Promise.all(rooms.map(async (room) => unwrap<AcceptedMessage>(await roomStub(env, room).notify(room, event))));
  const messages: Envelope[] = results.map((result) => result.message);
  const anyCreated = results.some((result) => result.created);
  return json({ messages }, anyCreated ? 202 : 200);
};

/** Operators: a room's seq, subscribers and D1 outbox backlog. */
export const roomStatus: RouteHandler = async (request, env) => {
  const room = roomIdFrom(request.params.room);
  await authenticateTrigger(request, env);
  return json(await roomStub(env, room).status(room));
};
