/**
 * One shared `wrangler dev` for the e2e project; tests reach it with
 * `inject("serverUrl")`. Tests that crash or restart a server start their own.
 */
import type { TestProject } from "vitest/node";
import { DevServer } from "./server";

declare module "vitest" {
  export interface ProvidedContext {
    serverUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const server = await DevServer.start();
  project.provide("serverUrl", server.url);
  return async () => {
    await server.stop();
  };
}
