/**
 * Constant-time comparison of a presented secret with the configured one.
 * Both are hashed first, so neither their contents nor their lengths leak
 * through timing. Shared by the Worker (notify secret, Pusher API
 * signatures) and the objects (Pusher subscription signatures).
 */
const encoder = new TextEncoder();

function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(presented), sha256(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * secretsEqual for one configured secret checked on every request (the
 * notify secret): the configured side's digest is computed once, not per
 * request, and again only if the secret changes. Still constant time in what
 * is presented.
 */
export function configuredSecretMatcher(): (presented: string, expected: string) => Promise<boolean> {
  let cached: { secret: string; digest: Promise<ArrayBuffer> } | undefined;
  return async (presented, expected) => {
    if (cached?.secret !== expected) cached = { secret: expected, digest: sha256(expected) };
    const [a, b] = await Promise.all([sha256(presented), cached.digest]);
    return crypto.subtle.timingSafeEqual(a, b);
  };
}
