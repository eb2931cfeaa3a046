/**
 * Server-side triggers (SPEC §5): publish an event to one room or to many,
 * authenticated by NOTIFY_SECRET. Also the room status route operators use.
 */
import { batchNotifyBodySchema, notifyBodySchema } from "../../protocol/schemas";
import type { AcceptedMessage } from "../../objects/ChatRoom";
import type { Envelope } from "../../protocol/envelope";
import { authenticateTrigger } from "../auth/notify-secret";
import { readJsonBody } from "../http/body";
import { json } from "../http/errors";
import { requireRoomId, roomIdFrom, roomStub, unwrap } from "../rooms";
import { bodyLimit, type RouteHandler } from "./context";

export const notifyRoom: RouteHandler = async (request, env) => {
  const room = roomIdFrom(request.params.room);
  await authenticateTrigger(request, env);
  const body = await readJsonBody(request, notifyBodySchema, bodyLimit(env));
  const { created, message } = unwrap<AcceptedMessage>(await roomStub(env, room).notify(room, body));
  return json({ message }, created ? 202 : 200);
};

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
