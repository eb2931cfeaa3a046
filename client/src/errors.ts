/**
 * The one error type the client throws, rejects with and emits. `code` is
 * the server's snake_case code (SPEC §3) when the server answered, or one of
 * the client's own codes when it could not.
 */
import type { ErrorCode } from "../../protocol/errors.js";

/** Codes the client produces itself, when no server answer names the problem. */
export type LocalErrorCode =
  /** The server could not be reached (DNS, refused, reset, offline). */
  | "network_error"
  /** A transport did not open, or a send was not acknowledged, in time. */
  | "timeout"
  /** The room handle was closed. */
  | "closed"
  /** The server answered something that is not the contract's shape. */
  | "bad_response"
  /** The server closed the WebSocket with 1013: this client fell too far behind its acks. The room resumes at once. */
  | "too_far_behind";

export type RoomErrorCode = ErrorCode | LocalErrorCode;

export class RoomError extends Error {
  override readonly name = "RoomError";

  constructor(
    /** The contract's error code (`invalid_token`, `rate_limited`, …) or a local one (`network_error`, …). */
    readonly code: RoomErrorCode,
    message: string,
    /** The HTTP status, when the error came from an HTTP answer. */
    readonly status?: number,
    /** Seconds to wait before retrying (`rate_limited`, `unavailable`). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** Errors that retrying with the same credentials and request can never fix. */
  get permanent(): boolean {
    return PERMANENT.has(this.code);
  }

  /** Errors worth retrying later (the network, the server's own trouble, rate limits). */
  get transient(): boolean {
    if (this.code === "network_error" || this.code === "timeout" || this.code === "rate_limited" || this.code === "unavailable" || this.code === "too_far_behind") return true;
    return this.status !== undefined && this.status >= 500;
  }
}

/** Plain strings: a code the server drops or adds later must not break the client. */
const PERMANENT = new Set<string>([
  "invalid_room",
  "missing_token",
  "invalid_token",
  "forbidden_room",
  "forbidden_origin",
  "invalid_query",
  "invalid_body",
  "not_found",
  "method_not_allowed",
  "payload_too_large",
  "unsupported_media_type",
  "upgrade_required",
  "closed",
]);

/** Turns a non-2xx response into a RoomError, reading the contract's `{"error":{code,message}}` body. */
export async function errorFromResponse(response: Response): Promise<RoomError> {
  const retryAfterHeader = response.headers.get("retry-after");
  const retryAfter = retryAfterHeader !== null && /^\d+(\.\d+)?$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
  let code: RoomErrorCode = "bad_response";
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string") code = body.error.code as RoomErrorCode;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch {
    // not JSON: a proxy's page, say. Keep the status.
  }
  return new RoomError(code, message, response.status, retryAfter);
}

/** Wraps whatever was thrown (a fetch TypeError, an abort) as a RoomError. */
export function toRoomError(error: unknown): RoomError {
  if (error instanceof RoomError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RoomError("network_error", message || "network error");
}
