/**
 * HS256 tokens this isolate has verified, so that a client presenting the
 * same token again (a long-poll every few seconds, a reconnecting socket)
 * costs a map lookup instead of a signature check. Only HS256: its keys are
 * JWT_SECRET, fixed for the life of the isolate (a new secret is a new
 * deployment), whereas a provider's key can leave its JWKS at any moment
 * and its tokens must be refused from then on.
 *
 * A remembered token is still checked against the clock on every use: once
 * its `exp` (with the same tolerance as jose's check) has passed it is
 * forgotten and verified afresh, which refuses it with the usual message.
 * The map is per token settings (so per JWT_SECRET, issuer and audience)
 * and bounded: past MAX_TOKENS the oldest entry goes, and a token longer
 * than MAX_TOKEN_CHARS is not remembered at all.
 */
import { CLOCK_TOLERANCE_SECONDS, type TokenSettings } from "./token-settings";

const MAX_TOKENS = 10_000;
/** Longer tokens are verified every time, so the map holds at most MAX_TOKENS × this (plus their claims). */
const MAX_TOKEN_CHARS = 4096;

type Payload = Record<string, unknown>;

const bySettings = new WeakMap<TokenSettings, Map<string, Payload>>();

/** The payload of a token verified before and not expired since, or undefined. */
export function recallVerified(settings: TokenSettings, token: string, nowSeconds: number): Payload | undefined {
  const tokens = bySettings.get(settings);
  const payload = tokens?.get(token);
  if (!payload) return undefined;
  if (typeof payload.exp === "number" && payload.exp <= nowSeconds - CLOCK_TOLERANCE_SECONDS) {
    tokens!.delete(token);
    return undefined;
  }
  return payload;
}

/** Remembers a token whose signature and claims were just verified. */
export function rememberVerified(settings: TokenSettings, token: string, payload: Payload): void {
  if (token.length > MAX_TOKEN_CHARS) return;
  let tokens = bySettings.get(settings);
  if (!tokens) bySettings.set(settings, (tokens = new Map()));
  if (tokens.size >= MAX_TOKENS) tokens.delete(tokens.keys().next().value!);
  tokens.set(token, payload);
}
