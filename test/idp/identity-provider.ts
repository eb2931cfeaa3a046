/**
 * A stand-in for identity providers' JWKS endpoints, run in Node: as the
 * outbound service of the `worker-idp` test project (every fetch the Worker
 * makes in those tests lands here, as `https://idp.test/…`), and behind a
 * real HTTP server on 127.0.0.1 in the e2e tests. A test publishes a key
 * set under a path of its own (`PUT <origin>/<tenant>/jwks.json` with
 * `{"jwks", "cacheControl"?, "status"?, "delayMs"?}`), and the service under
 * test then fetches it like any provider's: `GET` answers the set with its
 * Cache-Control, or the scripted failure status (503: the endpoint is down;
 * 302: a redirect the service must not follow), after `delayMs` if given
 * (an endpoint too slow to wait for). `GET <tenant>/hits` tells
 * how many times the set was fetched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

interface Published {
  jwks: unknown;
  cacheControl?: string;
  status?: number;
  delayMs?: number;
  hits: number;
}

const tenants = new Map<string, Published>();

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (status === 204) return void res.writeHead(204).end();
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export async function identityProvider(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", `https://${req.headers.host ?? "idp.test"}`);
  const match = /^\/([\w-]+)\/(jwks\.json|hits)$/.exec(url.pathname);
  if (!match) return answer(res, 404, { error: `nothing at ${url.href}` });
  const [, tenant, what] = match as unknown as [string, string, string];
  if (req.method === "PUT" && what === "jwks.json") {
    const { jwks, cacheControl, status, delayMs } = JSON.parse(await readBody(req));
    const hits = tenants.get(tenant)?.hits ?? 0;
    tenants.set(tenant, { jwks, cacheControl, status, delayMs, hits });
    return answer(res, 204, null);
  }
  const published = tenants.get(tenant);
  if (what === "hits") return answer(res, 200, { hits: published?.hits ?? 0 });
  if (!published) return answer(res, 404, { error: "no such tenant" });
  published.hits++;
  if (published.delayMs) await new Promise((r) => setTimeout(r, published.delayMs));
  if (published.status === 302) return answer(res, 302, null, { location: `https://idp.test/${tenant}/elsewhere.json` });
  if (published.status) return answer(res, published.status, { error: "unavailable" });
  return answer(res, 200, published.jwks, published.cacheControl ? { "cache-control": published.cacheControl } : {});
}
