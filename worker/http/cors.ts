/**
 * CORS and WebSocket Origin checks from one allowlist: the CORS_ORIGINS var,
 * `*` (any origin: local development) or a comma-separated list of origins.
 * Empty means same-origin only: no CORS headers, and cross-origin WebSockets
 * are refused.
 */
import { cors } from "itty-router";
import { commaList } from "../../server/config";
import type { Env } from "../../server/env";
import { ApiError } from "./errors";

type Cors = ReturnType<typeof cors>;
const byConfig = new Map<string, Cors>();

function allowlist(env: Env): "*" | string[] {
  const raw = (env.CORS_ORIGINS ?? "").trim();
  if (raw === "*") return "*";
  return commaList(raw);
}

export function corsFor(env: Env): Cors {
  const key = env.CORS_ORIGINS ?? "";
  let pair = byConfig.get(key);
  if (!pair) {
    const origins = allowlist(env);
    const base = cors({
      origin: origins === "*" ? "*" : (origin: string) => (origins.includes(origin) ? origin : undefined),
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      allowHeaders: ["authorization", "content-type", "last-event-id"],
      exposeHeaders: ["retry-after"],
      maxAge: 600,
    });
    // itty only puts expose-headers on preflights; browsers read it from the actual response (429 Retry-After).
    pair = {
      preflight: base.preflight,
      corsify: (response, request) => {
        if (response.status !== 101 && !request?.headers.has("origin")) return withoutOrigin(response, origins);
        const out = base.corsify(response, request);
        if (out.status === 101) return out; // an upgraded WebSocket's headers are immutable, and CORS does not apply
        if (out.headers.has("access-control-allow-origin")) out.headers.set("access-control-expose-headers", "retry-after");
        // With an allowlist the answer depends on Origin: caches must key on it.
        if (origins !== "*") out.headers.append("vary", "Origin");
        return out;
      },
    };
    byConfig.set(key, pair);
  }
  return pair;
}

/**
 * The same headers for a request without Origin (a server or a script, not a
 * browser's cross-origin call), set on the response itself where its headers
 * may change: itty's corsify copies every response to add them, which was a
 * measurable share of a notify's CPU. A response fetched from a room has
 * immutable headers and is still copied.
 */
function withoutOrigin(response: Response, origins: "*" | string[]): Response {
  const setHeaders = (headers: Headers) => {
    if (origins === "*") {
      headers.set("access-control-allow-origin", "*");
      headers.set("access-control-expose-headers", "retry-after");
    } else headers.append("vary", "Origin");
  };
  try {
    setHeaders(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    setHeaders(copy.headers);
    return copy;
  }
}

/** Browsers send Origin on WebSocket upgrades; CORS does not apply there, so check it here. */
export function checkWebSocketOrigin(request: Request, env: Env): void {
  const origin = request.headers.get("origin");
  if (!origin) return; // not a browser
  const origins = allowlist(env);
  if (origins === "*" || origins.includes(origin) || origin === new URL(request.url).origin) return;
  throw new ApiError("forbidden_origin", `origin ${origin} is not in CORS_ORIGINS`);
}
