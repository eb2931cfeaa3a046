/**
 * Public keys that verify client tokens, whatever form they were configured
 * in (PEM SPKI in JWT_PUBLIC_KEYS, a JWK set there or at JWT_JWKS_URL): each
 * becomes one `PublicKey`, a JWK with the algorithms its type allows. The
 * family is fixed by the key, never by the token, so a token cannot pick how
 * its own signature is checked: an RSA key verifies RS256-512 and PS256-512 only, a P-256
 * key ES256 only, an Ed25519 key EdDSA only, and no public key ever
 * verifies an HMAC (the algorithm-confusion attack) or `none`.
 *
 * All the cryptography is jose's (importSPKI, exportJWK, importJWK).
 */
import { exportJWK, importJWK, importSPKI, type JWK } from "jose";
import * as v from "valibot";

/** The algorithms each key type verifies (RFC 7518 §3, RFC 8037, RFC 9864). */
const FAMILIES = {
  RSA: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
  "P-256": ["ES256"],
  "P-384": ["ES384"],
  Ed25519: ["EdDSA", "Ed25519"],
} as const satisfies Record<string, readonly string[]>;

export type KeyFamily = keyof typeof FAMILIES;

/** Every algorithm some public key may verify. */
export const PUBLIC_KEY_ALGORITHMS: ReadonlySet<string> = new Set(Object.values(FAMILIES).flat());

export interface PublicKey {
  kid?: string;
  family: KeyFamily;
  /** The algorithms this key verifies: its family's, or only the JWK's own `alg` when it names one. */
  algorithms: readonly string[];
  jwk: JWK;
  /** How messages and logs name the key, without its material: `JWT_PUBLIC_KEYS key 2`, `kid "abc"`. */
  label: string;
}

/** A JWK's public members as the service needs them; anything else is ignored. */
const jwkSchema = v.looseObject({
  kty: v.picklist(["RSA", "EC", "OKP"], "kty must be RSA, EC or OKP (symmetric keys belong in JWT_SECRET)"),
  kid: v.optional(v.pipe(v.string("kid must be a string"), v.maxLength(256, "kid must be at most 256 characters"))),
  alg: v.optional(v.string("alg must be a string")),
  use: v.optional(v.string("use must be a string")),
  crv: v.optional(v.string("crv must be a string")),
  n: v.optional(v.string()),
  d: v.optional(v.unknown()),
});

/** RSA keys shorter than this are refused (jose refuses to verify with them too). */
const MIN_RSA_MODULUS_BYTES = 256;

function familyOf(jwk: v.InferOutput<typeof jwkSchema>): KeyFamily {
  if (jwk.kty === "RSA") {
    // base64url: 4 characters carry 3 bytes.
    if (!jwk.n || Math.floor((jwk.n.length * 3) / 4) < MIN_RSA_MODULUS_BYTES) throw new Error("is an RSA key shorter than 2048 bits");
    return "RSA";
  }
  if (jwk.kty === "EC" && (jwk.crv === "P-256" || jwk.crv === "P-384")) return jwk.crv;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "Ed25519";
  throw new Error(`is an ${jwk.kty} key on curve ${jwk.crv ?? "(none)"}; supported are RSA, EC P-256, EC P-384 and OKP Ed25519`);
}

/**
 * A verification key from a JWK, or an Error saying (without the key's
 * material) why it cannot be one.
 */
export function publicKeyFromJwk(input: unknown, label: string): PublicKey {
  const parsed = v.safeParse(jwkSchema, input);
  if (!parsed.success) throw new Error(`${label} is not a usable JWK: ${parsed.issues[0]?.message}`);
  const jwk = parsed.output;
  const named = jwk.kid !== undefined ? `${label} (kid "${jwk.kid}")` : label;
  if (jwk.d !== undefined) throw new Error(`${named} is a private key: configure only its public part`);
  if (jwk.use !== undefined && jwk.use !== "sig") throw new Error(`${named} is for use "${jwk.use}", not "sig"`);
  let family: KeyFamily;
  try {
    family = familyOf(jwk);
  } catch (error) {
    throw new Error(`${named} ${(error as Error).message}`);
  }
  const allowed: readonly string[] = FAMILIES[family];
  if (jwk.alg !== undefined && !allowed.includes(jwk.alg)) throw new Error(`${named} names alg ${jwk.alg}, which a ${family} key does not verify`);
  return { ...(jwk.kid !== undefined ? { kid: jwk.kid } : {}), family, algorithms: jwk.alg ? [jwk.alg] : allowed, jwk: jwk as JWK, label: named };
}

/**
 * publicKeyFromJwk, and the key material imported once (with its first
 * algorithm) so that a key jose cannot use (a broken modulus, a point off
 * its curve, `key_ops` without "verify") is found when configured, not
 * when a token arrives.
 */
export async function importedPublicKey(input: unknown, label: string): Promise<PublicKey> {
  const key = publicKeyFromJwk(input, label);
  try {
    await verificationKey(key, key.algorithms[0]!);
  } catch {
    throw new Error(`${key.label} is not a valid ${key.family} public key`);
  }
  return key;
}

/** The algorithm to import a PEM with, per key type jose can tell apart by trying. */
const PEM_PROBES = ["RS256", "ES256", "ES384", "EdDSA"] as const;

/** A verification key from one PEM `-----BEGIN PUBLIC KEY-----` block (SPKI). */
export async function publicKeyFromPem(pem: string, label: string): Promise<PublicKey> {
  if (!pem.startsWith("-----BEGIN PUBLIC KEY-----")) {
    const kind = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1] ?? "unknown";
    throw new Error(`${label} is a PEM "${kind}" block; expected "PUBLIC KEY" (SPKI; convert with \`openssl pkey -pubin -in key.pem\` or \`openssl x509 -pubkey -noout -in cert.pem\`)`);
  }
  for (const alg of PEM_PROBES) {
    let jwk: JWK;
    try {
      jwk = await exportJWK(await importSPKI(pem, alg, { extractable: true }));
    } catch {
      continue; // not this key type
    }
    return publicKeyFromJwk(jwk, label);
  }
  throw new Error(`${label} is not an RSA, EC P-256, EC P-384 or Ed25519 public key in PEM SPKI form`);
}

const imported = new WeakMap<PublicKey, Map<string, Promise<CryptoKey | Uint8Array>>>();

/** The key as jose verifies `alg` with it, imported once per key and algorithm. */
export function verificationKey(key: PublicKey, alg: string): Promise<CryptoKey | Uint8Array> {
  let byAlg = imported.get(key);
  if (!byAlg) imported.set(key, (byAlg = new Map()));
  let pending = byAlg.get(alg);
  if (!pending) {
    pending = importJWK(key.jwk, alg);
    pending.catch(() => byAlg.delete(alg));
    byAlg.set(alg, pending);
  }
  return pending;
}

/**
 * The keys that may verify a token with this alg and kid, in order, or why
 * there are none. A kid picks the keys that carry it, which must verify the
 * alg; keys without a kid (PEM keys have none) serve tokens without a kid
 * and tokens whose kid no key carries.
 */
export function selectKeys(keys: readonly PublicKey[], alg: string, kid: string | undefined): { keys: PublicKey[] } | { refusal: string } {
  const named = kid === undefined ? [] : keys.filter((key) => key.kid === kid);
  if (named.length) {
    const fitting = named.filter((key) => key.algorithms.includes(alg));
    return fitting.length ? { keys: fitting } : { refusal: `token alg ${alg} is not allowed for key "${kid}": ${describeKeys(named)}` };
  }
  const unnamed = keys.filter((key) => key.algorithms.includes(alg) && (kid === undefined || key.kid === undefined));
  if (unnamed.length) return { keys: unnamed };
  if (kid !== undefined && keys.some((key) => key.algorithms.includes(alg))) return { refusal: `token kid "${kid}" is unknown: no configured key has it` };
  if (!keys.length) return { refusal: `token alg ${alg} is not allowed: no JWT_PUBLIC_KEYS or JWT_JWKS_URL is set, only JWT_SECRET (HS256)` };
  return { refusal: `token alg ${alg} is not allowed: no configured key verifies it (the keys verify ${describeKeys(keys)})` };
}

/** A short summary for messages: `RSA (RS256, RS384, …)`. */
export function describeKeys(keys: readonly PublicKey[]): string {
  const families = [...new Set(keys.map((k) => `${k.family} (${k.algorithms.join(", ")})`))];
  return families.length ? families.join("; ") : "none";
}
