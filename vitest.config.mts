/**
 * Two test projects:
 *  - worker: runs inside workerd through Cloudflare's Vitest integration
 *    (real Durable Objects, real local D1 with our migrations applied);
 *  - e2e: runs in Node against a real `wrangler dev` with real clients
 *    (WebSocket, EventSource, fetch), including crash/restart runs.
 */
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  const migrations = await readD1Migrations({ migrationsDir: "./migrations" });
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  JWT_SECRET: "test-jwt-secret-0123456789abcdef",
                  NOTIFY_SECRET: "test-notify-secret-0123456789",
                  CORS_ORIGINS: "https://app.example",
                  // Small tail and fast flushes so tests cross the D1 boundary quickly.
                  ROOM_TAIL_EVENTS: "20",
                  D1_FLUSH_DELAY_MS: "10",
                  PRESENCE_GRACE_MS: "200",
                },
              },
            }),
          ],
          test: {
            name: "worker",
            include: ["test/worker/**/*.test.ts"],
            setupFiles: ["./test/worker/setup.ts"],
          },
        },
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
