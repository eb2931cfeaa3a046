/**
 * Every public route, in one table. Each path also answers other methods
 * with 405, and anything else with 404, in the contract's error shape.
 */
import { Router, type IRequest } from "itty-router";
import { MissingSecretError } from "../server/config";
import type { Env } from "../server/env";
import { corsFor } from "./http/cors";
import { ApiError, errorResponse, json } from "./http/errors";
import type { RouteHandler } from "./routes/context";
import { mintDevToken } from "./routes/dev-token";
import { legacyPoll, legacyPost } from "./routes/legacy";
import { listUnread } from "./routes/unread";
import { notifyRoom, notifyRooms, roomStatus } from "./routes/notify";
import { getPusherChannelRoute, listPusherChannelsRoute, listPusherUsers, terminatePusherUser, triggerPusherBatch, triggerPusherEvent } from "./routes/pusher-api";
import { listSubscriptions, sendTestPush, subscribe, unsubscribe, vapidPublicKey } from "./routes/push";
import { authenticatePusherUser, authorizePusherChannel } from "./routes/pusher-auth";
import { openPusherSocket } from "./routes/pusher-socket";
import { listPresence, openEventStream, openWebSocket, readMessages, sendMessage, sendRead, sendTyping } from "./routes/rooms";

type Method = "GET" | "POST" | "DELETE";

const ROUTES: [Method, string, RouteHandler][] = [
  ["GET", "/health", () => json({ ok: true })],
  ["GET", "/rooms/:room/ws", openWebSocket],
  ["GET", "/rooms/:room/events", openEventStream],
  ["GET", "/rooms/:room/messages", readMessages],
  ["POST", "/rooms/:room/messages", sendMessage],
  ["POST", "/rooms/:room/typing", sendTyping],
  ["POST", "/rooms/:room/read", sendRead],
  ["GET", "/rooms/:room/presence", listPresence],
  ["POST", "/rooms/:room/notify", notifyRoom],
  ["GET", "/rooms/:room/status", roomStatus],
  ["POST", "/notify", notifyRooms],
  ["GET", "/me/unread", listUnread],
  ["GET", "/push/vapid-public-key", vapidPublicKey],
  ["POST", "/push/subscriptions", subscribe],
  ["GET", "/push/subscriptions", listSubscriptions],
  ["DELETE", "/push/subscriptions", unsubscribe],
  ["POST", "/push/test", sendTestPush],
  ["GET", "/api/chat/messages/:sessionId", legacyPoll],
  ["POST", "/api/chat/message", legacyPost],
  ["POST", "/dev/token", mintDevToken],
  ["GET", "/app/:key", openPusherSocket],
  ["POST", "/pusher/auth", authorizePusherChannel],
  ["POST", "/pusher/user-auth", authenticatePusherUser],
  // The Pusher HTTP API (SPEC §8), signed with PUSHER_KEY / PUSHER_SECRET.
  ["POST", "/apps/:id/events", triggerPusherEvent],
  ["POST", "/apps/:id/batch_events", triggerPusherBatch],
  ["GET", "/apps/:id/channels", listPusherChannelsRoute],
  ["GET", "/apps/:id/channels/:name", getPusherChannelRoute],
  ["GET", "/apps/:id/channels/:name/users", listPusherUsers],
  ["POST", "/apps/:id/users/:user_id/terminate_connections", terminatePusherUser],
];

function buildRouter() {
  const router = Router<IRequest, [Env, ExecutionContext]>();
  for (const [method, path, handler] of ROUTES) router[method.toLowerCase() as "get"](path, handler);
  for (const path of new Set(ROUTES.map(([, path]) => path))) {
    const allowed = ROUTES.filter(([, p]) => p === path).map(([m]) => m).join(", ");
    router.all(path, () => {
      const response = errorResponse("method_not_allowed", `${path} allows ${allowed}`);
      response.headers.set("allow", allowed);
      return response;
    });
  }
  router.all("*", (request) => errorResponse("not_found", `no route for ${request.method} ${new URL(request.url).pathname}`));
  return router;
}

const router = buildRouter();

export async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const { preflight, corsify } = corsFor(env);
  const early = preflight(request);
  if (early) return early;
  let response: Response;
  try {
    response = await router.fetch(request, env, ctx);
  } catch (error) {
    response = toErrorResponse(error);
  }
  return corsify(response, request);
}

function toErrorResponse(error: unknown): Response {
  if (error instanceof ApiError) return errorResponse(error.code, error.message, error.retryAfter);
  if (error instanceof MissingSecretError) {
    console.error(error.message);
    return errorResponse("server_misconfigured", error.message);
  }
  console.error("unhandled error:", error);
  return errorResponse("internal_error", "something went wrong on our side; it has been logged");
}
