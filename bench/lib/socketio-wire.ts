/**
 * The Socket.io client side of the wire, for the bench's Socket.io sockets:
 * Engine.IO protocol 4 over its WebSocket transport, carrying Socket.IO
 * protocol 5 packets — what `socket.io-client` sends with
 * `transports: ["websocket"]`, spoken through the same `ws` client the bench
 * uses for ours and for the raw ws baseline. That keeps the client's cost per
 * frame the same for the three systems, so the figures compare the servers
 * (socket.io-client's own decoding, several layers of emitters per packet,
 * would otherwise be billed to Socket.io on a machine whose cores the client
 * shares with the server).
 *
 * Packets handled (https://socket.io/docs/v4/socket-io-protocol/):
 *   server "0{…}"  engine open          → client "40" (connect to the main namespace)
 *   server "2"     engine ping          → client "3"  (pong)
 *   server "40{…}" namespace connected
 *   server "42[name, …args]"  an event
 *   server "43<id>[…args]"    the answer to the client's event <id>
 *   server "44{…}" connect error; "1" engine close
 *   client "42<id>[name, …args]"  an event asking for an answer
 */

export type SocketIoPacket =
  | { kind: "open" }
  | { kind: "ping" }
  | { kind: "connected" }
  | { kind: "event"; name: string; args: unknown[] }
  | { kind: "ack"; id: number; args: unknown[] }
  | { kind: "error"; message: string }
  | { kind: "close" }
  | { kind: "other" };

/** The path and query a Socket.io client opens its WebSocket on. */
export function socketIoPath(query: Record<string, string>): string {
  return `/socket.io/?EIO=4&transport=websocket&${new URLSearchParams(query)}`;
}

export const CONNECT_PACKET = "40";
export const PONG_PACKET = "3";

export function decodeSocketIo(text: string): SocketIoPacket {
  switch (text[0]) {
    case "0":
      return { kind: "open" };
    case "1":
      return { kind: "close" };
    case "2":
      return { kind: "ping" };
    case "4":
      break;
    default:
      return { kind: "other" };
  }
  switch (text[1]) {
    case "0":
      return { kind: "connected" };
    case "2": {
      const start = text.indexOf("[");
      const [name, ...args] = JSON.parse(text.slice(start)) as [string, ...unknown[]];
      return { kind: "event", name, args };
    }
    case "3": {
      const start = text.indexOf("[");
      return { kind: "ack", id: Number(text.slice(2, start)), args: JSON.parse(text.slice(start)) as unknown[] };
    }
    case "4":
      return { kind: "error", message: text.slice(2) };
    default:
      return { kind: "other" };
  }
}

/** An event that asks the server for an answer (the callback of `socket.emit(name, …args, callback)`). */
export function encodeEventWithAck(id: number, name: string, ...args: unknown[]): string {
  return `42${id}${JSON.stringify([name, ...args])}`;
}
