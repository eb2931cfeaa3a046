/** Finding a room's object, and turning the room's answers into HTTP. */
import * as v from "valibot";
import { roomIdSchema } from "../protocol/schemas";
import type { RoomResult, StreamCall } from "../objects/room/room-api";
import { ROOM_CONTEXT_HEADER } from "../objects/room/room-api";
import type { Env } from "../server/env";
import { ApiError } from "./http/errors";

/** A room id from a path segment, decoded and checked against the contract's pattern. */
export function roomIdFrom(raw: string | undefined): string {
  let room: string;
  try {
    room = decodeURIComponent(raw ?? "");
  } catch {
    throw new ApiError("invalid_room", "room id is not valid percent-encoding");
  }
  return requireRoomId(room);
}

/** A room id as given (in a body: no decoding), checked against the contract's pattern. */
export function requireRoomId(room: unknown, where = "room id"): string {
  if (!v.is(roomIdSchema, room)) throw new ApiError("invalid_room", `${where}: room ids match ^[A-Za-z0-9_\\-=@,.;:]{1,164}$`);
  return room;
}

export function roomStub(env: Env, room: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(room));
}

/** The value of a room's RPC answer, or its error thrown as the contract's error. */
export function unwrap<T>(result: RoomResult<T>): T {
  if (!result.ok) throw ApiError.from(result.error);
  return result.value;
}

/** Forwards a streaming call (WebSocket, SSE, GET messages) to the room object. */
export function forwardStream(env: Env, path: "/ws" | "/events" | "/messages", call: StreamCall, request: Request): Promise<Response> {
  const headers = new Headers({ [ROOM_CONTEXT_HEADER]: JSON.stringify(call) });
  const upgrade = request.headers.get("upgrade");
  if (upgrade) headers.set("upgrade", upgrade);
  return roomStub(env, call.room).fetch(new Request(`https://room${path}`, { headers, signal: request.signal }));
}
