/**
 * Error codes of the public contract and the HTTP status each one maps to.
 * Every error body is `{"error":{"code","message"}}`; over WebSocket it is a
 * frame `{"type":"error","code","message"}`.
 */
export const ERROR_STATUS = {
  invalid_room: 400,
  invalid_query: 400,
  invalid_body: 400,
  missing_token: 401,
  invalid_token: 401,
  forbidden_room: 403,
  forbidden_origin: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upgrade_required: 426,
  rate_limited: 429,
  unavailable: 503,
  server_misconfigured: 500,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error as it travels between the room object and the Worker. */
export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  /** Seconds, for rate_limited and unavailable. */
  retryAfter?: number;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}
