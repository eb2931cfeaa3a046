/** Server-side triggers present NOTIFY_SECRET as a Bearer token. */
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { ApiError } from "../http/errors";
import { configuredSecretMatcher } from "../../server/auth/secrets-equal";
import { bearerToken } from "./secrets";

/** The secret's digest is kept between requests: one SHA-256 per trigger instead of two. */
const matchesNotifySecret = configuredSecretMatcher();

export async function authenticateTrigger(request: Request, env: Env): Promise<void> {
  const expected = requireSecret(env, "NOTIFY_SECRET");
  const presented = bearerToken(request);
  if (!presented) throw new ApiError("missing_token", "send Authorization: Bearer <NOTIFY_SECRET>");
  if (!(await matchesNotifySecret(presented, expected))) throw new ApiError("invalid_token", "that is not the notify secret");
}
