/** Server-side triggers present NOTIFY_SECRET as a Bearer token. */
import { requireSecret } from "../../server/config";
import type { Env } from "../../server/env";
import { ApiError } from "../http/errors";
import { secretsEqual } from "../../server/auth/secrets-equal";
import { bearerToken } from "./secrets";

export async function authenticateTrigger(request: Request, env: Env): Promise<void> {
  const expected = requireSecret(env, "NOTIFY_SECRET");
  const presented = bearerToken(request);
  if (!presented) throw new ApiError("missing_token", "send Authorization: Bearer <NOTIFY_SECRET>");
  if (!(await secretsEqual(presented, expected))) throw new ApiError("invalid_token", "that is not the notify secret");
}
