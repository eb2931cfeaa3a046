/**
 * One shared `wrangler dev` for the e2e project; tests reach it with
 * `inject("serverUrl")`. Tests that crash or restart a server start their own.
 * It also says, once, when the browser tests cannot run (test/e2e/chromium.ts).
 */
import type { TestProject } from "vitest/node";
import { CHROMIUM_MISSING, chromiumInstalled } from "./chromium";
import { DevServer } from "./server";

declare module "vitest" {
  export interface ProvidedContext {
    serverUrl: string;
  }
}

export default async function setup(project: TestProject) {
  // Said once per run here, not once per browser test file.
  if (!chromiumInstalled) console.warn(`\n${CHROMIUM_MISSING}\n`);
  const server = await DevServer.start();
  project.provide("serverUrl", server.url);
  return async () => {
    await server.stop();
  };
}
