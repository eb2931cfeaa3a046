/**
 * Global setup of the `worker-webhooks` project: the webhook receiver the
 * rooms inside workerd call (WEBHOOK_URLS, on the port vitest.config.mts
 * chose). Tests reach it over HTTP (POST /script, GET /received).
 */
import { WebhookReceiver } from "./webhook-receiver";

export default async function setup() {
  const port = Number(process.env.WORKER_WEBHOOK_RECEIVER_PORT);
  const receiver = await WebhookReceiver.start(
    { appId: "424242", key: "test-pusher-key-0123", secret: "test-pusher-secret-0123456789abcdef" },
    port,
  );
  return () => receiver.stop();
}
