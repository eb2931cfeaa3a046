/**
 * A token-verification setting that cannot work (a bad PEM, an unreachable
 * JWKS with nothing cached, no key at all) answers `500 server_misconfigured`
 * naming the variable, and is logged once per isolate rather than once per
 * request: an operator sees it, a flood of requests does not flood the logs.
 * The message names the variable and what is wrong, never key material.
 */
import { ApiError } from "../http/errors";

const logged = new Set<string>();
/** Distinct messages remembered; past this a message is logged again (bounded memory). */
const MAX_REMEMBERED = 256;

export type TokenVariable = "JWT_PUBLIC_KEYS" | "JWT_JWKS_URL" | "JWT_JWKS_REFETCH_SECONDS" | "JWT_SECRET, JWT_PUBLIC_KEYS or JWT_JWKS_URL";

export function misconfigured(variable: TokenVariable, detail: string): ApiError {
  const message = `${variable}: ${detail}`;
  if (!logged.has(message)) {
    if (logged.size >= MAX_REMEMBERED) logged.clear();
    logged.add(message);
    console.error(`server misconfigured: ${message}`);
  }
  return new ApiError("server_misconfigured", message);
}
