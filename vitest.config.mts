/**
 * Three test projects:
 *  - worker: runs inside workerd through Cloudflare's Vitest integration
 *    (real Durable Objects, real local D1 with our migrations applied);
 *  - worker-idp: the same, with the Worker's outbound fetches answered by a
 *    stand-in for identity providers' JWKS endpoints
 *    (test/idp/identity-provider.ts);
 *  - e2e: runs in Node against a real `wrangler dev` with real clients
 *    (WebSocket, EventSource, fetch), including crash/restart runs.
 */
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { identityProvider } from "./test/idp/identity-provider.ts";

export default defineConfig(async () => {
  const migrations = await readD1Migrations({ migrationsDir: "./migrations" });
  const workerProject = (name: string, include: string, outbound: { outboundService?: { node: typeof identityProvider } } = {}) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          ...outbound,
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
          },
        },
      }),
    ],
    test: {
      name,
      include: [include],
      // Generous, because a test's steps wait on real storage and timers and CI machines
      // are shared; no test asserts speed through this (benchmarks do that, as ratios).
      testTimeout: 30_000,
      setupFiles: ["./test/worker/setup.ts"],
    },
  });
  return {
    test: {
      projects: [
        workerProject("worker", "test/worker/**/*.test.ts"),
        workerProject("worker-idp", "test/worker-idp/**/*.test.ts", { outboundService: { node: identityProvider } }),
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
