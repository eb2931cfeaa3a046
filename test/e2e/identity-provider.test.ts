/**
 * SPEC §2 against a real `wrangler dev`: the service verifies the tokens of
 * an Auth0-like identity provider whose JWKS is served over HTTP on
 * 127.0.0.1 (test/idp/identity-provider.ts behind node:http), with its
 * issuer, audience and namespaced rooms claim; and follows a key rotation:
 * a new kid is picked up when the first token signed with it arrives, old
 * tokens keep working while the old key is published, and stop once the
 * service has fetched a set without it. `npm run token -- --key` signs a
 * token the same server accepts.
 *
 * The server runs with JWT_JWKS_ALLOW_HTTP (a local endpoint) and
 * JWT_JWKS_REFETCH_SECONDS=0, so the test need not wait a minute between
 * two unknown-kid refetches.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exportJWK, exportPKCS8, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { identityProvider } from "../idp/identity-provider";
import { postJson, WsClient } from "./clients";
import { DevServer, freePort } from "./server";

const ISSUER = "https://example-tenant.eu.auth0.com/";
const AUDIENCE = "https://rooms.example.com";
const ROOMS_CLAIM = "https://rooms.example.com/rooms";
const TENANT = "auth0-like";

interface ProviderKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function providerKey(kid: string): Promise<ProviderKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

function issue(key: ProviderKey, sub: string, rooms: string[], extra: JWTPayload = {}): Promise<string> {
  return new SignJWT({ [ROOMS_CLAIM]: rooms, scope: "openid profile", ...extra })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.kid })
    .setIssuer(ISSUER)
    .setSubject(sub)
    .setAudience([AUDIENCE, `${ISSUER}userinfo`])
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key.privateKey);
}

let idp: Server;
let idpUrl: string;
let server: DevServer;

async function publish(...keys: ProviderKey[]): Promise<void> {
  const response = await fetch(`${idpUrl}/${TENANT}/jwks.json`, { method: "PUT", body: JSON.stringify({ jwks: { keys: keys.map((k) => k.jwk) }, cacheControl: "public, max-age=600" }) });
  expect(response.status).toBe(204);
}

async function hits(): Promise<number> {
  return ((await (await fetch(`${idpUrl}/${TENANT}/hits`)).json()) as { hits: number }).hits;
}

async function read(token: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server.url}/rooms/rotation/messages`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() };
}

let first: ProviderKey;

beforeAll(async () => {
  idp = createServer((req, res) => void identityProvider(req, res));
  const port = await freePort();
  await new Promise<void>((r) => idp.listen(port, "127.0.0.1", r));
  idpUrl = `http://127.0.0.1:${port}`;
  first = await providerKey("2026-01");
  await publish(first);
  server = await DevServer.start({
    vars: {
      JWT_JWKS_URL: `${idpUrl}/${TENANT}/jwks.json`,
      JWT_JWKS_ALLOW_HTTP: "1",
      JWT_JWKS_REFETCH_SECONDS: "0",
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_ROOMS_CLAIM: ROOMS_CLAIM,
    },
  });
});

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => idp?.close(r));
});

describe("tokens from an Auth0-like provider", () => {
  it("reach a room over WebSocket and HTTP without a second token", async () => {
    const alice = await issue(first, "google-oauth2-1045", ["support-*"], { name: "Alice" });
    const socket = await WsClient.open(`${server.wsUrl}/rooms/support-7/ws?token=${alice}`);
    const welcome = await socket.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
    expect(welcome).toMatchObject({ room: "support-7", user: { id: "google-oauth2-1045", name: "Alice" } });
    const sent = await postJson(`${server.url}/rooms/support-7/messages`, { data: { text: "hello from my IdP" } }, alice);
    expect(sent.status).toBe(201);
    const message = await socket.until((frames) => frames.find((f) => f.type === "message")?.message, "message");
    expect(message).toMatchObject({ seq: 1, from: { id: "google-oauth2-1045", name: "Alice" }, data: { text: "hello from my IdP" } });
    socket.ws.close();
    // Not granted, wrong audience, wrong issuer.
    expect((await fetch(`${server.url}/rooms/billing/messages`, { headers: { authorization: `Bearer ${alice}` } })).status).toBe(403);
    const otherApi = await new SignJWT({ [ROOMS_CLAIM]: ["*"] }).setProtectedHeader({ alg: "RS256", kid: first.kid }).setIssuer(ISSUER).setSubject("x").setAudience("https://billing.example.com").setExpirationTime("1h").sign(first.privateKey);
    expect((await read(otherApi)).body.error.message).toBe(`token audience (aud) does not match JWT_AUDIENCE: expected ${AUDIENCE}`);
    const otherTenant = await new SignJWT({ [ROOMS_CLAIM]: ["*"] }).setProtectedHeader({ alg: "RS256", kid: first.kid }).setIssuer("https://evil.auth0.com/").setSubject("x").setAudience(AUDIENCE).setExpirationTime("1h").sign(first.privateKey);
    expect((await read(otherTenant)).body.error.message).toBe(`token issuer (iss) does not match JWT_ISSUER: expected ${ISSUER}`);
  });

  it("follows a key rotation: new kid picked up, old tokens valid until the old key is gone from the set", async () => {
    const before = await hits();
    const old = await issue(first, "bob", ["rotation"]);
    expect((await read(old)).status).toBe(200);
    expect((await read(old)).status).toBe(200);
    // Cached (max-age=600): no fetch per request.
    expect(await hits()).toBe(before);

    // The provider publishes its next key beside the current one and starts signing with it.
    const second = await providerKey("2026-07");
    await publish(first, second);
    const rotated = await issue(second, "bob", ["rotation"]);
    expect((await read(rotated)).status).toBe(200);
    expect(await hits()).toBe(before + 1);
    expect((await read(old)).status).toBe(200);

    // The old key is retired. Until the service fetches the set again, its cached copy still holds it.
    const third = await providerKey("2027-01");
    await publish(second, third);
    expect((await read(old)).status).toBe(200);
    expect(await hits()).toBe(before + 1);
    // The next fetch (here: the first token signed with the newest key) brings the set without the old key.
    expect((await read(await issue(third, "bob", ["rotation"]))).status).toBe(200);
    const refused = await read(old);
    expect(refused).toEqual({ status: 401, body: { error: { code: "invalid_token", message: 'token kid "2026-01" is unknown: no configured key has it' } } });
    expect((await read(rotated)).status).toBe(200);
  });

  it("npm run token -- --key signs a token the service accepts", async () => {
    const key = await providerKey("cli-key");
    await publish(key);
    const dir = mkdtempSync(join(tmpdir(), "rooms-token-"));
    writeFileSync(join(dir, "private.pem"), await exportPKCS8(key.privateKey));
    writeFileSync(join(dir, "vars"), `JWT_ISSUER="${ISSUER}"\nJWT_AUDIENCE="${AUDIENCE}"\nJWT_ROOMS_CLAIM="${ROOMS_CLAIM}"\n`);
    const root = resolve(import.meta.dirname, "../..");
    const cli = spawnSync(join(root, "node_modules/.bin/node"), ["scripts/token.mjs", "carol", "--rooms", "rotation", "--key", join(dir, "private.pem"), "--alg", "RS256", "--kid", "cli-key", "--vars", join(dir, "vars")], { cwd: root, encoding: "utf8" });
    expect(cli.status, cli.stderr).toBe(0);
    const token = cli.stdout.trim();
    const answer = await read(token);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  });
});
