/** The contract's error shape, as a throwable and as a Response. */
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type ErrorInfo } from "../../protocol/errors";

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  static from(info: ErrorInfo): ApiError {
    return new ApiError(info.code, info.message, info.retryAfter);
  }
}

export function errorResponse(code: ErrorCode, message: string, retryAfter?: number, extra: Record<string, unknown> = {}): Response {
  const body: ErrorBody = { ...extra, error: { code, message } };
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  return new Response(JSON.stringify(body), { status: ERROR_STATUS[code], headers });
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });
}
