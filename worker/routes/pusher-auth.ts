/**
 * `POST /pusher/auth` and `POST /pusher/user-auth`: Pusher channel
 * authorization and user authentication for holders of our JWT (SPEC §8),
 * so pusher-js's `channelAuthorization.endpoint` /
 * `userAuthentication.endpoint` and Laravel Echo's `authEndpoint` can point
 * at the service itself.
 *
 * Body: what pusher-js sends, form-encoded `socket_id` and (for channels)
 * `channel_name`; JSON with the same fields is accepted too. The JWT comes
 * as `Authorization: Bearer` (pusher-js `…headers`) or as a `token` field.
 *
 * Channels: the token must grant the room named like the channel. Answer
 * `{"auth": "<key>:<signature>"}`, plus for presence channels the signed
 * `channel_data`, `{"user_id": <sub>, "user_info": {"name": <name>}}`, and
 * for encrypted channels the `shared_secret` derived from
 * PUSHER_ENCRYPTION_MASTER_KEY.
 *
 * Users: `{"auth": "<key>:<signature>", "user_data": "{\"id\":<sub>,\"user_info\":{\"name\":<name>}}"}`,
 * the signature over `socket_id::user::user_data`.
 */
import * as v from "valibot";
import { isEncryptedChannel, pusherChannelKind } from "../../protocol/pusher";
import { pusherSocketIdSchema } from "../../protocol/pusher-http";
import { PUSHER_CHANNEL_PATTERN, PUSHER_MAX_USER_ID_LENGTH, pusherUserIdSchema } from "../../protocol/pusher-socket";
import { describeIssues } from "../../protocol/schemas";
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { authenticateClient, requireRoom, type ClientIdentity } from "../auth/client-token";
import { readCappedBytes } from "../http/body";
import { ApiError, json } from "../http/errors";
import { signChannel, signUser } from "../../server/auth/pusher-channel-auth";
import { channelSharedSecret, InvalidMasterKeyError } from "../../server/auth/pusher-encryption";
import { requireRoomId } from "../rooms";
import type { RouteHandler } from "./context";

/** An auth request is two short fields and maybe a token. */
const MAX_AUTH_BODY_BYTES = 8 * 1024;

const tokenField = v.optional(v.pipe(v.string(), v.maxLength(4096)));
const socketIdField = v.pipe(v.string("socket_id is required"), pusherSocketIdSchema);

const authBodySchema = v.object({
  socket_id: socketIdField,
  channel_name: v.string("channel_name is required"),
  token: tokenField,
});

const userAuthBodySchema = v.object({ socket_id: socketIdField, token: tokenField });

export const authorizePusherChannel: RouteHandler = async (request, env) => {
  const key = requireSecret(env, "PUSHER_KEY");
  const secret = requireSecret(env, "PUSHER_SECRET");
  const body = await readAuthBody(request, authBodySchema);
  const channel = requireRoomId(body.channel_name, "channel_name");
  if (!PUSHER_CHANNEL_PATTERN.test(channel)) throw new ApiError("invalid_room", "channel_name: Pusher channel names match ^[A-Za-z0-9_\\-=@,.;]{1,164}$ (no colon)");
  const identity = await authenticate(request, env, body.token);
  requireRoom(identity, channel);
  const kind = pusherChannelKind(channel);
  if (kind === "public") throw new ApiError("invalid_body", `channel_name: ${channel} is a public channel, which needs no authorization`);
  if (isEncryptedChannel(channel)) {
    return json({ auth: await signChannel(key, secret, body.socket_id, channel), shared_secret: await sharedSecret(env, channel) });
  }
  if (kind === "private") return json({ auth: await signChannel(key, secret, body.socket_id, channel) });
  const channelData = JSON.stringify({ user_id: identity.user.id, user_info: { name: identity.user.name } });
  return json({ auth: await signChannel(key, secret, body.socket_id, channel, channelData), channel_data: channelData });
};

/**
 * `POST /pusher/user-auth`: signs `pusher:signin` for the JWT's user
 * (pusher-js `userAuthentication.endpoint`, then `pusher.signin()`).
 * `user_data.id` is the token's `sub`; any valid token may sign in as its
 * own user, no room grant needed.
 */
export const authenticatePusherUser: RouteHandler = async (request, env) => {
  const key = requireSecret(env, "PUSHER_KEY");
  const secret = requireSecret(env, "PUSHER_SECRET");
  const body = await readAuthBody(request, userAuthBodySchema);
  const identity = await authenticate(request, env, body.token);
  if (!v.is(pusherUserIdSchema, identity.user.id)) {
    throw new ApiError("invalid_token", `sub: a Pusher user id is at most ${PUSHER_MAX_USER_ID_LENGTH} characters, without control characters`);
  }
  const userData = JSON.stringify({ id: identity.user.id, user_info: { name: identity.user.name } });
  return json({ auth: await signUser(key, secret, body.socket_id, userData), user_data: userData });
};

/** The JWT: Bearer, or a `token` field in the form (pusher-js `params`) when headers cannot be set; Bearer wins. */
function authenticate(request: Request, env: Env, token: string | undefined): Promise<ClientIdentity> {
  const url = new URL(request.url);
  if (token !== undefined) url.searchParams.set("token", token);
  return authenticateClient(request, url, env);
}

/** The channel's shared_secret; a missing or malformed master key is the operator's to fix (500 server_misconfigured). */
async function sharedSecret(env: Env, channel: string): Promise<string> {
  try {
    return await channelSharedSecret(requireSecret(env, "PUSHER_ENCRYPTION_MASTER_KEY"), channel);
  } catch (error) {
    if (!(error instanceof InvalidMasterKeyError)) throw error;
    console.error(error.message);
    throw new ApiError("server_misconfigured", error.message);
  }
}

/** The form (as pusher-js posts it) or a JSON object, capped, then the schema. */
async function readAuthBody<S extends v.GenericSchema>(request: Request, schema: S): Promise<v.InferOutput<S>> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  const isForm = /^application\/x-www-form-urlencoded\s*(;|$)/.test(type);
  const isJson = /^application\/json\s*(;|$)/.test(type);
  if (!isForm && !isJson) {
    throw new ApiError("unsupported_media_type", "send socket_id and channel_name as application/x-www-form-urlencoded (what pusher-js sends) or application/json");
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(await readCappedBytes(request, MAX_AUTH_BODY_BYTES));
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError("invalid_body", "body is not valid UTF-8");
  }
  let fields: unknown;
  if (isForm) {
    const params = new URLSearchParams(text);
    const record: Record<string, string> = Object.create(null);
    for (const [name, value] of params) {
      if (Object.hasOwn(record, name)) throw new ApiError("invalid_body", `${name}: given more than once`);
      record[name] = value;
    }
    fields = record;
  } else {
    try {
      fields = JSON.parse(text);
    } catch {
      throw new ApiError("invalid_body", "body is not valid JSON");
    }
  }
  const result = v.safeParse(schema, fields);
  if (!result.success) throw new ApiError("invalid_body", describeIssues(result.issues));
  return result.output;
}
