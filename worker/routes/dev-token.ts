/**
 * `POST /dev/token` {user, name?} → {token, user, expiresAt}: mints a client
 * JWT for the demo page in local development. It exists only when the var
 * DEV_TOKENS is "1", which `npm start` writes to the git-ignored .dev.vars
 * and which is never set in wrangler.toml; anywhere else it answers 404 like
 * any unknown route. Tokens grant every room and expire after a few hours.
 * Cross-origin callers are refused, so a page on another site cannot mint
 * tokens from a developer's local server even though local CORS allows `*`.
 * They are signed with the first secret of JWT_SECRET and carry JWT_ISSUER
 * and JWT_AUDIENCE when those are set, so the one verification path
 * (worker/auth/client-token.ts) accepts them like any other token.
 */
import { SignJWT } from "jose";
import * as v from "valibot";
import { commaList, MissingSecretError } from "../../server/config";
import { jwtSecrets } from "../auth/token-settings";
import { readJsonBody } from "../http/body";
import { ApiError, json } from "../http/errors";
import type { RouteHandler } from "./context";

const TOKEN_TTL_SECONDS = 4 * 3600;

const bodySchema = v.object({
  user: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_\-.@]{1,64}$/, "must be 1-64 letters, digits or _-.@")),
  name: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty"), v.maxLength(64, "must be at most 64 characters"))),
});

export const mintDevToken: RouteHandler = async (request, env) => {
  const url = new URL(request.url);
  if (env.DEV_TOKENS !== "1") throw new ApiError("not_found", `no route for ${request.method} ${url.pathname}`);
  const origin = request.headers.get("origin");
  if (origin && origin !== url.origin) throw new ApiError("forbidden_origin", "dev tokens are minted for same-origin pages only");
  const { user, name } = await readJsonBody(request, bodySchema, 4096);
  const [secret] = jwtSecrets(env);
  if (!secret) throw new MissingSecretError("JWT_SECRET");
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = now + TOKEN_TTL_SECONDS;
  const jwt = new SignJWT({ name: name ?? user, rooms: ["*"] })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user)
    .setIssuedAt(now)
    .setExpirationTime(expiresAt);
  const [issuer] = commaList(env.JWT_ISSUER);
  const [audience] = commaList(env.JWT_AUDIENCE);
  if (issuer) jwt.setIssuer(issuer);
  if (audience) jwt.setAudience(audience);
  const token = await jwt.sign(new TextEncoder().encode(secret));
  return json({ token, user: { id: user, name: name ?? user }, expiresAt: new Date(expiresAt * 1000).toISOString() });
};
