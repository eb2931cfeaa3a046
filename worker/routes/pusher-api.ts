/**
 * The Pusher HTTP API (SPEC §8), for apps that publish with a Pusher server
 * SDK (Laravel's `pusher` broadcaster, pusher-http-node, …): trigger events,
 * batches of events, and the channel queries. Every request is signed as
 * Pusher signs it (worker/pusher/request-signature.ts) and is checked before
 * anything is parsed or delivered. Also the user routes: `sendToUser`
 * (a trigger to `#server-to-user-<id>`) and `terminate_connections`.
 *
 * A channel is the room of the same name: a triggered event enters the
 * room's log with a seq through `ChatRoom.pusherTrigger`, so native
 * WebSocket, SSE, long-poll and legacy clients see it too. The answer comes
 * once every room has stored its event. Channel state (who is subscribed
 * over the Pusher protocol) comes from worker/pusher/channels.ts.
 */
import * as v from "valibot";
import type { AcceptedMessage, AcceptedMessages } from "../../objects/ChatRoom";
import { PUSHER_MAX_EVENT_BYTES, pusherChannelKind, userChannel, userIdOfChannel, type PusherTrigger } from "../../protocol/pusher";
import {
  pusherBatchBodySchema,
  pusherChannelQuerySchema,
  pusherChannelsQuerySchema,
  pusherEventBodySchema,
  type PusherBatchEvent,
  type PusherEventBody,
  type PusherInfoAttribute,
} from "../../protocol/pusher-http";
import { pusherUserIdSchema } from "../../protocol/pusher-socket";
import { describeIssues } from "../../protocol/schemas";
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { parseJsonBytes, readCappedBytes, requireJsonContentType } from "../http/body";
import { ApiError, json } from "../http/errors";
import { getPusherChannel, listPusherChannels, type PusherChannelState } from "../pusher/channels";
import { verifyPusherRequest } from "../pusher/request-signature";
import { requireRoomId, roomIdFrom, roomStub, unwrap } from "../rooms";
import type { RouteHandler } from "./context";

/**
 * Body caps. `data` is a JSON string inside the JSON body, so its 10 KB may
 * take up to 6× that once escaped (`\u0001`), plus 100 channel names.
 */
const EVENT_BODY_BYTES = 6 * PUSHER_MAX_EVENT_BYTES + 32 * 1024;
const BATCH_BODY_BYTES = 10 * EVENT_BODY_BYTES;
/** terminate_connections has an empty body (the SDKs send `{}`). */
const TERMINATE_BODY_BYTES = 1024;

type ChannelAttributes = Partial<Record<PusherInfoAttribute, number>>;

/**
 * `POST /apps/:id/events`: one event to 1–100 channels. A server-to-user
 * channel (`#server-to-user-<id>`, what the SDKs' `sendToUser` names) is
 * not a room: the event goes live to that user's signed-in connections and
 * is not stored.
 */
export const triggerPusherEvent: RouteHandler = async (request, env) => {
  const body = await signedBody(request, env, EVENT_BODY_BYTES);
  const event = parseJsonBytes(body, pusherEventBodySchema);
  const channels = channelsOf(event);
  requireDataSize(event.data, "data");
  const trigger = toTrigger(event);
  await Promise.all(channels.map((channel) => deliver(env, channel, trigger)));
  if (!event.info) return json({});
  const infos = await Promise.all(channels.map(async (channel) => [channel, await triggerInfo(env, channel, event.info!)] as const));
  return json({ channels: Object.fromEntries(infos) });
};

/**
 * `POST /apps/:id/users/:user_id/terminate_connections`: closes every
 * connection signed in as the user, on whichever hub shard (the user's
 * channel room knows them). `{}` whether or not the user had any, as Pusher
 * answers; the sockets are closed with 4009 before the answer.
 */
export const terminatePusherUser: RouteHandler = async (request, env) => {
  await signedBody(request, env, TERMINATE_BODY_BYTES);
  const userId = userIdFrom(request.params.user_id);
  const channel = userChannel(userId);
  await roomStub(env, channel).pusherTerminate(channel);
  return json({});
};

/**
 * `POST /apps/:id/batch_events`: 1–10 events. All are checked before any is
 * delivered; the events for one channel enter its room in one call, in the
 * order given, in one transaction and one fan-out (as a batch notify does),
 * different channels in parallel.
 */
export const triggerPusherBatch: RouteHandler = async (request, env) => {
  const body = await signedBody(request, env, BATCH_BODY_BYTES);
  const { batch } = parseJsonBytes(body, pusherBatchBodySchema);
  batch.forEach((event, i) => {
    requireChannel(event.channel, `batch.${i}.channel`);
    requireDataSize(event.data, `batch.${i}.data`);
  });
  const byChannel = new Map<string, PusherBatchEvent[]>();
  for (const event of batch) {
    const queue = byChannel.get(event.channel);
    if (queue) queue.push(event);
    else byChannel.set(event.channel, [event]);
  }
  await Promise.all(
    [...byChannel].map(async ([channel, events]) => {
      // A user channel's events are live only (sendToUser): one by one, in order. A room's enter its log together.
      if (userIdOfChannel(channel) !== undefined) for (const event of events) await deliver(env, channel, toTrigger(event));
      else unwrap<AcceptedMessages>(await roomStub(env, channel).pusherTriggerMany(channel, events.map(toTrigger)));
    }),
  );
  if (!batch.some((event) => event.info)) return json({});
  return json({ batch: await Promise.all(batch.map((event) => (event.info ? triggerInfo(env, event.channel, event.info) : {}))) });
};

/** `GET /apps/:id/channels?filter_by_prefix=&info=`: occupied channels. */
export const listPusherChannelsRoute: RouteHandler = async (request, env) => {
  const query = parseSignedQuery(await signedQuery(request, env), pusherChannelsQuerySchema);
  const info = query.info ?? [];
  const prefix = query.filter_by_prefix;
  if (info.includes("user_count") && !prefix?.startsWith("presence-")) {
    throw new ApiError("invalid_query", "info: user_count is only available for presence channels (add filter_by_prefix=presence-)");
  }
  const channels = (await listPusherChannels(env, prefix)).filter((c) => c.subscriptionCount > 0 && (!prefix || c.name.startsWith(prefix)));
  return json({ channels: Object.fromEntries(channels.map((channel) => [channel.name, attributesOf(channel, info)])) });
};

/** `GET /apps/:id/channels/:name?info=`: `{occupied, user_count?, subscription_count?}`. */
export const getPusherChannelRoute: RouteHandler = async (request, env) => {
  const query = parseSignedQuery(await signedQuery(request, env), pusherChannelQuerySchema);
  const name = roomIdFrom(request.params.name);
  const info = query.info ?? [];
  if (info.includes("user_count") && pusherChannelKind(name) !== "presence") {
    throw new ApiError("invalid_query", "info: user_count is only available for presence- channels");
  }
  const channel = await getPusherChannel(env, name);
  return json({ occupied: channel.subscriptionCount > 0, ...attributesOf(channel, info) });
};

/** `GET /apps/:id/channels/:name/users`: a presence channel's members, `{users:[{id}]}`. */
export const listPusherUsers: RouteHandler = async (request, env) => {
  await signedQuery(request, env);
  const name = roomIdFrom(request.params.name);
  if (pusherChannelKind(name) !== "presence") throw new ApiError("invalid_room", "users are only listed for presence- channels");
  const channel = await getPusherChannel(env, name);
  return json({ users: channel.userIds.map((id) => ({ id })) });
};

// ---- internals ----

/** Reads the (capped) body, checks the signature, the app id and the content type; returns the raw body. */
async function signedBody(request: Request & { params: Record<string, string> }, env: Env, maxBytes: number): Promise<Uint8Array> {
  const body = await readCappedBytes(request, maxBytes);
  await verifyPusherRequest(request, new URL(request.url), body, env);
  requireApp(request.params.id, env);
  requireJsonContentType(request);
  return body;
}

/** Checks a GET's signature and app id; returns its query parameters other than the auth ones. */
async function signedQuery(request: Request & { params: Record<string, string> }, env: Env): Promise<Record<string, string>> {
  const query = await verifyPusherRequest(request, new URL(request.url), new Uint8Array(0), env);
  requireApp(request.params.id, env);
  return query;
}

/**
 * The app id is checked after the signature, so an unsigned caller cannot
 * probe for it. This service is one Pusher app.
 */
function requireApp(id: string | undefined, env: Env): void {
  if (id !== requireSecret(env, "PUSHER_APP_ID")) throw new ApiError("not_found", "no Pusher app with that id (the path must name PUSHER_APP_ID)");
}

function parseSignedQuery<S extends v.GenericSchema>(query: Record<string, string>, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, query);
  if (!result.success) throw new ApiError("invalid_query", describeIssues(result.issues));
  return result.output;
}

/** The channels of an events body, each a valid room id or user channel, duplicates dropped (one event per channel). */
function channelsOf(event: PusherEventBody): string[] {
  if (event.channels === undefined) return [requireChannel(event.channel!, "channel")];
  event.channels.forEach((channel, i) => requireChannel(channel, `channels.${i}`));
  return [...new Set(event.channels)];
}

function requireChannel(channel: string, field: string): string {
  const userId = userIdOfChannel(channel);
  if (userId === undefined) return requireRoomId(channel, field);
  if (!v.is(pusherUserIdSchema, userId)) throw new ApiError("invalid_room", `${field}: #server-to-user- must be followed by a user id (1–128 characters, no control characters)`);
  return channel;
}

/** A user id from the path (percent-encoded there): what `authenticateUser` accepts, capped. */
function userIdFrom(raw: string | undefined): string {
  let userId = raw ?? "";
  try {
    userId = decodeURIComponent(userId);
  } catch {
    throw new ApiError("invalid_query", "user_id: not valid percent-encoding");
  }
  if (!v.is(pusherUserIdSchema, userId)) throw new ApiError("invalid_query", "user_id: a user id is 1–128 characters, without control characters");
  return userId;
}

/** Pusher's 10 KB limit on `data`, in UTF-8 bytes: 413 as Pusher answers. The room checks it again. */
function requireDataSize(data: string, field: string): void {
  const bytes = new TextEncoder().encode(data).byteLength;
  if (bytes > PUSHER_MAX_EVENT_BYTES) throw new ApiError("payload_too_large", `${field}: ${bytes} bytes; Pusher events are limited to ${PUSHER_MAX_EVENT_BYTES}`);
}

function toTrigger(event: { name: string; data: string; socket_id?: string }): PusherTrigger {
  return event.socket_id === undefined ? { event: event.name, data: event.data } : { event: event.name, data: event.data, socketId: event.socket_id };
}

/**
 * One event into one channel: a room's log (stored, every transport), or
 * for `#server-to-user-<id>` (`sendToUser`) live to the user's connections
 * through their channel's room, not stored.
 */
async function deliver(env: Env, channel: string, trigger: PusherTrigger): Promise<void> {
  const room = roomStub(env, channel);
  if (userIdOfChannel(channel) === undefined) unwrap<AcceptedMessage>(await room.pusherTrigger(channel, trigger));
  else unwrap(await room.pusherUserEvent(channel, trigger));
}

/** Attributes a trigger's `info` asks for: user_count only exists on presence channels, so it is left out elsewhere; a user channel has none. */
async function triggerInfo(env: Env, channel: string, info: PusherInfoAttribute[]): Promise<ChannelAttributes> {
  if (userIdOfChannel(channel) !== undefined) return {};
  const applicable = pusherChannelKind(channel) === "presence" ? info : info.filter((attribute) => attribute !== "user_count");
  if (applicable.length === 0) return {};
  return attributesOf(await getPusherChannel(env, channel), applicable);
}

function attributesOf(channel: PusherChannelState, info: PusherInfoAttribute[]): ChannelAttributes {
  const attributes: ChannelAttributes = {};
  for (const attribute of info) {
    attributes[attribute] = attribute === "user_count" ? new Set(channel.userIds).size : channel.subscriptionCount;
  }
  return attributes;
}
