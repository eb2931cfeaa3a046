/**
 * A stand-in for the app that embeds the chat: a tiny HTTP server on its own
 * port (so its pages are on another origin than the service), answering
 * with whatever the test's handler returns for a path.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";

export interface HostResponse {
  status?: number;
  type: string;
  body: string;
}

export type HostHandler = (url: URL, request: IncomingMessage) => HostResponse | undefined | Promise<HostResponse | undefined>;

export class HostServer {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static start(port: number, handler: HostHandler): Promise<HostServer> {
    const server = createServer(async (request, response) => {
      const url = new URL(request.url ?? "/", `http://${request.headers.host}`);
      const answer = await handler(url, request);
      if (!answer) {
        response.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      response.writeHead(answer.status ?? 200, { "content-type": answer.type, "cache-control": "no-store" }).end(answer.body);
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve(new HostServer(server, `http://127.0.0.1:${port}`)));
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
