/**
 * Whether a `pusher:subscribe` may go ahead: the channel kind, the
 * signature for private and presence channels (same code as
 * `POST /pusher/auth` signs with, compared in constant time), and the
 * presence member from the signed `channel_data`. A refusal is the
 * `pusher:subscription_error` frame pusher-js expects, so the client's
 * `subscription_error` handler sees it.
 */
import * as v from "valibot";
import { pusherChannelKind, userIdOfChannel } from "../../protocol/pusher";
import {
  PUSHER_MAX_USER_INFO_BYTES,
  pusherChannelDataSchema,
  subscriptionErrorFrame,
  type PusherSubscribeData,
} from "../../protocol/pusher-socket";
import { describeIssues } from "../../protocol/schemas";
import { matchesGrants } from "../../server/auth/grants";
import { verifyChannelAuth } from "../../server/auth/pusher-channel-auth";
import type { PusherMember } from "./hub-api";

export type SubscriptionCheck = { ok: true; member?: PusherMember } | { ok: false; frame: string };

export interface AppCredentials {
  key: string;
  secret: string;
  /** PUSHER_PUBLIC_CHANNELS: the rooms that may be subscribed to without a signature. */
  publicChannels: readonly string[];
}

/**
 * `signedInAs`: the user the connection signed in as, if it did; it may
 * subscribe to its own `#server-to-user-<id>` channel and no other.
 * Encrypted channels (`private-encrypted-`) are private channels here: the
 * signature is the same, the shared secret only matters to the clients.
 */
export async function checkSubscription(data: PusherSubscribeData, socketId: string, app: AppCredentials, signedInAs?: string): Promise<SubscriptionCheck> {
  const { channel } = data;
  const kind = pusherChannelKind(channel);
  const channelUser = userIdOfChannel(channel);
  if (channelUser !== undefined) {
    if (signedInAs === channelUser) return { ok: true };
    return refuse(channel, "AuthError", `${channel} is the server-to-user channel of a user this connection has not signed in as (pusher:signin)`, 403);
  }
  if (kind === "public") {
    if (matchesGrants(app.publicChannels, channel)) return { ok: true };
    return refuse(channel, "AuthError", `${channel} is not open as a public channel: the service's PUSHER_PUBLIC_CHANNELS does not list it (use a private- or presence- channel, or list it)`, 403);
  }
  if (!data.auth) return refuse(channel, "AuthError", `${channel} is a ${kind} channel: subscribing needs an auth signature (see channelAuthorization)`, 401);
  let member: PusherMember | undefined;
  if (kind === "presence") {
    const parsed = parseMember(data.channel_data);
    if (typeof parsed === "string") return refuse(channel, "AuthError", parsed, 401);
    member = parsed;
  }
  const signed = await verifyChannelAuth(app.key, app.secret, data.auth, socketId, channel, kind === "presence" ? data.channel_data : undefined);
  if (!signed) return refuse(channel, "AuthError", `invalid signature for ${channel} and socket_id ${socketId}`, 401);
  return member ? { ok: true, member } : { ok: true };
}

/** The member of a presence subscription, or why channel_data will not do. */
function parseMember(channelData: string | undefined): PusherMember | string {
  if (channelData === undefined) return "presence channels need channel_data with a user_id";
  let json: unknown;
  try {
    json = JSON.parse(channelData);
  } catch {
    return "channel_data is not valid JSON";
  }
  const result = v.safeParse(pusherChannelDataSchema, json);
  if (!result.success) return `channel_data: ${describeIssues(result.issues)}`;
  const infoJson = JSON.stringify(result.output.user_info ?? {});
  if (new TextEncoder().encode(infoJson).byteLength > PUSHER_MAX_USER_INFO_BYTES) {
    return `channel_data: user_info is limited to ${PUSHER_MAX_USER_INFO_BYTES} bytes`;
  }
  return { id: result.output.user_id, infoJson };
}

function refuse(channel: string, type: "AuthError" | "InvalidChannel", error: string, status: number): SubscriptionCheck {
  return { ok: false, frame: subscriptionErrorFrame(channel, type, error, status) };
}
