/**
 * Client identity (SPEC §2): a JWT from `Authorization: Bearer` or (for
 * browser WebSockets and EventSource, which cannot set headers) `?token=`,
 * verified by the one path every client route uses.
 *
 * The token's `alg` picks where its key may come from, and nothing else:
 * HS256 → the secrets of JWT_SECRET; RS256-512, PS256-512, ES256/384, EdDSA → the public
 * keys of JWT_PUBLIC_KEYS and JWT_JWKS_URL whose type verifies that
 * algorithm (public-keys.ts). `kid` selects the key where the token has one;
 * otherwise the keys that fit are tried in order. `exp`/`nbf` are honoured
 * with CLOCK_TOLERANCE_SECONDS of slack, `iss`/`aud` checked when
 * JWT_ISSUER / JWT_AUDIENCE are set. Each refusal says which check failed.
 */
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTVerifyOptions } from "jose";
import type { Env } from "../../server/env";
import { matchesGrants } from "../../server/auth/grants";
import { ApiError } from "../http/errors";
import { remoteKeySet } from "./jwks";
import { describeKeys, PUBLIC_KEY_ALGORITHMS, selectKeys, verificationKey, type PublicKey } from "./public-keys";
import { bearerToken } from "./secrets";
import { identityFrom, type ClientIdentity } from "./token-claims";
import { CLOCK_TOLERANCE_SECONDS, tokenSettings, type TokenSettings } from "./token-settings";
import { recallVerified, rememberVerified } from "./verified-tokens";

export type { ClientIdentity } from "./token-claims";

const invalid = (message: string) => new ApiError("invalid_token", message);

export async function authenticateClient(request: Request, url: URL, env: Env): Promise<ClientIdentity> {
  const token = bearerToken(request) ?? url.searchParams.get("token") ?? undefined;
  if (!token) throw new ApiError("missing_token", "send a JWT as Authorization: Bearer <token> or ?token=<token>");
  const settings = tokenSettings(env);
  // A JWT_PUBLIC_KEYS that does not parse fails every request, whatever the token: never a silent half-configuration.
  await settings.publicKeys();
  const { alg, kid } = tokenHeader(token);
  const payload = await verifyToken(token, alg, kid, settings);
  return identityFrom(payload, settings);
}

function tokenHeader(token: string): { alg: string; kid?: string } {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw invalid("token is malformed");
  }
  const { alg, kid } = header;
  if (typeof alg !== "string") throw invalid("token is malformed: no alg in its header");
  if (kid !== undefined && (typeof kid !== "string" || kid.length > 256)) throw invalid("token is malformed: kid must be a string of at most 256 characters");
  return { alg, ...(kid !== undefined ? { kid } : {}) };
}

async function verifyToken(token: string, alg: string, kid: string | undefined, settings: TokenSettings): Promise<unknown> {
  if (alg === "HS256") {
    // The candidates first: a kid naming a public key is refused even for a token remembered before that key arrived.
    const secrets = await secretCandidates(kid, settings);
    const known = recallVerified(settings, token, Date.now() / 1000);
    if (known) return known;
    const payload = await verifyWith(token, alg, secrets, settings, kid);
    rememberVerified(settings, token, payload as Record<string, unknown>);
    return payload;
  }
  if (!PUBLIC_KEY_ALGORITHMS.has(alg)) {
    throw invalid(`token alg ${JSON.stringify(alg.slice(0, 32))} is not allowed: tokens must be HS256 (JWT_SECRET) or RS256/384/512, PS256/384/512, ES256/384, EdDSA (JWT_PUBLIC_KEYS, JWT_JWKS_URL)`);
  }
  return verifyWith(token, alg, await publicCandidates(alg, kid, settings), settings, kid);
}

/** HS256 is verified with the secrets only; a kid naming a public key is the algorithm-confusion attack. */
async function secretCandidates(kid: string | undefined, settings: TokenSettings): Promise<Uint8Array[]> {
  if (kid !== undefined) {
    const named = (await knownPublicKeys(settings)).find((key) => key.kid === kid);
    if (named) throw invalid(`token alg HS256 is not allowed for key "${kid}": ${describeKeys([named])}`);
  }
  if (!settings.secrets.length) throw invalid(`token alg HS256 is not allowed: no JWT_SECRET is set; the configured keys verify ${describeKeys(await knownPublicKeys(settings))}`);
  return settings.secrets;
}

/** Public keys in memory (JWT_PUBLIC_KEYS and what the JWKS cache holds), without fetching. */
async function knownPublicKeys(settings: TokenSettings): Promise<PublicKey[]> {
  const cached = settings.jwks ? remoteKeySet(settings.jwks.url).cached() : [];
  return [...(await settings.publicKeys()), ...cached];
}

async function allPublicKeys(settings: TokenSettings): Promise<PublicKey[]> {
  const fetched = settings.jwks ? await remoteKeySet(settings.jwks.url).keys(settings.jwks.refetchSeconds) : [];
  return [...(await settings.publicKeys()), ...fetched];
}

async function publicCandidates(alg: string, kid: string | undefined, settings: TokenSettings): Promise<PublicKey[]> {
  let keys = await allPublicKeys(settings);
  if (kid !== undefined && settings.jwks && !keys.some((key) => key.kid === kid)) {
    // A kid we have not seen: the provider may have published a new key since the set was fetched.
    if (await remoteKeySet(settings.jwks.url).refetchForUnknownKid(settings.jwks.refetchSeconds)) keys = await allPublicKeys(settings);
  }
  const selected = selectKeys(keys, alg, kid);
  if ("refusal" in selected) throw invalid(selected.refusal);
  return selected.keys;
}

/**
 * A JWT_SECRET's HMAC key, imported once per secret and isolate. Given raw
 * bytes, jose imports the key on every verify: one more runtime call per
 * authenticated request (each WebSocket, SSE stream and poll), which the
 * long-poll benchmark showed against its floor. The settings are cached per
 * env, so the same bytes come back on every request.
 */
const hmacKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();
function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hmacKeys.set(secret, key);
  }
  return key;
}

async function verifyWith(token: string, alg: string, candidates: (PublicKey | Uint8Array)[], settings: TokenSettings, kid: string | undefined): Promise<unknown> {
  const options: JWTVerifyOptions = {
    algorithms: [alg],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    ...(settings.issuer ? { issuer: settings.issuer } : {}),
    ...(settings.audience ? { audience: settings.audience } : {}),
  };
  for (const candidate of candidates) {
    const key = candidate instanceof Uint8Array ? await hmacKey(candidate) : await verificationKey(candidate, alg);
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (error) {
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) continue; // perhaps the next key
      throw invalid(describeJoseError(error, settings));
    }
  }
  const which = alg === "HS256" ? "any secret of JWT_SECRET" : kid !== undefined && candidates.length === 1 ? `key "${kid}"` : `any of the ${candidates.length} key(s) that verify ${alg}`;
  throw invalid(`token signature does not verify with ${which}`);
}

function describeJoseError(error: unknown, settings: TokenSettings): string {
  if (error instanceof joseErrors.JWTExpired) return "token has expired (exp is in the past)";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const missing = error.reason === "missing";
    if (error.claim === "iss") return `token issuer (iss) ${missing ? "is missing; JWT_ISSUER requires" : "does not match JWT_ISSUER: expected"} ${settings.issuer?.join(" or ")}`;
    if (error.claim === "aud") return `token audience (aud) ${missing ? "is missing; JWT_AUDIENCE requires" : "does not match JWT_AUDIENCE: expected"} ${settings.audience?.join(" or ")}`;
    if (error.claim === "nbf") return "token is not valid yet (nbf is in the future)";
    return `token is not valid: ${error.reason} (${error.claim})`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "token alg is not allowed for this key";
  return "token is malformed";
}

/** Every user may use their inbox `user:<sub>`; other rooms must be granted. */
export function mayUseRoom(identity: ClientIdentity, room: string): boolean {
  if (room === `user:${identity.user.id}`) return true;
  return matchesGrants(identity.rooms, room);
}

export function requireRoom(identity: ClientIdentity, room: string): void {
  if (!mayUseRoom(identity, room)) throw new ApiError("forbidden_room", `your token does not grant room ${room}`);
}
