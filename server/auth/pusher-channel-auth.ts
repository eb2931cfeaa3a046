/**
 * Pusher channel authorization signatures, one implementation for both
 * sides: `POST /pusher/auth` signs, the hub checks what a client presents in
 * `pusher:subscribe`. As Pusher defines it:
 *
 *     auth = "<key>:" + hex(HMAC-SHA256(secret, socket_id + ":" + channel [+ ":" + channel_data]))
 *
 * `channel_data` (presence channels only) is signed exactly as sent, so the
 * member the hub announces is the one the signer vouched for.
 */
import { hmacSha256Hex } from "./hmac-hex";
import { secretsEqual } from "./secrets-equal";

/** The string Pusher signs for a channel subscription. */
export function channelStringToSign(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** `<key>:<hex signature>`, the `auth` value pusher-js sends with `pusher:subscribe`. */
export async function signChannel(key: string, secret: string, socketId: string, channel: string, channelData?: string): Promise<string> {
  return `${key}:${await hmacSha256Hex(secret, channelStringToSign(socketId, channel, channelData))}`;
}

/** Whether `auth` is the signature of this subscription, compared in constant time. */
export async function verifyChannelAuth(key: string, secret: string, auth: string, socketId: string, channel: string, channelData?: string): Promise<boolean> {
  const expected = await signChannel(key, secret, socketId, channel, channelData);
  return secretsEqual(auth, expected);
}
