/**
 * How client tokens are verified, read from the environment (SPEC §2):
 *
 * - `JWT_SECRET`: one or more HS256 secrets, comma-separated. The first signs
 *   (dev tokens); all verify, so a new secret can be added in front, tokens
 *   signed with the old one keep working until they expire, then the old
 *   one is dropped.
 * - `JWT_PUBLIC_KEYS`: PEM SPKI blocks (one or more, one after the other),
 *   or a JWK set `{"keys":[…]}` (or a single JWK) as JSON.
 * - `JWT_JWKS_URL`: a JWK set the service fetches and caches (jwks.ts).
 * - `JWT_ISSUER`, `JWT_AUDIENCE`: when set (comma-separated for several),
 *   every token must carry a matching `iss` / `aud`.
 * - `JWT_USER_ID_CLAIM` (`sub`), `JWT_NAME_CLAIM` (`name`), `JWT_ROOMS_CLAIM`
 *   (`rooms`): where the identity is, as dotted paths into nested claims.
 *
 * Parsing the keys (PEM import included) happens once per distinct
 * configuration per isolate, not per request.
 */
import { commaList, intVar } from "../../server/config";
import type { Env } from "../../server/env";
import { refuseEndpoint } from "../../server/push/endpoint-policy";
import { misconfigured } from "./misconfigured";
import { importedPublicKey, publicKeyFromPem, type PublicKey } from "./public-keys";

/** Seconds of clock difference tolerated on `exp` and `nbf` between the issuer and this service. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface TokenSettings {
  secrets: Uint8Array[];
  /** Keys of JWT_PUBLIC_KEYS (imported lazily, once): a rejected promise is a misconfiguration. */
  publicKeys: () => Promise<PublicKey[]>;
  jwks?: { url: string; refetchSeconds: number };
  issuer?: string[];
  audience?: string[];
  userIdClaim: string;
  nameClaim: string;
  roomsClaim: string;
}

/** The secrets of JWT_SECRET, in order; the first is the one that signs. */
export function jwtSecrets(env: Env): string[] {
  return commaList(env.JWT_SECRET);
}

const list = (value: string | undefined): string[] | undefined => {
  const items = commaList(value);
  return items.length ? items : undefined;
};

const claimName = (value: string | undefined, fallback: string): string => value?.trim() || fallback;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

async function parsePublicKeys(source: string): Promise<PublicKey[]> {
  // Pasted into a one-line variable, PEM newlines often arrive as the two characters `\n`.
  const text = source.replace(/\\n/g, "\n").trim();
  try {
    if (text.startsWith("{")) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error("looks like JSON but does not parse");
      }
      const keys = typeof json === "object" && json !== null && "keys" in json ? (json as { keys: unknown }).keys : [json];
      if (!Array.isArray(keys) || keys.length === 0) throw new Error(`"keys" must be a non-empty array of JWKs`);
      return await Promise.all(keys.map((jwk, i) => importedPublicKey(jwk, `key ${i + 1}`)));
    }
    const blocks = text.match(PEM_BLOCK);
    if (!blocks) throw new Error(`holds neither PEM blocks ("-----BEGIN PUBLIC KEY-----") nor a JWK set ({"keys":[…]})`);
    return await Promise.all(blocks.map((pem, i) => publicKeyFromPem(pem, `key ${i + 1}`)));
  } catch (error) {
    throw misconfigured("JWT_PUBLIC_KEYS", (error as Error).message);
  }
}

/** Parsed key sets by their source text: a handful of configurations per isolate at most. */
const parsedKeys = new Map<string, Promise<PublicKey[]>>();
const MAX_PARSED = 16;

function publicKeysOf(source: string | undefined): () => Promise<PublicKey[]> {
  if (!source?.trim()) return () => Promise.resolve([]);
  return () => {
    let pending = parsedKeys.get(source);
    if (!pending) {
      if (parsedKeys.size >= MAX_PARSED) parsedKeys.delete(parsedKeys.keys().next().value!);
      parsedKeys.set(source, (pending = parsePublicKeys(source)));
    }
    return pending;
  };
}

function jwksOf(env: Env): TokenSettings["jwks"] {
  const url = env.JWT_JWKS_URL?.trim();
  if (!url) return undefined;
  const refused = refuseEndpoint(url, Boolean(env.JWT_JWKS_ALLOW_HTTP));
  if (refused) {
    const hint = /https|public/.test(refused) ? " (JWT_JWKS_ALLOW_HTTP lifts this for a local identity provider in tests)" : "";
    throw misconfigured("JWT_JWKS_URL", `${refused}${hint}`);
  }
  let refetchSeconds: number;
  try {
    refetchSeconds = intVar(env.JWT_JWKS_REFETCH_SECONDS, 60, "JWT_JWKS_REFETCH_SECONDS");
  } catch (error) {
    throw misconfigured("JWT_JWKS_REFETCH_SECONDS", (error as Error).message);
  }
  return { url, refetchSeconds };
}

const encoder = new TextEncoder();
const cache = new WeakMap<object, TokenSettings>();

/** The settings for this environment (cached per env object); throws server_misconfigured when no key is configured. */
export function tokenSettings(env: Env): TokenSettings {
  const cached = cache.get(env);
  if (cached) return cached;
  const secrets = jwtSecrets(env).map((s) => encoder.encode(s));
  const jwks = jwksOf(env);
  if (!secrets.length && !env.JWT_PUBLIC_KEYS?.trim() && !jwks) {
    throw misconfigured(
      "JWT_SECRET, JWT_PUBLIC_KEYS or JWT_JWKS_URL",
      "no key to verify client tokens is set: add JWT_SECRET to .dev.vars locally (npm start creates one) or run `wrangler secret put JWT_SECRET`, or configure your identity provider's keys",
    );
  }
  const settings: TokenSettings = {
    secrets,
    publicKeys: publicKeysOf(env.JWT_PUBLIC_KEYS),
    ...(jwks ? { jwks } : {}),
    ...(list(env.JWT_ISSUER) ? { issuer: list(env.JWT_ISSUER) } : {}),
    ...(list(env.JWT_AUDIENCE) ? { audience: list(env.JWT_AUDIENCE) } : {}),
    userIdClaim: claimName(env.JWT_USER_ID_CLAIM, "sub"),
    nameClaim: claimName(env.JWT_NAME_CLAIM, "name"),
    roomsClaim: claimName(env.JWT_ROOMS_CLAIM, "rooms"),
  };
  cache.set(env, settings);
  return settings;
}
