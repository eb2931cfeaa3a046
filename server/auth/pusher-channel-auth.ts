/**
 * Pusher channel authorization and user authentication signatures, one
 * implementation for both sides: `POST /pusher/auth` and
 * `POST /pusher/user-auth` sign, the hub checks what a client presents in
 * `pusher:subscribe` and `pusher:signin`. As Pusher defines them:
 *
 *     auth = "<key>:" + hex(HMAC-SHA256(secret, socket_id + ":" + channel [+ ":" + channel_data]))
 *     auth = "<key>:" + hex(HMAC-SHA256(secret, socket_id + "::user::" + user_data))
 *
 * `channel_data` (presence channels only) and `user_data` are signed exactly
 * as sent, so the member or user the hub accepts is the one the signer
 * vouched for.
 */
import { hmacSha256Hex } from "./hmac-hex";
import { secretsEqual } from "./secrets-equal";

/** The string Pusher signs for a channel subscription. */
export function channelStringToSign(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The string Pusher signs for a user's sign-in on one connection. */
export function userStringToSign(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

async function sign(key: string, secret: string, text: string): Promise<string> {
  return `${key}:${await hmacSha256Hex(secret, text)}`;
}

/** `<key>:<hex signature>`, the `auth` value pusher-js sends with `pusher:subscribe`. */
export function signChannel(key: string, secret: string, socketId: string, channel: string, channelData?: string): Promise<string> {
  return sign(key, secret, channelStringToSign(socketId, channel, channelData));
}

/** `<key>:<hex signature>`, the `auth` value pusher-js sends with `pusher:signin`. */
export function signUser(key: string, secret: string, socketId: string, userData: string): Promise<string> {
  return sign(key, secret, userStringToSign(socketId, userData));
}

/** Whether `auth` signs this user_data for this connection, compared in constant time. */
export async function verifyUserAuth(key: string, secret: string, auth: string, socketId: string, userData: string): Promise<boolean> {
  return secretsEqual(auth, await signUser(key, secret, socketId, userData));
}

/** Whether `auth` is the signature of this subscription, compared in constant time. */
export async function verifyChannelAuth(key: string, secret: string, auth: string, socketId: string, channel: string, channelData?: string): Promise<boolean> {
  const expected = await signChannel(key, secret, socketId, channel, channelData);
  return secretsEqual(auth, expected);
}
