/**
 * The client's JWT and its refresh hook. When the server answers
 * `invalid_token` (expired, rotated secret…), the hook is asked for a new
 * one; concurrent callers share one refresh. A hook that keeps returning
 * tokens the server refuses is given up on after a few tries in a row, so a
 * misconfigured app goes offline with the error instead of spinning.
 */
import type { UserRef } from "../../protocol/envelope.js";
import { RoomError } from "./errors.js";
import { unverifiedClaims } from "./jwt-claims.js";

/** Called with the server's error when it refuses the token; returns a fresh token. */
export type RefreshToken = (error: RoomError) => string | Promise<string>;

/** Refreshes in a row without the server accepting any token in between. */
const MAX_REFRESHES_IN_A_ROW = 3;

export class TokenKeeper {
  #token: string;
  #version = 0;
  #refreshesInARow = 0;
  #refreshing?: Promise<boolean>;

  constructor(
    token: string,
    private readonly hook?: RefreshToken,
  ) {
    this.#token = token;
  }

  get current(): string {
    return this.#token;
  }

  /** Grows by one with every new token, so callers can tell a refresh happened meanwhile. */
  get version(): number {
    return this.#version;
  }

  /** Replaces the token (the app got a new one by itself). */
  set(token: string): void {
    if (token === this.#token) return;
    this.#token = token;
    this.#version++;
  }

  /** The server accepted the token: refreshes in a row start over. */
  accepted(): void {
    this.#refreshesInARow = 0;
  }

  /**
   * Asks the hook for a new token after `error` (an `invalid_token`). Resolves
   * true when there is a new token to retry with, false when there is none
   * (no hook, the hook failed, or too many refused refreshes in a row).
   */
  refresh(error: RoomError): Promise<boolean> {
    this.#refreshing ??= this.#refresh(error).finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #refresh(error: RoomError): Promise<boolean> {
    if (!this.hook || this.#refreshesInARow >= MAX_REFRESHES_IN_A_ROW) return false;
    this.#refreshesInARow++;
    try {
      const token = await this.hook(error);
      if (typeof token !== "string" || token === "") return false;
      this.#token = token;
      this.#version++;
      return true;
    } catch {
      return false;
    }
  }

  /** The user the token names (`sub`, `name`), read without verifying it: for display only. */
  user(): UserRef | undefined {
    const claims = unverifiedClaims(this.#token);
    if (typeof claims?.sub !== "string") return undefined;
    return { id: claims.sub, name: typeof claims.name === "string" ? claims.name : claims.sub };
  }
}
