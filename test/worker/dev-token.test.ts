/**
 * POST /dev/token: the demo page's local token minting. It must not exist
 * unless DEV_TOKENS is "1" (each test sets the var explicitly, whatever a
 * local .dev.vars says), and the tokens it mints must work on the room routes.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { decodeJwt, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../../server/env";
import { handle } from "../../worker/router";

async function fetchWith(devTokens: string | undefined, path: string, init: RequestInit = {}): Promise<Response> {
  const appEnv: Env = Object.assign(Object.create(env as object) as Env, { DEV_TOKENS: devTokens });
  const ctx = createExecutionContext();
  const response = await handle(new Request(`https://rooms.test${path}`, init), appEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function mint(devTokens: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetchWith(devTokens, "/dev/token", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

describe("POST /dev/token", () => {
  it.each([undefined, "", "0", "true"])("answers 404 not_found when DEV_TOKENS is %j", async (value) => {
    const response = await mint(value, { user: "alice" });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "not_found", message: "no route for POST /dev/token" } });
  });

  it("mints a token for any room, valid for a few hours, that the room routes accept", async () => {
    const response = await mint("1", { user: "alice", name: "Alice Liddell" });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; user: unknown; expiresAt: string };
    expect(body.user).toEqual({ id: "alice", name: "Alice Liddell" });
    const { payload } = await jwtVerify(body.token, new TextEncoder().encode(env.JWT_SECRET!), { algorithms: ["HS256"] });
    expect(payload).toMatchObject({ sub: "alice", name: "Alice Liddell", rooms: ["*"] });
    const lifetime = payload.exp! - payload.iat!;
    expect(lifetime).toBeGreaterThanOrEqual(3600);
    expect(lifetime).toBeLessThanOrEqual(12 * 3600);
    expect(Date.parse(body.expiresAt) / 1000).toBe(payload.exp);

    const presence = await fetchWith("1", "/rooms/any-room-at-all/presence", { headers: { authorization: `Bearer ${body.token}` } });
    expect(presence.status).toBe(200);
  });

  it("names the user after the id when no name is given", async () => {
    const body = (await (await mint("1", { user: "bob" })).json()) as { token: string };
    expect(decodeJwt(body.token)).toMatchObject({ sub: "bob", name: "bob" });
  });

  it.each([
    [{}, "user"],
    [{ user: "" }, "user"],
    [{ user: "has space" }, "user"],
    [{ user: "x".repeat(65) }, "user"],
    [{ user: "alice", name: "" }, "name"],
    [{ user: "alice", name: 7 }, "name"],
  ])("refuses the body %j with invalid_body naming %s", async (body, field) => {
    const response = await mint("1", body);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_body");
    expect(error.message.startsWith(`${field}:`) || error.message.includes(field)).toBe(true);
  });

  it("wants JSON", async () => {
    const response = await fetchWith("1", "/dev/token", { method: "POST", headers: { "content-type": "text/plain" }, body: "user=alice" });
    expect(response.status).toBe(415);
  });

  it("refuses pages on other origins", async () => {
    const response = await mint("1", { user: "mallory" }, { origin: "https://evil.example" });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("forbidden_origin");
    expect((await mint("1", { user: "alice" }, { origin: "https://rooms.test" })).status).toBe(200);
  });
});
