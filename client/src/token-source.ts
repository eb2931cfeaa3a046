/**
 * Tokens from the host app, for apps that do not hold a token themselves:
 * a `getToken` function (or `tokenFromUrl`, the host's token endpoint
 * fetched with the browser's cookies) is asked for the first token, again
 * shortly before each token expires, and whenever the server refuses one.
 * A failing source is retried with jittered backoff and reported, never
 * asked in a loop.
 */
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { unverifiedClaims } from "./jwt-claims.js";

/** Returns a client JWT for the signed-in user. */
export type GetToken = () => string | Promise<string>;

export interface TokenSourceOptions {
  /** Delays between tries of a failing source. Default 1 s doubling up to 60 s, jittered. */
  backoff?: BackoffOptions;
  /** Ask for a new token this long before the current one expires (at most a fifth of its lifetime). Default 60000 ms. */
  refreshBeforeMs?: number;
}

export interface TokenSourceEvents {
  /** A new token (the first, or a refresh before expiry). */
  token: string;
  /** The source failed; it is asked again in `retryInMs`. */
  failed: { error: Error; retryInMs: number };
}

/** The shortest wait before a scheduled refresh, whatever `exp` says (a clock skewed into the past must not spin). */
const MIN_REFRESH_DELAY_MS = 5_000;

type Timer = ReturnType<typeof setTimeout>;

export class TokenSource extends Emitter<TokenSourceEvents> {
  readonly #backoff: Backoff;
  readonly #refreshBeforeMs: number;
  #inflight?: Promise<string>;
  #timer?: Timer;
  #wake?: () => void;
  #closed = false;

  constructor(
    private readonly getToken: GetToken,
    options: TokenSourceOptions = {},
  ) {
    super();
    this.#backoff = new Backoff({ initialMs: 1_000, maxMs: 60_000, ...options.backoff });
    this.#refreshBeforeMs = options.refreshBeforeMs ?? 60_000;
  }

  /** The first token: tries until the source answers (each failure reported, with backoff); rejects only when closed. */
  async first(): Promise<string> {
    for (;;) {
      if (this.#closed) throw new Error("token source closed");
      try {
        return await this.fetch();
      } catch (error) {
        if (this.#closed) throw error;
        await this.#waitAfter(error);
      }
    }
  }

  /** A fresh token now (concurrent callers share one request); schedules the next refresh from its `exp`. */
  fetch(): Promise<string> {
    this.#inflight ??= this.#ask().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  /** Ends a backoff wait early: "Try again". */
  retryNow(): void {
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }

  async #ask(): Promise<string> {
    const token = await this.getToken();
    if (typeof token !== "string" || token === "") throw new Error("the token source returned no token");
    if (this.#closed) return token;
    this.#backoff.reset();
    this.#scheduleRefresh(token);
    return token;
  }

  #scheduleRefresh(token: string): void {
    clearTimeout(this.#timer);
    const exp = expiresAt(token);
    if (exp === undefined) return;
    const lifetime = exp - Date.now();
    const delay = Math.max(MIN_REFRESH_DELAY_MS, lifetime - Math.min(this.#refreshBeforeMs, lifetime / 5));
    this.#timer = setTimeout(() => void this.#refresh(), delay);
  }

  /** A refresh before expiry; a failure is retried with backoff (the connection in use keeps its token meanwhile). */
  async #refresh(): Promise<void> {
    while (!this.#closed) {
      try {
        this.emit("token", await this.fetch());
        return;
      } catch (error) {
        if (this.#closed) return;
        await this.#waitAfter(error);
      }
    }
  }

  #waitAfter(error: unknown): Promise<void> {
    const retryInMs = this.#backoff.next();
    this.emit("failed", { error: error instanceof Error ? error : new Error(String(error)), retryInMs });
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      this.#timer = setTimeout(done, retryInMs);
    });
  }
}

/** A `GetToken` that asks the host app's endpoint: `GET url` with the browser's cookies, answering `{"token": "…"}`. */
export function tokenFromUrl(url: string, fetchImpl: typeof fetch = (input, init) => globalThis.fetch(input, init)): GetToken {
  return async () => {
    const response = await fetchImpl(url, { credentials: "include", headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`the token endpoint ${url} answered ${response.status}`);
    const body = (await response.json().catch(() => null)) as { token?: unknown } | null;
    if (typeof body?.token !== "string" || body.token === "") throw new Error(`the token endpoint ${url} answered without a "token"`);
    return body.token;
  };
}

/** The token's `exp` in ms (to schedule a refresh). */
function expiresAt(token: string): number | undefined {
  const exp = unverifiedClaims(token)?.exp;
  return typeof exp === "number" ? exp * 1000 : undefined;
}
