/** The entry point: `connect(room, options)` returns a live room handle. */
import { ROOM_ID_PATTERN } from "../../protocol/limits.js";
import { RoomError } from "./errors.js";
import { resolveOptions, type ConnectOptions } from "./options.js";
import { Room } from "./room.js";

/**
 * Joins `room` and keeps it joined: over WebSocket when it can, SSE or
 * long-poll when it cannot, reconnecting and resuming by itself until
 * `close()`. Returns at once; listen to `status` (or await
 * `room.whenConnected()`) to know when it is live.
 *
 * @example
 * const room = connect("lobby", { url: "https://chat.example.com", token });
 * room.on("message", (m) => console.log(m.from?.name, m.data.text));
 * await room.send({ text: "hello" });
 */
export function connect(room: string, options: ConnectOptions): Room {
  if (typeof room !== "string" || !ROOM_ID_PATTERN.test(room)) {
    throw new RoomError("invalid_room", "room ids match ^[A-Za-z0-9_\\-=@,.;:]{1,164}$");
  }
  const handle = new Room(room, resolveOptions(options));
  handle.start();
  return handle;
}
