/**
 * Reading the secrets a client presents. Comparing them with the configured
 * ones is `secretsEqual` in server/auth/secrets-equal.ts, shared with the objects.
 */

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim();
}
