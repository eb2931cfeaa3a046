/**
 * HS256 tokens verified once are remembered (worker/auth/verified-tokens.ts),
 * so a client presenting the same token again skips the signature check. A
 * remembered token must still expire on time, and nothing but the exact
 * token string that was verified may be let in from memory.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { recallVerified, rememberVerified } from "../../worker/auth/verified-tokens";
import { tokenSettings } from "../../worker/auth/token-settings";
import type { Env } from "../../server/env";
import { tokenFor } from "./helpers";
import { expectError, get, uniqueRoom } from "./support";

/** Settings of their own, so these checks share no remembered token with other tests. */
const settings = () => tokenSettings({ ...(env as Env) });

describe("remembered tokens", () => {
  it("are recalled until exp (with the clock tolerance), then forgotten", () => {
    const own = settings();
    const exp = 1_000_000;
    rememberVerified(own, "token-a", { sub: "alice", exp });
    expect(recallVerified(own, "token-a", exp - 1)).toEqual({ sub: "alice", exp });
    expect(recallVerified(own, "token-a", exp + 4)).toEqual({ sub: "alice", exp }); // within the 5 s tolerance, as jose allows
    expect(recallVerified(own, "token-a", exp + 5)).toBeUndefined();
    // Forgotten, not only refused: a later clock reading cannot bring it back.
    expect(recallVerified(own, "token-a", exp - 1)).toBeUndefined();
  });

  it("are not kept when longer than 4 KiB, so the map's size is bounded in bytes too", () => {
    const own = settings();
    rememberVerified(own, "t".repeat(4096), { sub: "dora" });
    rememberVerified(own, "t".repeat(4097), { sub: "erin" });
    expect(recallVerified(own, "t".repeat(4096), 0)).toEqual({ sub: "dora" });
    expect(recallVerified(own, "t".repeat(4097), 0)).toBeUndefined();
  });

  it("belong to the settings they were verified under", () => {
    const [one, other] = [settings(), settings()];
    rememberVerified(one, "token-b", { sub: "bob" });
    expect(recallVerified(one, "token-b", 0)).toEqual({ sub: "bob" });
    expect(recallVerified(other, "token-b", 0)).toBeUndefined();
  });

  it("are bounded: past 10,000 the oldest is forgotten", () => {
    const own = settings();
    for (let i = 0; i <= 10_000; i++) rememberVerified(own, `token-${i}`, { sub: `u${i}` });
    expect(recallVerified(own, "token-0", 0)).toBeUndefined();
    expect(recallVerified(own, "token-1", 0)).toEqual({ sub: "u1" });
    expect(recallVerified(own, "token-10000", 0)).toEqual({ sub: "u10000" });
  });

  it("let in only the exact token verified: a token with the same claims and a forged signature is refused after the real one was accepted", async () => {
    const room = uniqueRoom("remembered");
    const token = await tokenFor("carol");
    expect((await get(`/rooms/${room}/messages`, token)).status).toBe(200);
    expect((await get(`/rooms/${room}/messages`, token)).status).toBe(200);
    const [header, payload] = token.split(".");
    const forged = `${header}.${payload}.${"A".repeat(43)}`;
    await expectError(await get(`/rooms/${room}/messages`, forged), 401, "invalid_token");
  });
});
