import type { Env as AppEnv } from "../../server/env";

declare global {
  namespace Cloudflare {
    interface Env extends AppEnv {}
    // Types `exports` from "cloudflare:workers" (the Worker's own entrypoints).
    interface GlobalProps {
      mainModule: typeof import("../../worker/index");
      durableNamespaces: "ChatRoom" | "PusherHub";
    }
  }
}
