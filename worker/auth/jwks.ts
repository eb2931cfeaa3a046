/**
 * The key set at JWT_JWKS_URL, cached per isolate (SPEC §2).
 *
 * - Fetched on first use, then kept for the answer's `Cache-Control:
 *   max-age`, bounded to [JWT_JWKS_REFETCH_SECONDS, 24 h] (10 minutes when
 *   the answer gives none). Requests never wait for a fetch while the set
 *   is fresh: a fetch is never per request.
 * - A token whose `kid` is not in the set triggers one refetch, at most once
 *   per JWT_JWKS_REFETCH_SECONDS (60 by default), so a provider's new key is
 *   picked up at once and a stream of made-up kids costs one fetch a minute.
 * - A failed fetch keeps the cached set in use (logged once) and is not
 *   retried for min(JWT_JWKS_REFETCH_SECONDS, 10) seconds. With nothing
 *   cached, requests that need the set are `500 server_misconfigured` until
 *   a fetch succeeds; nothing is let in.
 * - The fetch does not follow redirects, gives up after 5 s, and reads at
 *   most 256 KiB. The URL itself passed the endpoint policy (https, public
 *   host) in token-settings.ts.
 *
 * jose's createRemoteJWKSet is not used because it has no stale-on-error
 * cache and ignores Cache-Control; the fetched set is checked key by key
 * with the same code as JWT_PUBLIC_KEYS (public-keys.ts).
 */
import * as v from "valibot";
import { readCappedBytes } from "../http/body";
import { ApiError } from "../http/errors";
import { misconfigured } from "./misconfigured";
import { importedPublicKey, type PublicKey } from "./public-keys";

const FETCH_TIMEOUT_MS = 5_000;
const MAX_JWKS_BYTES = 256 * 1024;
const MAX_KEYS = 100;
const DEFAULT_LIFETIME_SECONDS = 600;
const MAX_LIFETIME_SECONDS = 24 * 3600;
const MAX_FAILURE_RETRY_SECONDS = 10;

const keySetSchema = v.object({ keys: v.pipe(v.array(v.unknown(), "keys must be an array"), v.maxLength(MAX_KEYS, `at most ${MAX_KEYS} keys`)) });

/** How long a fetched set is fresh: its max-age within [floor, 24 h]; no-store / no-cache mean the floor. */
export function keySetLifetimeSeconds(cacheControl: string | null, floorSeconds: number): number {
  const directives = (cacheControl ?? "").toLowerCase();
  if (/(^|[,\s])(no-store|no-cache)([,\s=]|$)/.test(directives)) return floorSeconds;
  const maxAge = /(^|[,\s])max-age\s*=\s*"?(\d{1,10})"?/.exec(directives)?.[2];
  const wanted = maxAge === undefined ? DEFAULT_LIFETIME_SECONDS : Number(maxAge);
  return Math.min(Math.max(wanted, floorSeconds), Math.max(MAX_LIFETIME_SECONDS, floorSeconds));
}

interface FetchedSet {
  keys: PublicKey[];
  lifetimeSeconds: number;
}

async function fetchKeySet(url: string, floorSeconds: number): Promise<FetchedSet> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException("timed out", "TimeoutError")), FETCH_TIMEOUT_MS);
  try {
    let response: Response;
    try {
      response = await fetch(url, { headers: { accept: "application/jwk-set+json, application/json" }, redirect: "manual", signal: abort.signal });
    } catch (error) {
      throw new Error(abort.signal.aborted ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : `network error: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new Error(`answered ${response.status}, a redirect (not followed: configure the final URL)`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`answered HTTP ${response.status}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(await readCappedBytes(response, MAX_JWKS_BYTES)));
    } catch (error) {
      if (error instanceof ApiError) throw new Error(`answered more than ${MAX_JWKS_BYTES} bytes`);
      throw new Error(error instanceof SyntaxError ? "answered something that is not JSON" : `failed while reading: ${String(error)}`);
    }
    const set = v.safeParse(keySetSchema, json);
    if (!set.success) throw new Error(`answered JSON that is not a JWK set: ${set.issues[0]?.message}`);
    const keys: PublicKey[] = [];
    for (const [i, jwk] of set.output.keys.entries()) {
      try {
        keys.push(await importedPublicKey(jwk, `key ${i + 1} of the set`));
      } catch (error) {
        // Providers publish encryption keys and newer key types beside signing keys: skip those, say so once.
        misconfigured("JWT_JWKS_URL", `skipping ${(error as Error).message}`);
      }
    }
    if (!keys.length) throw new Error("answered a set with no usable signing key");
    return { keys, lifetimeSeconds: keySetLifetimeSeconds(response.headers.get("cache-control"), floorSeconds) };
  } finally {
    clearTimeout(timer);
  }
}

/** One JWKS URL's cache in this isolate. */
class RemoteKeySet {
  #keys?: PublicKey[];
  #freshUntil = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastKidRefetchAt = Number.NEGATIVE_INFINITY;
  #lastError?: string;
  #inflight?: Promise<void>;

  constructor(readonly url: string) {}

  /** The keys, fetched on first use and refreshed when stale; cached keys outlive a failing endpoint. */
  async keys(refetchSeconds: number): Promise<PublicKey[]> {
    const now = Date.now();
    const mayRetry = now - this.#lastAttemptAt >= Math.min(refetchSeconds, MAX_FAILURE_RETRY_SECONDS) * 1000;
    if ((!this.#keys || now >= this.#freshUntil) && mayRetry) await this.#refresh(refetchSeconds);
    // Nothing cached yet, but another request's fetch is under way: wait for it rather than fail.
    else if (!this.#keys && this.#inflight) await this.#inflight;
    if (!this.#keys) throw misconfigured("JWT_JWKS_URL", `could not fetch the key set (${this.#lastError ?? "no answer yet"}); no key is cached, so tokens signed with it cannot be verified`);
    return this.#keys;
  }

  /** Keys already in memory, without fetching. */
  cached(): PublicKey[] {
    return this.#keys ?? [];
  }

  /** A token names a kid the set does not have: refetch, at most once per refetchSeconds. True when a fetch ran. */
  async refetchForUnknownKid(refetchSeconds: number): Promise<boolean> {
    const now = Date.now();
    const kidRefetchedRecently = now - this.#lastKidRefetchAt < refetchSeconds * 1000;
    const failedRecently = this.#lastError !== undefined && now - this.#lastAttemptAt < Math.min(refetchSeconds, MAX_FAILURE_RETRY_SECONDS) * 1000;
    if (kidRefetchedRecently || failedRecently) return false;
    this.#lastKidRefetchAt = now;
    await this.#refresh(refetchSeconds);
    return true;
  }

  /** One fetch at a time: concurrent requests share it. */
  #refresh(refetchSeconds: number): Promise<void> {
    this.#inflight ??= this.#load(refetchSeconds).finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #load(refetchSeconds: number): Promise<void> {
    this.#lastAttemptAt = Date.now();
    try {
      const fetched = await fetchKeySet(this.url, refetchSeconds);
      this.#keys = fetched.keys;
      this.#freshUntil = Date.now() + fetched.lifetimeSeconds * 1000;
      this.#lastError = undefined;
    } catch (error) {
      this.#lastError = (error as Error).message;
      if (this.#keys) misconfigured("JWT_JWKS_URL", `could not refresh the key set (${this.#lastError}); still using the ${this.#keys.length} cached key(s)`);
    }
  }
}

const sets = new Map<string, RemoteKeySet>();
const MAX_SETS = 16;

/** The cache for `url` in this isolate. */
export function remoteKeySet(url: string): RemoteKeySet {
  let set = sets.get(url);
  if (!set) {
    if (sets.size >= MAX_SETS) sets.delete(sets.keys().next().value!);
    sets.set(url, (set = new RemoteKeySet(url)));
  }
  return set;
}
