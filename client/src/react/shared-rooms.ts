/**
 * One connection per room for all the components that ask for it: the
 * first `acquire` opens the session, the last `release` closes it. The
 * close waits one task, so a component that unmounts and mounts again at
 * once (React's strict mode runs every effect twice in development, and
 * so does a remount with the same key) keeps the same connection instead
 * of opening a second one.
 */
import { openRoom, type RoomSession, type RoomSessionOptions } from "../session.js";
import { RoomState } from "./room-state.js";

export interface SharedRoom {
  readonly session: RoomSession;
  readonly state: RoomState;
}

interface Entry extends SharedRoom {
  refs: number;
  closeTimer?: ReturnType<typeof setTimeout>;
}

export type SharedRoomOptions = RoomSessionOptions & { history?: number };

export class SharedRooms {
  readonly #entries = new Map<string, Entry>();

  /** The session for `key`, opened with `options` if nobody holds it yet. Pair every call with `release(key)`. */
  acquire(key: string, room: string, options: SharedRoomOptions): SharedRoom {
    let entry = this.#entries.get(key);
    if (!entry) {
      const { history, ...sessionOptions } = options;
      const session = openRoom(room, sessionOptions);
      entry = { session, state: new RoomState(session, history ?? 50), refs: 0 };
      this.#entries.set(key, entry);
    }
    clearTimeout(entry.closeTimer);
    entry.refs++;
    return entry;
  }

  release(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry || --entry.refs > 0) return;
    clearTimeout(entry.closeTimer);
    entry.closeTimer = setTimeout(() => {
      if (entry.refs > 0 || this.#entries.get(key) !== entry) return;
      this.#entries.delete(key);
      entry.state.close();
      entry.session.close();
    }, 0);
  }

  peek(key: string): SharedRoom | undefined {
    return this.#entries.get(key);
  }
}

/** The registry `useRoom` shares connections through. */
export const sharedRooms = new SharedRooms();
