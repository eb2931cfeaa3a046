/**
 * `POST /pusher/auth`: Pusher channel authorization for holders of our JWT
 * (SPEC §8), so pusher-js's `channelAuthorization.endpoint` and Laravel
 * Echo's `authEndpoint` can point at the service itself.
 *
 * Body: what pusher-js sends, form-encoded `socket_id` and `channel_name`
 * (JSON with the same fields is accepted too). The JWT comes as
 * `Authorization: Bearer` (pusher-js `channelAuthorization.headers`) or as
 * a `token` field. The token must grant the room named like the channel.
 * Answer: `{"auth": "<key>:<signature>"}`, plus for presence channels the
 * signed `channel_data`, `{"user_id": <sub>, "user_info": {"name": <name>}}`.
 */
import * as v from "valibot";
import { pusherChannelKind } from "../../protocol/pusher";
import { pusherSocketIdSchema } from "../../protocol/pusher-http";
import { isEncryptedChannel, PUSHER_CHANNEL_PATTERN } from "../../protocol/pusher-socket";
import { describeIssues } from "../../protocol/schemas";
import { requireSecret } from "../../server/config";
import { authenticateClient, requireRoom } from "../auth/client-token";
import { readCappedBytes } from "../http/body";
import { ApiError, json } from "../http/errors";
import { signChannel } from "../../server/auth/pusher-channel-auth";
import { requireRoomId } from "../rooms";
import type { RouteHandler } from "./context";

/** An auth request is two short fields and maybe a token. */
const MAX_AUTH_BODY_BYTES = 8 * 1024;

const authBodySchema = v.object({
  socket_id: v.pipe(v.string("socket_id is required"), pusherSocketIdSchema),
  channel_name: v.string("channel_name is required"),
  token: v.optional(v.pipe(v.string(), v.maxLength(4096))),
});

export const authorizePusherChannel: RouteHandler = async (request, env) => {
  const key = requireSecret(env, "PUSHER_KEY");
  const secret = requireSecret(env, "PUSHER_SECRET");
  const body = await readAuthBody(request);
  const channel = requireRoomId(body.channel_name, "channel_name");
  if (!PUSHER_CHANNEL_PATTERN.test(channel)) throw new ApiError("invalid_room", "channel_name: Pusher channel names match ^[A-Za-z0-9_\\-=@,.;]{1,164}$ (no colon)");
  // The token may come in the form (pusher-js `params`) when headers cannot be set; Bearer wins.
  const url = new URL(request.url);
  if (body.token !== undefined) url.searchParams.set("token", body.token);
  const identity = await authenticateClient(request, url, env);
  requireRoom(identity, channel);
  const kind = pusherChannelKind(channel);
  if (kind === "public") throw new ApiError("invalid_body", `channel_name: ${channel} is a public channel, which needs no authorization`);
  if (isEncryptedChannel(channel)) throw new ApiError("invalid_body", "channel_name: encrypted channels (private-encrypted-) are not supported");
  if (kind === "private") return json({ auth: await signChannel(key, secret, body.socket_id, channel) });
  const channelData = JSON.stringify({ user_id: identity.user.id, user_info: { name: identity.user.name } });
  return json({ auth: await signChannel(key, secret, body.socket_id, channel, channelData), channel_data: channelData });
};

/** The form (as pusher-js posts it) or a JSON object, capped, then the schema. */
async function readAuthBody(request: Request): Promise<v.InferOutput<typeof authBodySchema>> {
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
  const result = v.safeParse(authBodySchema, fields);
  if (!result.success) throw new ApiError("invalid_body", describeIssues(result.issues));
  return result.output;
}
