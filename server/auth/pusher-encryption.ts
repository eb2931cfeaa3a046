/**
 * The per-channel key of Pusher's end-to-end encrypted channels
 * (`private-encrypted-…`), derived exactly as the official server SDKs
 * derive it, so that a backend encrypting with its SDK
 * (`encryptionMasterKeyBase64`) and a client decrypting with the
 * `shared_secret` from `POST /pusher/auth` agree:
 *
 *     shared_secret = base64(SHA-256(utf8(channel) ‖ master_key))
 *
 * The master key is PUSHER_ENCRYPTION_MASTER_KEY, 32 random bytes in base64.
 * The service never encrypts or decrypts anything: it only hands a
 * subscriber its channel's key, after the same checks as a private channel.
 */

/** Bytes a master key must decode to (NaCl secretbox keys are 32 bytes). */
export const ENCRYPTION_MASTER_KEY_BYTES = 32;

export class InvalidMasterKeyError extends Error {
  constructor() {
    super(`PUSHER_ENCRYPTION_MASTER_KEY must be ${ENCRYPTION_MASTER_KEY_BYTES} random bytes in base64 (e.g. \`openssl rand -base64 32\`)`);
  }
}

/** The master key's bytes; throws InvalidMasterKeyError when it is not base64 of 32 bytes. */
export function decodeMasterKey(base64: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(base64.trim());
  } catch {
    throw new InvalidMasterKeyError();
  }
  if (binary.length !== ENCRYPTION_MASTER_KEY_BYTES) throw new InvalidMasterKeyError();
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** The channel's `shared_secret`, base64, as pusher-js expects it in the auth answer. */
export async function channelSharedSecret(masterKeyBase64: string, channel: string): Promise<string> {
  const key = decodeMasterKey(masterKeyBase64);
  const name = new TextEncoder().encode(channel);
  const input = new Uint8Array(name.byteLength + key.byteLength);
  input.set(name, 0);
  input.set(key, name.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return btoa(String.fromCharCode(...digest));
}
