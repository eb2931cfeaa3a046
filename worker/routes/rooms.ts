/**
 * The native room routes (SPEC §4): WebSocket, SSE, long-poll and history,
 * sending over HTTP, and the typing / read / presence signals.
 */
import * as v from "valibot";
import { readBodySchema, roomQuerySchema, sendBodySchema, type RoomQuery } from "../../protocol/schemas";
import type { AcceptedMessage } from "../../objects/ChatRoom";
import type { StreamCall } from "../../objects/room/room-api";
import { configFrom } from "../../server/config";
import type { Env } from "../../server/env";
import { readJsonBody } from "../http/body";
import { checkWebSocketOrigin } from "../http/cors";
import { ApiError, json } from "../http/errors";
import { parseQuery } from "../http/query";
import { forwardStream, roomIdFrom, roomStub, unwrap } from "../rooms";
import { bodyLimit, roomRequest, type RouteHandler } from "./context";

/** Turns a validated query into the room's stream call, applying limits. */
export function streamCall(base: Omit<StreamCall, "after" | "before" | "waitMs" | "limit">, query: RoomQuery, env: Env): StreamCall {
  const config = configFrom(env);
  if (query.limit !== undefined && query.limit > config.maxPageLimit) {
    throw new ApiError("invalid_query", `limit: must be at most ${config.maxPageLimit}`);
  }
  const call: StreamCall = { ...base };
  if (query.after !== undefined) call.after = query.after;
  if (query.before !== undefined) call.before = query.before;
  if (query.limit !== undefined) call.limit = query.limit;
  if (query.wait !== undefined) call.waitMs = Math.round(Math.min(query.wait, config.maxWaitSeconds) * 1000);
  return call;
}

export const openWebSocket: RouteHandler = async (request, env) => {
  roomIdFrom(request.params.room);
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("upgrade_required", "this route speaks WebSocket: send Upgrade: websocket");
  }
  checkWebSocketOrigin(request, env);
  const { url, caller } = await roomRequest(request, env);
  const query = parseQuery(url, roomQuerySchema);
  const call = streamCall(caller, { after: query.after }, env);
  if (query.batch === "1") call.batch = true;
  return forwardStream(env, "/ws", call, request);
};

export const openEventStream: RouteHandler = async (request, env) => {
  const { url, caller } = await roomRequest(request, env);
  const query = parseQuery(url, roomQuerySchema);
  // EventSource sends Last-Event-ID when it reconnects; it wins over ?after=.
  const lastEventId = request.headers.get("last-event-id");
  let after = query.after;
  if (lastEventId !== null && lastEventId !== "") {
    const parsed = v.safeParse(roomQuerySchema, { after: lastEventId });
    if (!parsed.success) throw new ApiError("invalid_query", "Last-Event-ID: must be a non-negative integer");
    after = parsed.output.after;
  }
  return forwardStream(env, "/events", streamCall(caller, { after }, env), request);
};

export const readMessages: RouteHandler = async (request, env) => {
  const { url, caller } = await roomRequest(request, env);
  const query = parseQuery(url, roomQuerySchema);
  if (query.wait !== undefined && query.wait > 0 && query.after === undefined) {
    throw new ApiError("invalid_query", "wait: needs after=<the last seq you have> to know what to wait for");
  }
  return forwardStream(env, "/messages", streamCall(caller, query, env), request);
};

export const sendMessage: RouteHandler = async (request, env) => {
  const { room, caller } = await roomRequest(request, env);
  const body = await readJsonBody(request, sendBodySchema, bodyLimit(env));
  const { created, message } = unwrap<AcceptedMessage>(await roomStub(env, room).send(caller, body));
  return json({ message }, created ? 201 : 200);
};

export const sendTyping: RouteHandler = async (request, env) => {
  const { room, caller } = await roomRequest(request, env);
  await roomStub(env, room).typing(caller);
  return new Response(null, { status: 204 });
};

export const sendRead: RouteHandler = async (request, env) => {
  const { room, caller } = await roomRequest(request, env);
  const { seq } = await readJsonBody(request, readBodySchema, bodyLimit(env));
  unwrap(await roomStub(env, room).read(caller, seq));
  return new Response(null, { status: 204 });
};

export const listPresence: RouteHandler = async (request, env) => {
  const { room } = await roomRequest(request, env);
  return json({ members: await roomStub(env, room).presenceMembers(room) });
};
