/**
 * The load generator's HTTP client: plain node:http with a keep-alive agent
 * and no socket cap, so hundreds of requests can be held at once, and the
 * arrival time of each answer is taken the moment its last byte is read
 * (`performance.now()` in the 'end' handler, before any JSON parsing).
 *
 * Loopback only: every URL is checked to be http://127.0.0.1.
 */
import http from "node:http";

export const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096, scheduling: "lifo" });

export interface TimedResponse<T> {
  status: number;
  body: T;
  /** performance.now() when the request was handed to the socket layer. */
  sentAt: number;
  /** performance.now() when the last byte of the body arrived. */
  endedAt: number;
}

export function assertLoopback(url: string | URL): URL {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" || parsed.hostname !== "127.0.0.1") {
    throw new Error(`the bench only talks to http://127.0.0.1, not ${parsed.origin}`);
  }
  return parsed;
}

/** GET a JSON resource and time its arrival. Rejects on network errors and non-JSON bodies. */
export function getJson<T>(url: string | URL, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<TimedResponse<T>> {
  const target = assertLoopback(url);
  return attempt<T>(target, headers, signal, true);
}

function attempt<T>(target: URL, headers: Record<string, string>, signal: AbortSignal | undefined, mayRetry: boolean): Promise<TimedResponse<T>> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const request = http.get(target, { agent, headers, signal }, (response) => readTimedJson<T>(response, `GET ${target.pathname}`, sentAt).then(resolve, reject));
    request.on("error", (error: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed while idle: retry once on a fresh one (Node's documented pattern).
      if (mayRetry && request.reusedSocket && error.code === "ECONNRESET") {
        attempt<T>(target, headers, signal, false).then(resolve, reject);
      } else {
        reject(error);
      }
    });
  });
}

/** Reads a whole JSON answer; its time is taken when the last byte has been read. */
function readTimedJson<T>(response: http.IncomingMessage, what: string, sentAt: number): Promise<TimedResponse<T>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("error", reject);
    response.on("end", () => {
      const endedAt = performance.now();
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as T, sentAt, endedAt });
      } catch {
        reject(new Error(`${what}: ${response.statusCode} with a non-JSON body: ${text.slice(0, 200)}`));
      }
    });
  });
}

/** POST a JSON body and time the answer, as getJson does. Rejects on network errors and non-JSON answers. */
export function postJson<T>(url: string | URL, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<TimedResponse<T>> {
  const target = assertLoopback(url);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const request = http.request(
      target,
      { method: "POST", agent, signal, headers: { ...headers, "content-type": "application/json", "content-length": String(payload.length) } },
      (response) => readTimedJson<T>(response, `POST ${target.pathname}`, sentAt).then(resolve, reject),
    );
    request.on("error", reject);
    request.end(payload);
  });
}

/** Resolves at `performance.now() >= at` (timer granularity is about 1 ms). */
export function sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
  const delay = at - performance.now();
  if (delay <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, delay);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Resolves when `promise` does or when `signal` aborts (whichever is first; never rejects on abort). */
export function untilAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    signal.addEventListener("abort", () => resolve(), { once: true });
    promise.then(() => resolve(), () => resolve());
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
