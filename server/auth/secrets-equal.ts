/**
 * Constant-time comparison of a presented secret with the configured one.
 * Both are hashed first, so neither their contents nor their lengths leak
 * through timing. Shared by the Worker (notify secret, Pusher API
 * signatures) and the objects (Pusher subscription signatures).
 */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(presented)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}
