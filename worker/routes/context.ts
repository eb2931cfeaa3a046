/** What every room route starts with: which room, who is asking, may they. */
import type { IRequest } from "itty-router";
import type { Caller } from "../../objects/room/room-api";
import { configFrom } from "../../server/config";
import type { Env } from "../../server/env";
import { authenticateClient, requireRoom, type ClientIdentity } from "../auth/client-token";
import { roomIdFrom } from "../rooms";

export type RouteHandler = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;

export interface RoomRequest {
  room: string;
  url: URL;
  identity: ClientIdentity;
  caller: Caller;
}

/** Validates the room id, authenticates the JWT and checks the room is granted. */
export async function roomRequest(request: IRequest, env: Env, roomParam = request.params.room): Promise<RoomRequest> {
  const room = roomIdFrom(roomParam);
  const url = new URL(request.url);
  const identity = await authenticateClient(request, url, env);
  requireRoom(identity, room);
  const caller: Caller = { room, user: identity.user, ...(identity.role !== undefined ? { role: identity.role } : {}) };
  return { room, url, identity, caller };
}

/** Bodies may be a little larger than the data limit (JSON around it, room lists). */
export function bodyLimit(env: Env): number {
  return configFrom(env).maxMessageBytes * 2 + 32 * 1024;
}
