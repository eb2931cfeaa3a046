/**
 * Pusher's HTTP API request signatures ("authentication signatures" in
 * Pusher's HTTP API reference), as the official server SDKs make them.
 *
 * Every request carries in its query `auth_key`, `auth_timestamp` (Unix
 * seconds), `auth_version=1.0`, `body_md5` (hex MD5 of the raw body; required
 * when there is a body) and `auth_signature`, the hex HMAC-SHA256 with the
 * app secret of
 *
 *     METHOD \n PATH \n k1=v1&k2=v2…
 *
 * where the last line is every query parameter but `auth_signature`, keys
 * lowercased and sorted, values not URL-escaped (the SDKs put them in the URL
 * raw, so what they signed is what a percent-decoding of the URL gives back).
 * A request is accepted when all of it checks out; each refusal is a 401
 * whose message says which part failed. Nothing here compares a secret-derived
 * value with `===`: signatures and keys go through `secretsEqual`.
 */
import * as v from "valibot";
import { PUSHER_AUTH_VERSION, pusherAuthQuerySchema } from "../../protocol/pusher-http";
import { describeIssues } from "../../protocol/schemas";
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { hmacSha256Hex } from "../../server/auth/hmac-hex";
import { secretsEqual } from "../../server/auth/secrets-equal";
import { ApiError } from "../http/errors";

/** How far `auth_timestamp` may be from the server's clock, either way (Pusher's window). */
export const PUSHER_TIMESTAMP_WINDOW_SECONDS = 600;
/** Query parameters a request may carry; more is refused before any hashing. */
const MAX_QUERY_PARAMS = 32;
const AUTH_PARAMS = ["auth_key", "auth_timestamp", "auth_version", "auth_signature"] as const;

/** The string Pusher signs: method, path, then the sorted `k=v` pairs. */
export function stringToSign(method: string, path: string, params: Record<string, string>): string {
  const pairs = Object.keys(params)
    .sort()
    .map((key) => `${key}=${params[key]}`);
  return `${method.toUpperCase()}\n${path}\n${pairs.join("&")}`;
}

/** workerd implements MD5 in `crypto.subtle.digest` (a non-standard algorithm, for exactly this kind of legacy check). */
export async function md5Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("MD5", bytes));
}

/**
 * The query as the signer saw it: keys lowercased, values percent-decoded
 * (a `+` stays a `+`: the SDKs never form-encode). A parameter given twice
 * is refused, since the signed string could not say which one was meant.
 */
export function signedParams(url: URL): Record<string, string> {
  const params: Record<string, string> = Object.create(null);
  const query = url.search.slice(1);
  if (!query) return params;
  const parts = query.split("&");
  if (parts.length > MAX_QUERY_PARAMS) throw new ApiError("invalid_query", `at most ${MAX_QUERY_PARAMS} query parameters`);
  for (const part of parts) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decodeParam(eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? "" : decodeParam(part.slice(eq + 1));
    if (Object.hasOwn(params, key)) throw new ApiError("invalid_query", `${key}: given more than once`);
    params[key] = value;
  }
  return params;
}

/**
 * Checks a Pusher-signed request against PUSHER_KEY / PUSHER_SECRET.
 * `body` is the raw request body (empty for GET). Returns the query's
 * parameters other than the auth ones, for the route to validate.
 */
export async function verifyPusherRequest(request: Request, url: URL, body: Uint8Array, env: Env, now = Date.now()): Promise<Record<string, string>> {
  const key = requireSecret(env, "PUSHER_KEY");
  const secret = requireSecret(env, "PUSHER_SECRET");
  const params = signedParams(url);
  for (const name of AUTH_PARAMS) {
    if (!(name in params)) throw new ApiError("missing_token", `${name}: missing; sign the request as Pusher's HTTP API does (auth_key, auth_timestamp, auth_version, body_md5, auth_signature)`);
  }
  const parsed = v.safeParse(pusherAuthQuerySchema, params);
  if (!parsed.success) throw new ApiError("invalid_token", describeIssues(parsed.issues));
  const auth = parsed.output;
  if (auth.auth_version !== PUSHER_AUTH_VERSION) throw new ApiError("invalid_token", `auth_version: only ${PUSHER_AUTH_VERSION} is supported`);
  if (!(await secretsEqual(auth.auth_key, key))) throw new ApiError("invalid_token", "auth_key: not this app's key (PUSHER_KEY)");
  // Whole seconds, as the SDKs stamp them (they truncate).
  const skew = Math.abs(Math.floor(now / 1000) - auth.auth_timestamp);
  if (skew > PUSHER_TIMESTAMP_WINDOW_SECONDS) {
    throw new ApiError("invalid_token", `auth_timestamp: ${skew} s away from the server's clock; at most ${PUSHER_TIMESTAMP_WINDOW_SECONDS} s is accepted`);
  }
  await checkBodyMd5(body, auth.body_md5);
  const { auth_signature: signature, ...signed } = params;
  const expected = await hmacSha256Hex(secret, stringToSign(request.method, decodedPath(url), signed));
  if (!(await secretsEqual(signature!.toLowerCase(), expected))) {
    throw new ApiError("invalid_token", "auth_signature: does not match the request (method, path and query signed with PUSHER_SECRET)");
  }
  const rest: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(signed)) if (!name.startsWith("auth_") && name !== "body_md5") rest[name] = value;
  return rest;
}

/** A body must come with its MD5, and match it; a body_md5 without a body must be the MD5 of nothing. */
async function checkBodyMd5(body: Uint8Array, given: string | undefined): Promise<void> {
  if (given === undefined) {
    if (body.byteLength > 0) throw new ApiError("missing_token", "body_md5: missing; requests with a body carry the hex MD5 of the body");
    return;
  }
  // MD5 of a body we already hold is not a secret: a plain comparison leaks nothing.
  if ((await md5Hex(body)) !== given.toLowerCase()) throw new ApiError("invalid_token", "body_md5: does not match the body");
}

/** The path as the SDKs sign it: unescaped. */
function decodedPath(url: URL): string {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    throw new ApiError("invalid_query", "the path is not valid percent-encoding");
  }
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError("invalid_query", "the query is not valid percent-encoding");
  }
}

function toHex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
