/**
 * `GET /app/:key?protocol=7`: the Pusher Channels WebSocket (SPEC §8).
 * The Worker checks what Pusher checks before a connection exists (the app
 * key, the protocol version) and the browser Origin as the native WebSocket
 * route does, then hands the upgrade to one PusherHub shard picked at
 * random. Refusals are made the way Pusher makes them, as an accepted
 * socket that sends `pusher:error` and closes with the same code, because
 * that is what pusher-js acts on (4001 and 4007: do not reconnect).
 */
import { PUSHER_PROTOCOL_VERSION } from "../../protocol/pusher";
import { errorFrame, PusherCode } from "../../protocol/pusher-socket";
import { HUB_NAME_HEADER } from "../../objects/pusher/hub-api";
import { websocketUpgrade } from "../../objects/room/websocket-upgrade";
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { hubName, pusherConfigFrom } from "../../server/pusher-config";
import { checkWebSocketOrigin } from "../http/cors";
import { ApiError } from "../http/errors";
import type { RouteHandler } from "./context";

export const openPusherSocket: RouteHandler = async (request, env) => {
  const appKey = requireSecret(env, "PUSHER_KEY");
  requireSecret(env, "PUSHER_SECRET"); // subscriptions to private and presence channels are checked with it
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("upgrade_required", "this route speaks the Pusher WebSocket protocol: send Upgrade: websocket");
  }
  checkWebSocketOrigin(request, env);
  let key: string;
  try {
    key = decodeURIComponent(request.params.key ?? "");
  } catch {
    key = "";
  }
  // The key is public (every client has it): a plain comparison leaks nothing.
  if (key !== appKey) return refuse(PusherCode.APP_KEY, `App key ${key.slice(0, 64)} does not exist on this server`, "Invalid app key");
  const protocol = new URL(request.url).searchParams.get("protocol");
  if (protocol !== String(PUSHER_PROTOCOL_VERSION)) {
    return refuse(PusherCode.PROTOCOL, `Unsupported protocol version ${(protocol ?? "(none)").slice(0, 16)}: this server speaks ${PUSHER_PROTOCOL_VERSION}`, "Unsupported protocol version");
  }
  return forwardToHub(env, request);
};

/** One shard at random: connections spread evenly without any shared counter. */
function forwardToHub(env: Env, request: Request): Promise<Response> {
  const shard = Math.floor(Math.random() * pusherConfigFrom(env).hubShards);
  const name = hubName(shard);
  const headers = new Headers({ upgrade: "websocket", [HUB_NAME_HEADER]: name });
  return env.PUSHER_HUBS.get(env.PUSHER_HUBS.idFromName(name)).fetch(new Request("https://pusher-hub/connect", { headers }));
}

/** An upgraded socket that only says why it is refused, then closes with that code (a close reason is at most 123 bytes). */
function refuse(code: number, message: string, reason: string): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  server.send(errorFrame(code, message));
  server.close(code, reason);
  return websocketUpgrade(client);
}
