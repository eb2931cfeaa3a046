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
import { secretsEqual } from "./secrets-equal";

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

function toHex(buffer: ArrayBuffer): string {
  let out = "";
  for (const byte of new Uint8Array(buffer)) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** The string Pusher signs for a channel subscription. */
export function channelStringToSign(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** `<key>:<hex signature>`, the `auth` value pusher-js sends with `pusher:subscribe`. */
export async function signChannel(key: string, secret: string, socketId: string, channel: string, channelData?: string): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), new TextEncoder().encode(channelStringToSign(socketId, channel, channelData)));
  return `${key}:${toHex(signature)}`;
}

/** Whether `auth` is the signature of this subscription, compared in constant time. */
export async function verifyChannelAuth(key: string, secret: string, auth: string, socketId: string, channel: string, channelData?: string): Promise<boolean> {
  const expected = await signChannel(key, secret, socketId, channel, channelData);
  return secretsEqual(auth, expected);
}
