import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    }
  }
}

// Setup files run outside per-test storage isolation, so this applies once.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
