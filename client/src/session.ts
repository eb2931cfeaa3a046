/**
 * A room opened with a token source instead of a token (the widget and the
 * React hook open rooms this way): it gets the first token, retrying a
 * failing source with backoff, then connects; it hands every token
 * refreshed before expiry to the room, and the source is the room's
 * `refreshToken` hook when the server refuses one. With a plain `token`
 * it connects at once.
 */
import { ROOM_ID_PATTERN } from "../../protocol/limits.js";
import type { BackoffOptions } from "./backoff.js";
import { connect } from "./connect.js";
import { Emitter } from "./emitter.js";
import { RoomError } from "./errors.js";
import type { ConnectOptions } from "./options.js";
import type { Room } from "./room.js";
import { TokenSource, type GetToken } from "./token-source.js";

export type RoomSessionOptions = Omit<ConnectOptions, "token" | "refreshToken"> & {
  /** A client JWT; or give `getToken`. */
  token?: string;
  /** Asked for the first token, before each one expires, and when the server refuses one. */
  getToken?: GetToken;
  /** Delays between tries of a failing `getToken`. Default 1 s doubling up to 60 s. */
  tokenBackoff?: BackoffOptions;
};

export interface RoomSessionEvents {
  /** The room handle, once there is a token. */
  room: Room;
  /** `getToken` failed; it is asked again in `retryInMs`. */
  tokenFailed: { error: Error; retryInMs: number };
}

export class RoomSession extends Emitter<RoomSessionEvents> {
  #room?: Room;
  #tokens?: TokenSource;
  #closed = false;
  /** Resolves with the room handle once there is a token; rejects if the session is closed first. */
  readonly ready: Promise<Room>;

  constructor(
    readonly name: string,
    options: RoomSessionOptions,
  ) {
    super();
    if (typeof name !== "string" || !ROOM_ID_PATTERN.test(name)) throw new RoomError("invalid_room", `not a room id: ${name}`);
    const { token, getToken, tokenBackoff, ...connectOptions } = options;
    if (!getToken) {
      if (!token) throw new TypeError("openRoom: give `token` or `getToken`");
      this.#room = connect(name, { ...connectOptions, token });
      this.ready = Promise.resolve(this.#room);
      return;
    }
    const tokens = (this.#tokens = new TokenSource(getToken, { backoff: tokenBackoff }));
    tokens.on("failed", (failure) => this.emit("tokenFailed", failure));
    tokens.on("token", (fresh) => this.#room?.setToken(fresh));
    this.ready = (token ? Promise.resolve(token) : tokens.first()).then((first) => {
      if (this.#closed) throw new Error("room session closed");
      const room = connect(name, { ...connectOptions, token: first, refreshToken: () => tokens.fetch() });
      this.#room = room;
      this.emit("room", room);
      return room;
    });
    this.ready.catch(() => undefined); // a session closed while waiting is not an error anyone must handle
  }

  /** The room handle, or undefined while the first token is awaited. */
  get room(): Room | undefined {
    return this.#room;
  }

  /** Asks a failing token source again now instead of after its backoff. */
  retryToken(): void {
    this.#tokens?.retryNow();
  }

  close(): void {
    this.#closed = true;
    this.#tokens?.close();
    this.#room?.close();
  }
}

/** Opens `room` with a `token` or a `getToken` source; see RoomSession. */
export function openRoom(room: string, options: RoomSessionOptions): RoomSession {
  return new RoomSession(room, options);
}
