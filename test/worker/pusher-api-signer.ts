/**
 * Signs Pusher HTTP API requests for the tests, following Pusher's published
 * algorithm (HTTP API reference, "Generating authentication signatures") and
 * the `pusher` SDK's lib/requests.js, written apart from the service's own
 * verifier so that one cannot hide a mistake in the other.
 */
import { env } from "cloudflare:workers";
import { call } from "./helpers";

export interface SignOptions {
  /** Query parameters besides the auth ones (e.g. info, filter_by_prefix). */
  params?: Record<string, string>;
  /** The JSON body to send; objects are serialized as the SDK does. */
  body?: unknown;
  key?: string;
  secret?: string;
  appId?: string;
  /** Unix seconds; now by default. */
  timestamp?: number;
  /** Auth parameters to leave out of the request after signing. */
  omit?: string[];
  /** Sent instead of the signed body (to alter it after signing). */
  sendBody?: string;
  /** Query parameters changed after signing. */
  alterParams?: Record<string, string>;
}

const hex = (buffer: ArrayBuffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

export async function hmacHex(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
}

export async function md5Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("MD5", new TextEncoder().encode(text)));
}

/** `METHOD\nPATH\nsorted k=v&…`, as the SDK builds it. */
export function toSign(method: string, path: string, params: Record<string, string>): string {
  const query = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join("&");
  return [method, path, query].join("\n");
}

/** The URL path and signed query string of a request, as pusher-http-node sends it. */
export async function signedPathAndQuery(method: string, subPath: string, options: SignOptions = {}): Promise<{ path: string; query: string; body?: string }> {
  const path = `/apps/${options.appId ?? env.PUSHER_APP_ID}${subPath}`;
  const body = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const params: Record<string, string> = {
    auth_key: options.key ?? env.PUSHER_KEY!,
    auth_timestamp: String(options.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
    ...(body ? { body_md5: await md5Hex(body) } : {}),
    ...options.params,
  };
  const signature = await hmacHex(options.secret ?? env.PUSHER_SECRET!, toSign(method, path, params));
  const sent = { ...params, ...options.alterParams, auth_signature: signature };
  for (const name of options.omit ?? []) delete (sent as Record<string, string>)[name];
  const query = Object.entries(sent).map(([k, v]) => `${k}=${v}`).join("&");
  return { path, query, ...(body !== undefined ? { body } : {}) };
}

/** Sends a signed request to the Worker. */
export async function pusherApi(method: "GET" | "POST", subPath: string, options: SignOptions = {}): Promise<Response> {
  const { path, query, body } = await signedPathAndQuery(method, subPath, options);
  const sent = options.sendBody ?? body;
  return call(`${path}?${query}`, {
    method,
    ...(sent !== undefined ? { body: sent, headers: { "content-type": "application/json" } } : {}),
  });
}

export function trigger(body: Record<string, unknown>, options: Omit<SignOptions, "body"> = {}): Promise<Response> {
  return pusherApi("POST", "/events", { ...options, body });
}
