/**
 * SPEC §2, tokens from the app's own identity provider: RS256, PS256, ES256
 * and EdDSA tokens verified through PEM keys, a JWK set in JWT_PUBLIC_KEYS
 * and a JWKS endpoint; each key accepting only its own algorithm family
 * (the algorithm-confusion attack and `alg: none` refused); issuer,
 * audience, expiry and kid checks with messages that say which failed;
 * JWT_SECRET rotation; claims read from where providers put them; and every
 * client route using the same verification. Keys are generated per test.
 */
import { decodeJwt, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { expectError, uniqueRoom } from "../worker/support";
import { bearer, fetchWith, jwkSet, postJsonWith, publishJwks, signingKey, signToken, tenant, withEnv, type SigningKey } from "./support";

const ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"] as const;
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
const hmacToken = (claims: Record<string, unknown>, secret: string, kid?: string) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256", ...(kid ? { kid } : {}) }).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(secret));

/** The token reaches the room: it reads the room and sends into it as the user it names. */
async function expectReachesRoom(appEnv: ReturnType<typeof withEnv>, room: string, token: string, from: { id: string; name: string }): Promise<void> {
  const read = await fetchWith(appEnv, `/rooms/${encodeURIComponent(room)}/messages`, bearer(token));
  expect(read.status, await read.clone().text()).toBe(200);
  const sent = await postJsonWith(appEnv, `/rooms/${encodeURIComponent(room)}/messages`, { data: { text: "hello" } }, token);
  expect(sent.status, await sent.clone().text()).toBe(201);
  expect(((await sent.json()) as any).message.from).toEqual(from);
}

async function expectInvalid(appEnv: ReturnType<typeof withEnv>, token: string, room = "lobby"): Promise<string> {
  return expectError(await fetchWith(appEnv, `/rooms/${room}/messages`, bearer(token)), 401, "invalid_token");
}

afterEach(() => vi.restoreAllMocks());

describe("public keys, each algorithm", () => {
  it.each(ALGORITHMS)("%s through a PEM key in JWT_PUBLIC_KEYS", async (alg) => {
    const key = await signingKey(alg);
    const room = uniqueRoom(`pem-${alg}`);
    const token = await signToken(key, { sub: "u-pem", name: "Pem User", rooms: [room] });
    await expectReachesRoom(withEnv({ JWT_PUBLIC_KEYS: key.pem }), room, token, { id: "u-pem", name: "Pem User" });
  });

  it.each(ALGORITHMS)("%s through a JWK set in JWT_PUBLIC_KEYS", async (alg) => {
    const key = await signingKey(alg, `k-${alg}`);
    const room = uniqueRoom(`jwk-${alg}`);
    const token = await signToken(key, { sub: "u-jwk", rooms: [room] });
    await expectReachesRoom(withEnv({ JWT_PUBLIC_KEYS: JSON.stringify(jwkSet(key)) }), room, token, { id: "u-jwk", name: "u-jwk" });
  });

  it.each(ALGORITHMS)("%s through the JWKS at JWT_JWKS_URL", async (alg) => {
    const key = await signingKey(alg, `remote-${alg}`);
    const idp = tenant(`alg-${alg}`);
    await publishJwks(idp.name, jwkSet(key));
    const room = uniqueRoom(`jwks-${alg}`);
    const token = await signToken(key, { sub: "u-remote", rooms: [room] });
    await expectReachesRoom(withEnv({ JWT_JWKS_URL: idp.url }), room, token, { id: "u-remote", name: "u-remote" });
  });

  it("several PEM keys: a token without kid is tried against each key of its family, in order", async () => {
    const [rsaOld, ec, rsaNew] = await Promise.all([signingKey("RS256"), signingKey("ES256"), signingKey("RS256")]);
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: [rsaOld.pem, ec.pem, rsaNew.pem].join("\n") });
    const room = uniqueRoom("pem-many");
    for (const key of [rsaOld, ec, rsaNew]) await expectReachesRoom(appEnv, room, await signToken(key, { sub: "multi", rooms: [room] }), { id: "multi", name: "multi" });
    // A PEM pasted into a one-line variable, newlines written as \n, works too.
    const oneLine = withEnv({ JWT_PUBLIC_KEYS: rsaNew.pem.trim().replace(/\n/g, "\\n") });
    await expectReachesRoom(oneLine, room, await signToken(rsaNew, { sub: "multi", rooms: [room] }), { id: "multi", name: "multi" });
  });
});

describe("each key accepts only its own algorithm family", () => {
  it("the algorithm-confusion attack: an HS256 token whose HMAC key is the RSA public key's PEM is refused", async () => {
    const rsa = await signingKey("RS256", "rsa-1");
    const claims = { sub: "mallory", rooms: ["*"] };
    // With JWT_SECRET set too (HS256 checks only its secrets), with only public keys, and naming the RSA key's kid.
    for (const [vars, expected] of [
      [{ JWT_PUBLIC_KEYS: rsa.pem }, /signature does not verify with any secret of JWT_SECRET/],
      [{ JWT_PUBLIC_KEYS: rsa.pem, JWT_SECRET: "" }, /alg HS256 is not allowed: no JWT_SECRET is set/],
      [{ JWT_PUBLIC_KEYS: JSON.stringify(jwkSet(rsa)) }, /alg HS256 is not allowed for key "rsa-1"/],
    ] as const) {
      const appEnv = withEnv(vars);
      for (const hmacKey of [rsa.pem, rsa.pem.trim(), JSON.stringify(rsa.jwk)]) {
        expect(await expectInvalid(appEnv, await hmacToken(claims, hmacKey, "rsa-1")), JSON.stringify(vars)).toMatch(/HS256|JWT_SECRET/);
        expect(await expectInvalid(appEnv, await hmacToken(claims, hmacKey))).toMatch(/HS256|JWT_SECRET/);
      }
      expect(await expectInvalid(appEnv, await hmacToken(claims, rsa.pem, "rsa-1"))).toMatch(expected);
    }
  });

  it("a token whose alg does not fit the key its kid names is refused, naming the key's algorithms", async () => {
    const [ec, rsa] = await Promise.all([signingKey("ES256", "ec-1"), signingKey("RS256", "rsa-2")]);
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: JSON.stringify(jwkSet(ec, rsa)) });
    // Signed by the RSA key but claiming the EC key's kid.
    const message = await expectInvalid(appEnv, await signToken(rsa, { sub: "x" }, { kid: "ec-1" }));
    expect(message).toBe('token alg RS256 is not allowed for key "ec-1": P-256 (ES256)');
    // A PEM-only configuration: no EC key, so ES256 is refused outright.
    const pemOnly = withEnv({ JWT_PUBLIC_KEYS: rsa.pem });
    expect(await expectInvalid(pemOnly, await signToken(ec, { sub: "x" }, { kid: null }))).toMatch(/alg ES256 is not allowed: no configured key verifies it \(the keys verify RSA/);
    // Only JWT_SECRET configured: a public-key token says so.
    expect(await expectInvalid(withEnv({}), await signToken(rsa, { sub: "x" }))).toMatch(/no JWT_PUBLIC_KEYS or JWT_JWKS_URL is set/);
  });

  it("alg none, and algorithms no key type verifies, are refused", async () => {
    const rsa = await signingKey("RS256");
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: rsa.pem });
    const payload = b64url({ sub: "mallory", rooms: ["*"], exp: Math.floor(Date.now() / 1000) + 3600 });
    const real = await signToken(rsa, { sub: "mallory", rooms: ["*"] });
    for (const alg of ["none", "None", "HS512", "RSA-OAEP", "ES512"]) {
      const forged = `${b64url({ alg, typ: "JWT" })}.${payload}.${real.split(".")[2]}`;
      expect(await expectInvalid(appEnv, forged)).toContain("is not allowed");
      expect(await expectInvalid(appEnv, `${b64url({ alg, typ: "JWT" })}.${payload}.`)).toContain("is not allowed");
    }
    // The real token is fine, so the refusals above are about the algorithm.
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(real))).status).toBe(200);
  });

  it("a token signed by another key of the right type does not verify", async () => {
    const [configured, stranger] = await Promise.all([signingKey("ES256"), signingKey("ES256")]);
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: configured.pem });
    expect(await expectInvalid(appEnv, await signToken(stranger, { sub: "x" }))).toBe("token signature does not verify with any of the 1 key(s) that verify ES256");
    const tampered = await signToken(configured, { sub: "bob", rooms: [] });
    const [h, , s] = tampered.split(".");
    expect(await expectInvalid(appEnv, `${h}.${b64url({ sub: "bob", rooms: ["*"] })}.${s}`)).toMatch(/signature does not verify/);
  });
});

describe("issuer, audience, expiry, kid", () => {
  const ISSUER = "https://tenant.example-idp.com/";
  const AUDIENCE = "https://rooms.example";

  it("refuses a wrong or missing iss or aud, an expired or not-yet-valid token, and an unknown kid, saying which", async () => {
    const key = await signingKey("RS256", "current");
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: JSON.stringify(jwkSet(key)), JWT_ISSUER: ISSUER, JWT_AUDIENCE: `${AUDIENCE}, https://other.example` });
    const good = { sub: "ada", iss: ISSUER, aud: AUDIENCE, rooms: ["*"] };
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(key, good)))).status).toBe(200);
    // Any of the configured audiences, and an aud array holding one of them, match.
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(key, { ...good, aud: ["https://api.example", "https://other.example"] })))).status).toBe(200);

    const now = Math.floor(Date.now() / 1000);
    const cases: [string, Promise<string>, string | RegExp][] = [
      ["wrong iss", signToken(key, { ...good, iss: "https://evil.example/" }), `token issuer (iss) does not match JWT_ISSUER: expected ${ISSUER}`],
      ["no iss", signToken(key, { ...good, iss: undefined }), `token issuer (iss) is missing; JWT_ISSUER requires ${ISSUER}`],
      ["wrong aud", signToken(key, { ...good, aud: "https://evil.example" }), `token audience (aud) does not match JWT_AUDIENCE: expected ${AUDIENCE} or https://other.example`],
      ["expired", signToken(key, { ...good, exp: now - 60 }), "token has expired (exp is in the past)"],
      ["not yet valid", signToken(key, { ...good, nbf: now + 600 }), "token is not valid yet (nbf is in the future)"],
      ["unknown kid", signToken(key, good, { kid: "retired-2019" }), 'token kid "retired-2019" is unknown: no configured key has it'],
    ];
    for (const [what, token, message] of cases) expect(await expectInvalid(appEnv, await token), what).toEqual(message);
  });

  it(`tolerates a few seconds of clock difference on exp and nbf`, async () => {
    const key = await signingKey("ES256");
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: key.pem });
    const now = Math.floor(Date.now() / 1000);
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(key, { sub: "a", rooms: ["*"], exp: now - 2 })))).status).toBe(200);
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(await signToken(key, { sub: "a", rooms: ["*"], nbf: now + 2 })))).status).toBe(200);
    await expectInvalid(appEnv, await signToken(key, { sub: "a", rooms: ["*"], exp: now - 30 }));
  });
});

describe("JWT_SECRET rotation", () => {
  it("every secret of a comma-separated JWT_SECRET verifies; a dropped one does not; dev tokens use the first", async () => {
    const appEnv = withEnv({ JWT_SECRET: "new-secret-0123456789abcdef0123, old-secret-0123456789abcdef0123", DEV_TOKENS: "1" });
    const room = uniqueRoom("rotate");
    for (const secret of ["new-secret-0123456789abcdef0123", "old-secret-0123456789abcdef0123"]) {
      await expectReachesRoom(appEnv, room, await hmacToken({ sub: "rot", rooms: [room] }, secret), { id: "rot", name: "rot" });
    }
    expect(await expectInvalid(appEnv, await hmacToken({ sub: "rot", rooms: [room] }, "retired-secret-0123456789abcdef"))).toBe("token signature does not verify with any secret of JWT_SECRET");
    // The whole comma-separated string is no secret either.
    await expectInvalid(appEnv, await hmacToken({ sub: "rot", rooms: [room] }, "new-secret-0123456789abcdef0123, old-secret-0123456789abcdef0123"));

    const minted = (await (await fetchWith(appEnv, "/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "demo" }) })).json()) as { token: string };
    await expectReachesRoom(appEnv, room, minted.token, { id: "demo", name: "demo" });
    const onlyNew = withEnv({ JWT_SECRET: "new-secret-0123456789abcdef0123" });
    expect((await fetchWith(onlyNew, `/rooms/${room}/messages`, bearer(minted.token))).status).toBe(200);
  });

  it("dev tokens carry JWT_ISSUER and JWT_AUDIENCE when they are set, so they pass those checks", async () => {
    const appEnv = withEnv({ DEV_TOKENS: "1", JWT_ISSUER: "https://rooms.local/", JWT_AUDIENCE: "rooms" });
    const minted = (await (await fetchWith(appEnv, "/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "demo" }) })).json()) as { token: string };
    expect(decodeJwt(minted.token)).toMatchObject({ iss: "https://rooms.local/", aud: "rooms" });
    expect((await fetchWith(appEnv, "/rooms/lobby/messages", bearer(minted.token))).status).toBe(200);
  });
});

describe("claims where providers put them", () => {
  it("a nested rooms claim (Supabase's app_metadata.rooms) and a nested name (user_metadata.full_name)", async () => {
    const key = await signingKey("ES256");
    const room = uniqueRoom("nested");
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: key.pem, JWT_ROOMS_CLAIM: "app_metadata.rooms", JWT_NAME_CLAIM: "user_metadata.full_name" });
    const token = await signToken(key, { sub: "0b6f-uuid", role: "authenticated", app_metadata: { rooms: [room], provider: "email" }, user_metadata: { full_name: "Grace Hopper" } });
    await expectReachesRoom(appEnv, room, token, { id: "0b6f-uuid", name: "Grace Hopper" });
    // The top-level `rooms` claim is not read any more: it grants nothing here.
    const topLevel = await signToken(key, { sub: "0b6f-uuid", rooms: ["*"], app_metadata: {} });
    await expectError(await fetchWith(appEnv, `/rooms/${room}/messages`, bearer(topLevel)), 403, "forbidden_room");
    const wrongShape = await signToken(key, { sub: "0b6f-uuid", app_metadata: { rooms: room } });
    expect(await expectInvalid(appEnv, wrongShape, room)).toBe("token claims: app_metadata.rooms must be an array of room ids");
  });

  it("an Auth0-like token: JWKS, iss, aud, a namespaced rooms claim whose name holds dots", async () => {
    const key = await signingKey("RS256", "auth0-kid-1");
    const idp = tenant("auth0");
    await publishJwks(idp.name, jwkSet(key), { cacheControl: "public, max-age=15, stale-while-revalidate=15" });
    const appEnv = withEnv({
      JWT_JWKS_URL: idp.url,
      JWT_ISSUER: "https://example-tenant.eu.auth0.com/",
      JWT_AUDIENCE: "https://rooms.example.com",
      JWT_ROOMS_CLAIM: "https://rooms.example.com/rooms",
      JWT_NAME_CLAIM: "https://rooms.example.com/name",
    });
    const room = uniqueRoom("support");
    const token = await signToken(key, {
      iss: "https://example-tenant.eu.auth0.com/",
      sub: "auth0|65f1c0ffee",
      aud: ["https://rooms.example.com", "https://example-tenant.eu.auth0.com/userinfo"],
      azp: "spa-client-id",
      scope: "openid profile",
      "https://rooms.example.com/rooms": [room],
      "https://rooms.example.com/name": "Ada",
    });
    await expectReachesRoom(appEnv, room, token, { id: "auth0|65f1c0ffee", name: "Ada" });
  });

  it("a Symfony LexikJWT-like token: RS256 from a PEM, no kid, the user in `username`, `roles`, rooms added by the app", async () => {
    const key = await signingKey("RS256");
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: key.pem, JWT_USER_ID_CLAIM: "username", JWT_NAME_CLAIM: "username" });
    const room = uniqueRoom("ticket");
    // What lexik/jwt-authentication-bundle issues by default, plus `rooms` from a JWTCreatedEvent listener.
    const token = await signToken(key, { roles: ["ROLE_AGENT", "ROLE_USER"], username: "agent@example.com", rooms: [room] });
    await expectReachesRoom(appEnv, room, token, { id: "agent@example.com", name: "agent@example.com" });
    // Without the listener's rooms claim the user still has their inbox, and nothing else.
    const plain = await signToken(key, { roles: ["ROLE_USER"], username: "visitor@example.com" });
    await expectReachesRoom(appEnv, "user:visitor@example.com", plain, { id: "visitor@example.com", name: "visitor@example.com" });
    await expectError(await fetchWith(appEnv, `/rooms/${room}/messages`, bearer(plain)), 403, "forbidden_room");
    // With the default JWT_USER_ID_CLAIM (sub), such a token is refused, saying what is missing.
    expect(await expectInvalid(withEnv({ JWT_PUBLIC_KEYS: key.pem }), token, room)).toBe("token claims: sub is required: a user id of 1-128 characters");
  });
});

describe("one verification path for every client route", () => {
  it("WebSocket, SSE, /me/unread, push subscriptions, /pusher/auth and the legacy API accept a provider's token and refuse a forged one", async () => {
    const [key, stranger] = await Promise.all([signingKey("ES256", "path-1"), signingKey("ES256", "path-1")]);
    const appEnv = withEnv({ JWT_PUBLIC_KEYS: JSON.stringify(jwkSet(key)) });
    const claims = { sub: "pathfinder", rooms: ["chat-session:*", "private-desk", "desk"] };
    const [token, forged] = await Promise.all([signToken(key, claims), signToken(stranger, claims)]);

    const ws = await fetchWith(appEnv, `/rooms/desk/ws?token=${token}`, { headers: { upgrade: "websocket" } });
    expect(ws.status).toBe(101);
    ws.webSocket!.accept();
    ws.webSocket!.close(1000, "done");
    await expectError(await fetchWith(appEnv, `/rooms/desk/ws?token=${forged}`, { headers: { upgrade: "websocket" } }), 401, "invalid_token");

    const sse = await fetchWith(appEnv, `/rooms/desk/events?token=${token}`);
    expect(sse.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await sse.body!.cancel();
    await expectError(await fetchWith(appEnv, `/rooms/desk/events?token=${forged}`), 401, "invalid_token");

    expect((await fetchWith(appEnv, "/me/unread", bearer(token))).status).toBe(200);
    await expectError(await fetchWith(appEnv, "/me/unread", bearer(forged)), 401, "invalid_token");
    expect((await fetchWith(appEnv, "/push/subscriptions", bearer(token))).status).toBe(200);
    await expectError(await fetchWith(appEnv, "/push/subscriptions", bearer(forged)), 401, "invalid_token");

    const pusherAuth = (jwt: string) => fetchWith(appEnv, "/pusher/auth", { method: "POST", headers: { authorization: `Bearer ${jwt}`, "content-type": "application/x-www-form-urlencoded" }, body: "socket_id=123.456&channel_name=private-desk" });
    const signed = await pusherAuth(token);
    expect(signed.status).toBe(200);
    expect(((await signed.json()) as any).auth).toMatch(/^test-pusher-key-0123:[0-9a-f]{64}$/);
    await expectError(await pusherAuth(forged), 401, "invalid_token");

    const session = Math.floor(Math.random() * 1e9);
    const posted = await postJsonWith(appEnv, "/api/chat/message", { chat_session_id: session, message: "from my IdP" }, token);
    expect(await posted.json()).toEqual({ success: true, messageId: 1 });
    const polled = (await (await fetchWith(appEnv, `/api/chat/messages/${session}`, bearer(token))).json()) as any;
    expect(polled.messages).toMatchObject([{ id: 1, sender_id: "pathfinder", message: "from my IdP" }]);
    await expectError(await fetchWith(appEnv, `/api/chat/messages/${session}`, bearer(forged)), 401, "invalid_token");
  });
});

describe("misconfiguration is a 500 naming the variable, logged once, never an open door", () => {
  it("a JWT_PUBLIC_KEYS that does not parse fails every token, without echoing the key", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const key = await signingKey("RS256");
    const broken = key.pem.replace(/[A-Za-z]{12}/, "AAAAAAAAAAAA");
    const cases: [string, string | RegExp][] = [
      [broken, /^JWT_PUBLIC_KEYS: key 1 is not an RSA, EC P-256, EC P-384 or Ed25519 public key in PEM SPKI form$/],
      ["-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----", /key 1 is a PEM "RSA PUBLIC KEY" block; expected "PUBLIC KEY"/],
      ["not a key at all", /holds neither PEM blocks/],
      [JSON.stringify({ keys: [{ ...key.jwk, d: "private-part" }] }), "JWT_PUBLIC_KEYS: key 1 is a private key: configure only its public part"],
      [JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }), /kty must be RSA, EC or OKP/],
      ['{"keys": [', "JWT_PUBLIC_KEYS: looks like JSON but does not parse"],
      [JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA", kid: "off-curve" }] }), 'JWT_PUBLIC_KEYS: key 1 (kid "off-curve") is not a valid P-256 public key'],
    ];
    for (const [value, expected] of cases) {
      const appEnv = withEnv({ JWT_PUBLIC_KEYS: value });
      // Even a token the secret would verify is refused: the configuration is broken, not half-working.
      const hs = await hmacToken({ sub: "a", rooms: ["*"] }, "test-jwt-secret-0123456789abcdef");
      for (const token of [await signToken(key, { sub: "a", rooms: ["*"] }), hs, hs]) {
        const message = await expectError(await fetchWith(appEnv, "/rooms/lobby/messages", bearer(token)), 500, "server_misconfigured");
        expect(message).toMatch(expected);
        expect(message).not.toContain("MII");
      }
    }
    // Each distinct problem was logged once, not once per request.
    expect(errors.mock.calls.map((call) => String(call[0])).filter((line) => line.startsWith("server misconfigured: JWT_PUBLIC_KEYS"))).toHaveLength(cases.length);
  });

  it("no key configured at all names the three variables", async () => {
    const message = await expectError(await fetchWith(withEnv({ JWT_SECRET: "" }), "/rooms/lobby/messages", bearer("a.b.c")), 500, "server_misconfigured");
    expect(message).toMatch(/^JWT_SECRET, JWT_PUBLIC_KEYS or JWT_JWKS_URL: no key to verify client tokens is set/);
  });
});
