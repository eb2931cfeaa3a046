/**
 * SPEC §2, JWT_JWKS_URL: the key set is fetched once and cached per isolate
 * (Cache-Control max-age within bounds), refetched on an unknown kid at most
 * once per JWT_JWKS_REFETCH_SECONDS, served from cache while the endpoint
 * fails, and with nothing cached a failing endpoint is 500
 * server_misconfigured that lets nothing in. Redirects are not followed;
 * the URL must be https on a public host unless JWT_JWKS_ALLOW_HTTP is set.
 * The endpoint is the stand-in of test/idp/identity-provider.ts, which
 * counts its fetches.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { keySetLifetimeSeconds } from "../../worker/auth/jwks";
import { expectError } from "../worker/support";
import { bearer, fetchWith, jwkSet, jwksHits, publishJwks, signingKey, signToken, tenant, withEnv } from "./support";

const claims = { sub: "kim", rooms: ["*"] };
const status = async (appEnv: ReturnType<typeof withEnv>, token: string) => (await fetchWith(appEnv, "/rooms/lobby/messages", bearer(token))).status;

afterEach(() => vi.restoreAllMocks());

describe("JWKS cache", () => {
  it("fetches the set once, not per request", async () => {
    const [a, b] = await Promise.all([signingKey("ES256", "a"), signingKey("EdDSA", "b")]);
    const idp = tenant("once");
    await publishJwks(idp.name, jwkSet(a, b), { cacheControl: "max-age=3600" });
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url });
    const tokens = await Promise.all([signToken(a, claims), signToken(b, claims), signToken(a, { ...claims, sub: "lee" })]);
    // Concurrent first requests share one fetch.
    expect(await Promise.all(tokens.map((t) => status(appEnv, t)))).toEqual([200, 200, 200]);
    for (const token of tokens) expect(await status(appEnv, token)).toBe(200);
    expect(await jwksHits(idp.name)).toBe(1);
  });

  it("an unknown kid refetches once, picking up a new key; more unknown kids within the minute fetch nothing", async () => {
    const [old, rotated, made] = await Promise.all([signingKey("RS256", "2025-01"), signingKey("RS256", "2025-07"), signingKey("RS256", "made-up")]);
    const idp = tenant("rotate");
    await publishJwks(idp.name, jwkSet(old));
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url });
    expect(await status(appEnv, await signToken(old, claims))).toBe(200);
    // The provider publishes its next key; a token signed with it arrives.
    await publishJwks(idp.name, jwkSet(old, rotated));
    expect(await status(appEnv, await signToken(rotated, claims))).toBe(200);
    expect(await status(appEnv, await signToken(old, claims))).toBe(200);
    expect(await jwksHits(idp.name)).toBe(2);
    // A stream of made-up kids: refused, and no fetch for any of them within JWT_JWKS_REFETCH_SECONDS (60).
    for (const kid of ["made-up", "x1", "x2"]) {
      expect(await expectError(await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(made, claims, { kid }))), 401, "invalid_token")).toBe(`token kid "${kid}" is unknown: no configured key has it`);
    }
    expect(await jwksHits(idp.name)).toBe(2);
  });

  it("keeps working from cache when the endpoint goes down after a first fetch", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const [key, unknown] = await Promise.all([signingKey("ES256", "live"), signingKey("ES256", "new")]);
    const idp = tenant("down-later");
    await publishJwks(idp.name, jwkSet(key));
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url });
    const token = await signToken(key, claims);
    expect(await status(appEnv, token)).toBe(200);
    await publishJwks(idp.name, jwkSet(key), { status: 503 });
    // An unknown kid makes the service look again: the fetch fails (503), the cached key stays in use.
    await expectError(await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(unknown, claims))), 401, "invalid_token");
    expect(await jwksHits(idp.name)).toBe(2);
    expect(await status(appEnv, token)).toBe(200);
  });

  it("keeps working from cache when the set has expired and the endpoint is down", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("EdDSA", "ttl");
    const idp = tenant("expired");
    // max-age=0 and no floor (JWT_JWKS_REFETCH_SECONDS=0): every request finds the set stale and tries again.
    await publishJwks(idp.name, jwkSet(key), { cacheControl: "max-age=0" });
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url, JWT_JWKS_REFETCH_SECONDS: "0" });
    const token = await signToken(key, claims);
    expect(await status(appEnv, token)).toBe(200);
    await publishJwks(idp.name, jwkSet(key), { cacheControl: "max-age=0", status: 500 });
    expect(await status(appEnv, token)).toBe(200);
    expect(await status(appEnv, token)).toBe(200);
    expect(await jwksHits(idp.name)).toBe(3);
    const logged = errors.mock.calls.map((call) => String(call[0])).filter((line) => line.includes(idp.name) || line.includes("could not refresh"));
    expect(logged).toEqual(["server misconfigured: JWT_JWKS_URL: could not refresh the key set (answered HTTP 500); still using the 1 cached key(s)"]);
  });

  it("down before any fetch: 500 server_misconfigured naming JWT_JWKS_URL, nothing let in, no fetch per request", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("RS256", "k");
    const idp = tenant("down-first");
    await publishJwks(idp.name, jwkSet(key), { status: 503 });
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url });
    const token = await signToken(key, claims);
    for (let i = 0; i < 3; i++) {
      const message = await expectError(await fetchWith(appEnv, "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured");
      expect(message).toBe("JWT_JWKS_URL: could not fetch the key set (answered HTTP 503); no key is cached, so tokens signed with it cannot be verified");
    }
    // One fetch: the next attempt waits min(JWT_JWKS_REFETCH_SECONDS, 10) seconds.
    expect(await jwksHits(idp.name)).toBe(1);
    expect(errors.mock.calls.filter((call) => String(call[0]).includes("could not fetch the key set"))).toHaveLength(1);
    // Tokens from JWT_SECRET do not depend on the JWKS.
    const { tokenFor } = await import("../worker/helpers");
    expect(await status(appEnv, await tokenFor("hs"))).toBe(200);
  });

  it("does not follow redirects, and reads only https URLs on public hosts unless JWT_JWKS_ALLOW_HTTP is set", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("ES256", "r");
    const token = await signToken(key, claims);
    const moved = tenant("redirect");
    await publishJwks(moved.name, jwkSet(key), { status: 302 });
    expect(await expectError(await fetchWith(withEnv({ JWT_JWKS_URL: moved.url }), "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured")).toMatch(/answered 302, a redirect \(not followed/);
    expect(await jwksHits(moved.name)).toBe(1);

    const plain = tenant("http");
    await publishJwks(plain.name, jwkSet(key));
    const httpUrl = plain.url.replace("https:", "http:");
    for (const url of [httpUrl, "https://127.0.0.1/jwks.json", "https://10.1.2.3/jwks.json", "https://[::1]/jwks.json", "https://idp.localhost/jwks.json", "https://intranet/jwks.json", "https://user:pw@idp.test/a/jwks.json"]) {
      const message = await expectError(await fetchWith(withEnv({ JWT_JWKS_URL: url }), "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured");
      expect(message, url).toMatch(/^JWT_JWKS_URL: must /);
    }
    expect(await jwksHits(plain.name)).toBe(0);
    expect(await status(withEnv({ JWT_JWKS_URL: httpUrl, JWT_JWKS_ALLOW_HTTP: "1" }), token)).toBe(200);
    expect(await jwksHits(plain.name)).toBe(1);
  });

  it("gives up on an endpoint that does not answer within 5 s", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("ES256", "slow");
    const idp = tenant("slow");
    await publishJwks(idp.name, jwkSet(key), { delayMs: 8_000 });
    const message = await expectError(await fetchWith(withEnv({ JWT_JWKS_URL: idp.url }), "/rooms/lobby/messages", bearer(await signToken(key, claims))), 500, "server_misconfigured");
    expect(message).toBe("JWT_JWKS_URL: could not fetch the key set (no answer within 5 s); no key is cached, so tokens signed with it cannot be verified");
  });

  it("refuses a set over 256 KiB or over 100 keys", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("ES256", "big");
    const token = await signToken(key, claims);
    const padded = tenant("padded");
    await publishJwks(padded.name, { ...jwkSet(key), padding: "x".repeat(300 * 1024) });
    expect(await expectError(await fetchWith(withEnv({ JWT_JWKS_URL: padded.url }), "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured")).toMatch(/answered more than 262144 bytes/);
    const crowded = tenant("crowded");
    await publishJwks(crowded.name, { keys: Array.from({ length: 101 }, (_, i) => ({ ...key.jwk, kid: `k${i}` })) });
    expect(await expectError(await fetchWith(withEnv({ JWT_JWKS_URL: crowded.url }), "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured")).toMatch(/answered JSON that is not a JWK set: at most 100 keys/);
  });

  it("skips keys a set publishes for other uses and keeps the signing keys", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("RS256", "sig-1");
    const idp = tenant("mixed");
    const encryption = { ...key.jwk, kid: "enc-1", use: "enc" };
    const verifyless = { ...key.jwk, kid: "wrap-1", use: undefined, key_ops: ["wrapKey"] };
    await publishJwks(idp.name, { keys: [encryption, { kty: "EC", crv: "P-521", x: "AA", y: "AA", kid: "p521" }, verifyless, key.jwk] });
    const appEnv = withEnv({ JWT_JWKS_URL: idp.url });
    expect(await status(appEnv, await signToken(key, claims))).toBe(200);
    // The same key material under the skipped entry's kid is not accepted through it.
    expect(await expectError(await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(key, claims, { kid: "wrap-1" }))), 401, "invalid_token")).toBe('token kid "wrap-1" is unknown: no configured key has it');
    const skipped = errors.mock.calls.map((call) => String(call[0])).filter((line) => line.includes("skipping key"));
    expect(skipped).toEqual([
      'server misconfigured: JWT_JWKS_URL: skipping key 1 of the set (kid "enc-1") is for use "enc", not "sig"',
      'server misconfigured: JWT_JWKS_URL: skipping key 2 of the set (kid "p521") is an EC key on curve P-521; supported are RSA, EC P-256, EC P-384 and OKP Ed25519',
      'server misconfigured: JWT_JWKS_URL: skipping key 3 of the set (kid "wrap-1") is not a valid RSA public key',
    ]);
  });
});

describe("JWKS cache lifetime", () => {
  it.each([
    [null, 60, 600],
    ["max-age=3600", 60, 3600],
    ["public, max-age=15, stale-while-revalidate=15", 60, 60],
    ["max-age=31536000", 60, 86400],
    ["no-cache", 60, 60],
    ["no-store, max-age=3600", 60, 60],
    ["max-age=0", 0, 0],
    ['max-age="120"', 60, 120],
  ] as const)("Cache-Control %j with a floor of %i s: %i s", (header, floor, expected) => {
    expect(keySetLifetimeSeconds(header, floor)).toBe(expected);
  });
});
