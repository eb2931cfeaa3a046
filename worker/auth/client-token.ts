/**
 * Client identity: an HS256 JWT signed with JWT_SECRET, from
 * `Authorization: Bearer` or (for browser WebSockets and EventSource, which
 * cannot set headers) `?token=`. Only HS256 is accepted; `exp` and `nbf` are
 * honoured when present.
 */
import { errors as joseErrors, jwtVerify } from "jose";
import * as v from "valibot";
import type { UserRef } from "../../protocol/envelope";
import { matchesGrants } from "../../server/auth/grants";
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { ApiError } from "../http/errors";
import { bearerToken } from "./secrets";

export interface ClientIdentity {
  user: UserRef;
  role?: string;
  /** Room ids and prefixes (`support-*`, `*`) the token grants. */
  rooms: string[];
}

const claimsSchema = v.object({
  sub: v.pipe(v.string("sub is required"), v.minLength(1, "sub is required"), v.maxLength(128)),
  name: v.optional(v.pipe(v.string(), v.maxLength(128))),
  role: v.optional(v.pipe(v.string(), v.maxLength(64))),
  rooms: v.optional(v.array(v.string())),
});

/**
 * The HMAC key, imported once per secret and isolate. Given raw bytes, jose
 * runs crypto.subtle.importKey on every verify: one more runtime call per
 * authenticated request (each WebSocket, SSE stream and poll), which the
 * long-poll benchmark showed against its floor.
 */
const keys = new Map<string, Promise<CryptoKey>>();
function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    keys.set(secret, key);
  }
  return key;
}

export async function authenticateClient(request: Request, url: URL, env: Env): Promise<ClientIdentity> {
  const token = bearerToken(request) ?? url.searchParams.get("token") ?? undefined;
  if (!token) throw new ApiError("missing_token", "send a JWT as Authorization: Bearer <token> or ?token=<token>");
  const secret = requireSecret(env, "JWT_SECRET");
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, await keyFor(secret), { algorithms: ["HS256"] }));
  } catch (error) {
    throw new ApiError("invalid_token", describeJoseError(error));
  }
  const claims = v.safeParse(claimsSchema, payload);
  if (!claims.success) throw new ApiError("invalid_token", `token claims: ${claims.issues[0]?.message ?? "invalid"}`);
  const { sub, name, role, rooms } = claims.output;
  return { user: { id: sub, name: name ?? sub }, ...(role !== undefined ? { role } : {}), rooms: rooms ?? [] };
}

/** Every user may use their inbox `user:<sub>`; other rooms must be granted. */
export function mayUseRoom(identity: ClientIdentity, room: string): boolean {
  if (room === `user:${identity.user.id}`) return true;
  return matchesGrants(identity.rooms, room);
}

export function requireRoom(identity: ClientIdentity, room: string): void {
  if (!mayUseRoom(identity, room)) throw new ApiError("forbidden_room", `your token does not grant room ${room}`);
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "token has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `token is not valid: ${error.reason} (${error.claim})`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "token must be signed with HS256";
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "token signature does not verify";
  return "token is malformed";
}
