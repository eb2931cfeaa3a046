/**
 * Web Push routes (SPEC §7): the server's VAPID public key, the caller's
 * subscriptions (one per browser/device), and a test push. Delivery of room
 * events is not here: each room queues and sends its own pushes
 * (objects/room/push-queue.ts). See docs/push.md.
 */
import { base64url } from "jose";
import { pushSubscribeBodySchema, pushUnsubscribeBodySchema, type PushNotificationPayload } from "../../protocol/push";
import type { Env } from "../../server/env";
import { pushConfigFrom, vapidKeysFrom } from "../../server/push/config";
import { refuseEndpoint } from "../../server/push/endpoint-policy";
import { encodeNotification } from "../../server/push/payload";
import { sendPush } from "../../server/push/sender";
import { PushStore, type PushLogEntry } from "../../server/push/store";
import { requireSecret } from "../../server/config";
import { authenticateClient, type ClientIdentity } from "../auth/client-token";
import { readJsonBody } from "../http/body";
import { ApiError, json } from "../http/errors";
import type { RouteHandler } from "./context";

/** Subscription bodies are small: an endpoint (≤ 2 KiB), two keys, two labels. */
const BODY_LIMIT = 8 * 1024;

const store = (env: Env) => new PushStore(env.DB);
const caller = (request: Request, env: Env): Promise<ClientIdentity> => authenticateClient(request, new URL(request.url), env);

/** `GET /push/vapid-public-key`: what the browser passes to pushManager.subscribe as applicationServerKey. No auth. */
export const vapidPublicKey: RouteHandler = (_request, env) => json({ publicKey: requireSecret(env, "VAPID_PUBLIC_KEY") });

/** p256dh must be a point on P-256, not just 65 bytes that start with 0x04. */
async function isCurvePoint(p256dh: string): Promise<boolean> {
  try {
    await crypto.subtle.importKey("raw", base64url.decode(p256dh), { name: "ECDH", namedCurve: "P-256" }, false, []);
    return true;
  } catch {
    return false;
  }
}

/** `POST /push/subscriptions`: 201 with the device; the same endpoint again updates it (and may change its owner). */
export const subscribe: RouteHandler = async (request, env) => {
  const identity = await caller(request, env);
  const body = await readJsonBody(request, pushSubscribeBodySchema, BODY_LIMIT);
  const { endpoint, keys } = body.subscription;
  const refused = refuseEndpoint(endpoint, pushConfigFrom(env).allowInsecureEndpoints);
  if (refused) throw new ApiError("invalid_body", `subscription.endpoint: ${refused}`);
  if (!(await isCurvePoint(keys.p256dh))) throw new ApiError("invalid_body", "subscription.keys.p256dh: is not a point on the P-256 curve");
  const device = await store(env).upsert(identity.user.id, {
    endpoint,
    p256dh: keys.p256dh.replace(/=+$/, ""),
    auth: keys.auth.replace(/=+$/, ""),
    deviceType: body.deviceType || null,
    deviceName: body.deviceName || null,
  });
  return json({ subscription: device }, 201);
};

/** `GET /push/subscriptions` (extension): the caller's devices, without their keys. */
export const listSubscriptions: RouteHandler = async (request, env) => {
  const identity = await caller(request, env);
  return json({ subscriptions: await store(env).list(identity.user.id) });
};

/** `DELETE /push/subscriptions` `{endpoint}`: 204, or 404 when the caller has no such subscription. */
export const unsubscribe: RouteHandler = async (request, env) => {
  const identity = await caller(request, env);
  const { endpoint } = await readJsonBody(request, pushUnsubscribeBodySchema, BODY_LIMIT);
  if (!(await store(env).remove(identity.user.id, endpoint))) {
    throw new ApiError("not_found", "you have no push subscription with this endpoint");
  }
  return new Response(null, { status: 204 });
};

/**
 * `POST /push/test`: one push to each of the caller's devices, now, one
 * attempt each (no retries: the answer says what happened). Every attempt
 * is logged; a device that answers 404/410 is deleted.
 */
export const sendTestPush: RouteHandler = async (request, env) => {
  const identity = await caller(request, env);
  const vapid = vapidKeysFrom(env);
  const config = pushConfigFrom(env);
  const pushes = store(env);
  const inbox = `user:${identity.user.id}`;
  const notification: PushNotificationPayload = {
    title: "Test notification",
    body: `Push notifications reach this device, ${identity.user.name}.`,
    url: "/",
    room: inbox,
    seq: 0,
    event: "push_test",
  };
  const payload = encodeNotification(notification);
  const targets = await pushes.targetsFor([identity.user.id]);
  const outcomes = await Promise.all(targets.map((target) => sendPush(target, payload, { urgency: "normal", config, vapid })));
  const at = Date.now();
  const entries: PushLogEntry[] = targets.map((target, i) => {
    const outcome = outcomes[i]!;
    return {
      id: crypto.randomUUID(),
      userId: identity.user.id,
      room: null,
      seq: null,
      endpoint: target.endpoint,
      auth: target.auth,
      status: outcome.kind === "retry" ? "failed" : outcome.kind,
      httpStatus: outcome.httpStatus,
      error: outcome.kind === "sent" ? null : outcome.error,
      attempt: 1,
      at,
    };
  });
  await pushes.record(entries);
  const sent = outcomes.filter((o) => o.kind === "sent").length;
  return json({ sent, failed: outcomes.length - sent });
};
