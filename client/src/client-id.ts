/**
 * Client ids make sends idempotent: the server accepts one message per
 * (user, clientId), so a retry after a lost ack is answered with the original
 * message instead of a second one. `crypto.getRandomValues` exists in every
 * browser context (secure or not) and in Node.
 */
export function newClientId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return `c-${hex}`;
}
