/**
 * The routing Worker: authenticates, validates, picks the room, forwards.
 * Business rules live in the room object (objects/ChatRoom.ts).
 */
import type { Env } from "../server/env";
import { handle } from "./router";

export { ChatRoom } from "../objects/ChatRoom";
export { PusherHub } from "../objects/PusherHub";

export default {
  fetch: (request, env, ctx) => handle(request, env, ctx),
} satisfies ExportedHandler<Env>;
