/**
 * The 101 response that hands a client its WebSocket, without
 * permessage-deflate.
 *
 * Browsers (and the `ws` package) offer `Sec-WebSocket-Extensions:
 * permessage-deflate` on every connection, and workerd accepts it when the
 * response does not say otherwise. Then every frame is deflated separately
 * for every socket: a fan-out to N sockets runs zlib N times on the same
 * bytes, and each socket keeps its own compression state. Measured with
 * 50 and 1,000 clients that offer it (`ws` defaults): zlib was about a
 * quarter of the room process's CPU during a fan-out, and each socket cost
 * about 540 KiB of the room process's memory instead of about 320 KiB.
 * Chat frames are small JSON; Socket.io 4 and `ws` servers leave compression
 * off by default for the same reason.
 *
 * workerd negotiates in "manual" mode: when the response names extensions,
 * it agrees to the client's offer only as far as that list allows, and the
 * header itself never reaches the wire (the runtime writes the agreed
 * extensions, here none). A list without `permessage-deflate` therefore
 * turns compression off, whichever layer sends the 101: this Worker in
 * production, or the local runtime's entry point and `wrangler dev`'s proxy,
 * which pass the uncompressed socket through. An empty value would be
 * dropped on the way and let the client's offer through, hence a token.
 */
const NO_COMPRESSION = { "sec-websocket-extensions": "identity" };

export function websocketUpgrade(client: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: client, headers: NO_COMPRESSION });
}
