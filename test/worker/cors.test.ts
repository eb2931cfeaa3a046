/**
 * CORS from the CORS_ORIGINS allowlist (https://app.example in tests):
 * preflights and responses carry the headers for allowed origins only, and
 * browser WebSocket upgrades from other origins are refused.
 */
import { describe, expect, it } from "vitest";
import { call, postJson, tokenFor } from "./helpers";
import { expectError, get, uniqueRoom } from "./support";

const ALLOWED = "https://app.example";
const OTHER = "https://evil.example";

function preflight(path: string, origin: string): Promise<Response> {
  return call(path, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
  });
}

describe("CORS", () => {
  // A preflight from the allowed origin may POST JSON with a Bearer token.
  it("preflight from the allowed origin gets the CORS headers", async () => {
    const response = await preflight("/rooms/lobby/messages", ALLOWED);
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(response.headers.get("access-control-allow-methods")).toContain("POST");
    const allowHeaders = response.headers.get("access-control-allow-headers")!.toLowerCase();
    expect(allowHeaders).toContain("authorization");
    expect(allowHeaders).toContain("content-type");
  });

  // Any other origin gets no allow-origin, so the browser blocks the call.
  it("preflight from another origin gets no allow-origin", async () => {
    const response = await preflight("/rooms/lobby/messages", OTHER);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });

  // Real responses, errors included, carry allow-origin so the page can read them, and expose Retry-After.
  it("responses and errors to the allowed origin are readable by the page", async () => {
    const room = uniqueRoom("cors");
    const token = await tokenFor("alice");
    const ok = await get(`/rooms/${room}/messages`, token, { origin: ALLOWED });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(ok.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("retry-after");
    const denied = await get(`/rooms/${room}/messages`, undefined, { origin: ALLOWED });
    expect(denied.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    await expectError(denied, 401, "missing_token");
    const foreign = await get(`/rooms/${room}/messages`, token, { origin: OTHER });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });

  // A server's request (no Origin) gets no allow-origin, and with an allowlist still Vary: Origin, so a cache never
  // hands a browser an answer made for a server: on responses the Worker makes and on those it forwards from a room.
  it("responses to requests without Origin carry Vary: Origin and no allow-origin", async () => {
    const room = uniqueRoom("cors");
    const token = await tokenFor("alice");
    const fromRoom = await get(`/rooms/${room}/messages`, token);
    const fromWorker = await get(`/rooms/${room}/messages`);
    const sent = await postJson(`/rooms/${room}/messages`, { data: { text: "x" } }, token);
    for (const [response, status] of [[fromRoom, 200], [fromWorker, 401], [sent, 201]] as const) {
      expect(response.status).toBe(status);
      expect(response.headers.get("vary")).toBe("Origin");
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  // A browser WebSocket from a foreign origin is refused (CORS does not protect WebSockets).
  it("WebSocket upgrade from a disallowed origin → 403 forbidden_origin", async () => {
    const room = uniqueRoom("cors");
    const token = await tokenFor("alice");
    const upgrade = (origin?: string) =>
      call(`/rooms/${room}/ws?token=${token}`, { headers: origin ? { upgrade: "websocket", origin } : { upgrade: "websocket" } });
    await expectError(await upgrade(OTHER), 403, "forbidden_origin");
    await expectError(await upgrade("null"), 403, "forbidden_origin");
    await expectError(await upgrade("https://app.example.evil.example"), 403, "forbidden_origin");
    for (const origin of [ALLOWED, "https://rooms.test", undefined]) {
      const response = await upgrade(origin);
      expect(response.status).toBe(101);
      response.webSocket!.accept();
      response.webSocket!.close(1000, "done");
    }
    // The refused upgrades never reached the room: nothing was published, nobody joined.
    const sent = await postJson(`/rooms/${room}/messages`, { data: { text: "x" } }, token);
    expect(((await sent.json()) as any).message.seq).toBe(1);
  });
});
