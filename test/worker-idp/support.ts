/**
 * Helpers for the identity-provider suites: key pairs made in the test
 * (jose generateKeyPair), tokens signed like a provider signs them, an
 * environment with the token variables a test chooses, and the stand-in
 * JWKS endpoint (test/idp/identity-provider.ts) reached at https://idp.test.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";
import type { Env } from "../../server/env";
import { handle } from "../../worker/router";

export const BASE = "https://rooms.test";

export interface SigningKey {
  alg: string;
  kid?: string;
  privateKey: CryptoKey;
  /** The public key as PEM SPKI, as JWT_PUBLIC_KEYS takes it. */
  pem: string;
  /** The public key as a JWK (with kid and alg when given), as a JWK set holds it. */
  jwk: JWK;
}

export async function signingKey(alg: string, kid?: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), ...(kid ? { kid } : {}), use: "sig" };
  return { alg, ...(kid ? { kid } : {}), privateKey, pem: await exportSPKI(publicKey), jwk };
}

export const jwkSet = (...keys: SigningKey[]) => ({ keys: keys.map((k) => k.jwk) });

export interface SignOptions {
  /** Header kid; the key's own kid by default, `null` for none. */
  kid?: string | null;
  /** When the claims carry no exp: one hour by default. */
  expiresIn?: string | number;
}

/** A token as a provider issues it: the key's alg, its kid, iat and exp. */
export function signToken(key: SigningKey, claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  const kid = options.kid === undefined ? key.kid : options.kid ?? undefined;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: "JWT", ...(kid ? { kid } : {}) }).setIssuedAt();
  // An exp among the claims is the test's to choose.
  if (claims.exp === undefined) jwt.setExpirationTime(options.expiresIn ?? "1h");
  return jwt.sign(key.privateKey);
}

/**
 * The test environment with these token variables on top: a copy, because
 * assigning through an object whose prototype is `env` would write to `env`
 * itself (its setter), changing every later test.
 */
export function withEnv(vars: Partial<Env>): Env {
  return { ...(env as Env), ...vars };
}

/** A request through the Worker's router with that environment. */
export async function fetchWith(appEnv: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await handle(new Request(`${BASE}${path}`, init), appEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

export function postJsonWith(appEnv: Env, path: string, body: unknown, token: string): Promise<Response> {
  return fetchWith(appEnv, path, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** A tenant of the stand-in identity provider no other test uses. */
export function tenant(prefix: string): { name: string; url: string } {
  const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  return { name, url: `https://idp.test/${name}/jwks.json` };
}

export async function publishJwks(tenantName: string, jwks: unknown, options: { cacheControl?: string; status?: number; delayMs?: number } = {}): Promise<void> {
  const response = await fetch(`https://idp.test/${tenantName}/jwks.json`, { method: "PUT", body: JSON.stringify({ jwks, ...options }) });
  if (response.status !== 204) throw new Error(`publishing the key set failed: ${response.status}`);
}

/** How many times the service fetched the tenant's key set. */
export async function jwksHits(tenantName: string): Promise<number> {
  return ((await (await fetch(`https://idp.test/${tenantName}/hits`)).json()) as { hits: number }).hits;
}
