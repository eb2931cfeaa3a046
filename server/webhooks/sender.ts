/**
 * One webhook call: POST the body with Pusher's headers and classify the
 * answer. Redirects are not followed (a public URL must not bounce the call
 * into a private network), and the URL is checked against the endpoint
 * policy before every call. Retrying is the caller's business
 * (objects/room/webhook-queue.ts); this only says whether a retry makes sense.
 */
import { refuseEndpoint } from "../push/endpoint-policy";

export type WebhookOutcome =
  | { kind: "sent"; httpStatus: number }
  /** 429, 5xx, a network error or a timeout: worth another attempt. */
  | { kind: "retry"; httpStatus: number | null; error: string }
  /** Any other answer, or a refused URL: retrying the same call cannot help. */
  | { kind: "failed"; httpStatus: number | null; error: string };

export interface WebhookCall {
  url: string;
  body: string;
  key: string;
  signature: string;
  allowInsecure: boolean;
  timeoutMs: number;
}

/** How much of a receiver's error body goes into webhook_logs. */
const ERROR_BODY_CHARS = 200;

/** Never throws. */
export async function postWebhook({ url, body, key, signature, allowInsecure, timeoutMs }: WebhookCall): Promise<WebhookOutcome> {
  const refused = refuseEndpoint(url, allowInsecure);
  if (refused) return { kind: "failed", httpStatus: null, error: `URL refused: ${refused}` };
  // A timer cleared as soon as the answer comes (AbortSignal.timeout would stay pending and keep the room awake).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException("timed out", "TimeoutError")), timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      // The SDKs compare Content-Type with "application/json" exactly: no charset.
      headers: { "Content-Type": "application/json", "X-Pusher-Key": key, "X-Pusher-Signature": signature },
      body,
      redirect: "manual",
      signal: abort.signal,
    });
    const status = response.status;
    if (status >= 200 && status < 300) {
      await response.body?.cancel();
      return { kind: "sent", httpStatus: status };
    }
    const text = (await response.text().catch(() => "")).slice(0, ERROR_BODY_CHARS);
    const error = `receiver answered ${status}${text ? `: ${text}` : ""}`;
    if (status === 429 || status >= 500) return { kind: "retry", httpStatus: status, error };
    return { kind: "failed", httpStatus: status, error: status >= 300 && status < 400 ? `receiver redirected (${status}); redirects are not followed` : error };
  } catch (error) {
    const timedOut = abort.signal.aborted;
    return { kind: "retry", httpStatus: null, error: timedOut ? `no answer within ${timeoutMs} ms` : `network error: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    clearTimeout(timer);
  }
}
