import type { Env as AppEnv } from "../../server/env";

declare global {
  namespace Cloudflare {
    interface Env extends AppEnv {}
  }
}
