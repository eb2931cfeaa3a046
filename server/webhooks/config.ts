/**
 * Webhook settings (SPEC §11, docs/api.md "Webhooks"), read from vars with
 * their defaults. The receiving URLs are checked against the push endpoint
 * policy (https on public hosts, unless PUSH_ALLOW_HTTP_ENDPOINTS), and the
 * calls are signed with the Pusher app's key and secret.
 *
 * A misconfiguration never throws here and never drops events silently: it
 * becomes `problem`, which the room logs once and shows in its status while
 * it keeps queueing (up to the cap) for when the configuration is fixed.
 */
import { commaList, intVar } from "../config";
import type { Env } from "../env";
import { pushConfigFrom } from "../push/config";
import { refuseEndpoint } from "../push/endpoint-policy";
import { WEBHOOK_EVENT_NAMES, type WebhookEventName } from "./format";

export interface WebhookConfig {
  /** Where every event goes (each URL gets all of them, with its own progress). Empty: webhooks off. */
  urls: string[];
  /** The event kinds sent (WEBHOOK_EVENTS; default all but `message`). */
  events: ReadonlySet<WebhookEventName>;
  /** X-Pusher-Key and the HMAC key, when both are set. */
  credentials?: { key: string; secret: string };
  /** Why nothing can be delivered right now (a missing secret, a refused URL, an unknown event name). */
  problem?: string;
  /** Events a room keeps for its receivers before the oldest are dropped (and counted). */
  maxPending: number;
  /** How long the first event of a batch waits for others (a batch leaves at once when it has maxBatch). */
  batchDelayMs: number;
  maxBatch: number;
  /** The first retry's delay; it doubles per attempt up to maxRetryDelayMs. */
  retryBaseMs: number;
  maxRetryDelayMs: number;
  /** A batch failing this long (and at least 2 attempts) is given up: what is pending for that URL is dropped and counted. */
  retryForMs: number;
  /** A receiver that has not answered by then counts as a network error. */
  requestTimeoutMs: number;
}

const DEFAULT_EVENTS: WebhookEventName[] = WEBHOOK_EVENT_NAMES.filter((name) => name !== "message");

const cache = new WeakMap<object, WebhookConfig>();

export function webhookConfigFrom(env: Env): WebhookConfig {
  const cached = cache.get(env);
  if (cached) return cached;
  const problems: string[] = [];
  const urls = list(env.WEBHOOK_URLS);
  const allowInsecure = pushConfigFrom(env).allowInsecureEndpoints;
  for (const url of urls) {
    const refused = refuseEndpoint(url, allowInsecure);
    if (refused) problems.push(`WEBHOOK_URLS: ${redactUrl(url)} ${refused}`);
  }
  const named = list(env.WEBHOOK_EVENTS);
  const unknown = named.filter((name) => !(WEBHOOK_EVENT_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) problems.push(`WEBHOOK_EVENTS: unknown ${unknown.join(", ")} (known: ${WEBHOOK_EVENT_NAMES.join(", ")})`);
  const events = new Set<WebhookEventName>(named.length > 0 ? (named.filter((n) => !unknown.includes(n)) as WebhookEventName[]) : DEFAULT_EVENTS);
  const missing = (["PUSHER_KEY", "PUSHER_SECRET"] as const).filter((name) => !env[name]);
  if (urls.length > 0 && missing.length > 0) problems.push(`WEBHOOK_URLS is set but ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not: webhooks are signed with the Pusher app's key and secret`);
  const config: WebhookConfig = {
    urls,
    events,
    ...(env.PUSHER_KEY && env.PUSHER_SECRET ? { credentials: { key: env.PUSHER_KEY, secret: env.PUSHER_SECRET } } : {}),
    ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
    maxPending: Math.max(1, Math.floor(intVar(env.WEBHOOK_MAX_PENDING, 10_000, "WEBHOOK_MAX_PENDING"))),
    batchDelayMs: intVar(env.WEBHOOK_BATCH_MS, 1000, "WEBHOOK_BATCH_MS"),
    maxBatch: 100,
    retryBaseMs: intVar(env.WEBHOOK_RETRY_BASE_MS, 2000, "WEBHOOK_RETRY_BASE_MS"),
    maxRetryDelayMs: 5 * 60_000,
    retryForMs: intVar(env.WEBHOOK_RETRY_FOR_SECONDS, 3600, "WEBHOOK_RETRY_FOR_SECONDS") * 1000,
    requestTimeoutMs: 10_000,
  };
  cache.set(env, config);
  return config;
}

/** A URL as logs and the status show it: no query (it may carry a token), no credentials. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

function list(value: string | undefined): string[] {
  return [...new Set(commaList(value))];
}
