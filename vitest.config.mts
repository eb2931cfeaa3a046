/**
 * Four test projects:
 *  - worker: runs inside workerd through Cloudflare's Vitest integration
 *    (real Durable Objects, real local D1 with our migrations applied);
 *  - worker-idp: the same, with the Worker's outbound fetches answered by a
 *    stand-in for identity providers' JWKS endpoints
 *    (test/idp/identity-provider.ts);
 *  - worker-webhooks: the same with WEBHOOK_URLS set, pointing at a local
 *    receiver that verifies every call with the `pusher` SDK
 *    (test/e2e/webhook-receiver.ts); only test/worker/webhooks/ runs there,
 *    so the other suites' rooms queue no webhooks;
 *  - e2e: runs in Node against a real `wrangler dev` with real clients
 *    (WebSocket, EventSource, fetch), including crash/restart runs.
 */
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { createServer } from "node:net";
import { defineConfig } from "vitest/config";
import { identityProvider } from "./test/idp/identity-provider.ts";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export default defineConfig(async () => {
  const migrations = await readD1Migrations({ migrationsDir: "./migrations" });
  // The receiver of the worker-webhooks project listens here (started by its global setup).
  const receiverPort = Number(process.env.WORKER_WEBHOOK_RECEIVER_PORT || (await freePort()));
  process.env.WORKER_WEBHOOK_RECEIVER_PORT = String(receiverPort);
  interface WorkerProject {
    name: string;
    include: string[];
    exclude?: string[];
    /** Bindings besides (and over) the shared ones below. */
    extraBindings?: Record<string, string>;
    globalSetup?: string[];
    /** Answers the Worker's outbound fetches (a stand-in identity provider). */
    outboundService?: { node: typeof identityProvider };
  }
  const workerProject = ({ name, include, exclude = [], extraBindings = {}, globalSetup = [], outboundService }: WorkerProject) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          ...(outboundService ? { outboundService } : {}),
          bindings: {
            TEST_MIGRATIONS: migrations,
            JWT_SECRET: "test-jwt-secret-0123456789abcdef",
            NOTIFY_SECRET: "test-notify-secret-0123456789",
            PUSHER_APP_ID: "424242",
            PUSHER_KEY: "test-pusher-key-0123",
            PUSHER_SECRET: "test-pusher-secret-0123456789abcdef",
            // Every room is a public Pusher channel here (the default is none; pusher-channels.test.ts checks that refusal).
            PUSHER_PUBLIC_CHANNELS: "*",
            // A fixed master key (test-only; base64 of 32 bytes) for private-encrypted- channels.
            PUSHER_ENCRYPTION_MASTER_KEY: "dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=",
            // subscription_count frames only where a test expects them, so other tests see exactly their frames.
            PUSHER_SUBSCRIPTION_COUNT: "counted-*,private-counted-*,cache-counted-*,presence-counted-*",
            CORS_ORIGINS: "https://app.example",
            // Small tail and fast flushes so tests cross the D1 boundary quickly.
            ROOM_TAIL_EVENTS: "20",
            D1_FLUSH_DELAY_MS: "10",
            PRESENCE_GRACE_MS: "200",
            // A small cap on a WebSocket's unacknowledged bytes, so flow-control tests need little traffic.
            WS_MAX_UNACKED_BYTES: "262144",
            // `npm run fuzz` sets these; `npm test` runs the fuzz suites' fixed sample (test/worker/fuzz-support.ts).
            FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
            FUZZ_SEED: process.env.FUZZ_SEED ?? "",
            // Production's endpoint policy whatever a local .dev.vars says (the push tests check refusals),
            // and a fixed VAPID key pair (test-only) so pushes are built the same with or without .dev.vars.
            PUSH_ALLOW_HTTP_ENDPOINTS: "",
            VAPID_PUBLIC_KEY: "BBzL5u_VtSGTtXDuYrxsVwRnb8AbqW4pRTS8VGWnkbDH70k7cJycWE0ZXELAw-uda1uKxQtoylW2KNJ7qAgyb-c",
            VAPID_PRIVATE_KEY: "6mwUGFn-7flc8ZuNO_--cmnO6IvaGuptTAa65vF0Nik",
            VAPID_SUBJECT: "mailto:tests@rooms.test",
            // Client tokens are JWT_SECRET's alone unless a test says otherwise, whatever a local .dev.vars holds.
            JWT_PUBLIC_KEYS: "",
            JWT_JWKS_URL: "",
            JWT_JWKS_ALLOW_HTTP: "",
            JWT_ISSUER: "",
            JWT_AUDIENCE: "",
            ...extraBindings,
          },
        },
      }),
    ],
    test: {
      name,
      include,
      exclude,
      globalSetup,
      // Generous, because a test's steps wait on real storage and timers and CI machines
      // are shared; no test asserts speed through this (benchmarks do that, as ratios).
      testTimeout: 30_000,
      setupFiles: ["./test/worker/setup.ts"],
    },
  });
  return {
    test: {
      projects: [
        workerProject({ name: "worker", include: ["test/worker/**/*.test.ts"], exclude: ["test/worker/webhooks/**"] }),
        workerProject({ name: "worker-idp", include: ["test/worker-idp/**/*.test.ts"], outboundService: { node: identityProvider } }),
        workerProject({
          name: "worker-webhooks",
          include: ["test/worker/webhooks/**/*.test.ts"],
          globalSetup: ["./test/e2e/webhook-receiver-setup.ts"],
          extraBindings: {
            // Two receivers, so per-URL progress is exercised (both are the same local server, told apart by path).
            WEBHOOK_URLS: `http://127.0.0.1:${receiverPort}/hooks,http://127.0.0.1:${receiverPort}/hooks/second`,
            WEBHOOK_EVENTS: "channel_occupied,channel_vacated,member_added,member_removed,client_event,cache_miss,message",
            PUSH_ALLOW_HTTP_ENDPOINTS: "1",
            WEBHOOK_BATCH_MS: "20",
            WEBHOOK_RETRY_BASE_MS: "50",
            WEBHOOK_MAX_PENDING: "50",
          },
        }),
        {
          test: {
            name: "e2e",
            include: ["test/e2e/**/*.test.ts"],
            environment: "node",
            globalSetup: ["./test/e2e/global-setup.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
            fileParallelism: false,
          },
        },
      ],
    },
  };
});
