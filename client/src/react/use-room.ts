/**
 * `useRoom(room, options)`: a room for a React component. Components that
 * ask for the same room on the same server share one connection (see
 * shared-rooms.ts); it closes when the last of them unmounts. The options
 * of the component that opened the connection are the ones used.
 */
import { useCallback, useSyncExternalStore } from "react";
import type { EventData } from "../../../protocol/envelope.js";
import type { Ack } from "../outbox.js";
import { INITIAL_SNAPSHOT, type RoomSnapshot } from "./room-state.js";
import { sharedRooms, type SharedRoomOptions } from "./shared-rooms.js";

/** The client library's options (`url`, `token` or `getToken`, transports…), and `history`: how many past messages to load (default 50, 0 for none). */
export type UseRoomOptions = SharedRoomOptions;

export interface UseRoomResult extends RoomSnapshot {
  /** Sends a chat message (`text`, or an object with a `text`); resolves once stored. */
  send: (data: string | EventData) => Promise<Ack>;
  /** Marks the room read up to `seq` (default: the newest message). */
  markRead: (seq?: number) => void;
}

export function useRoom(room: string, options: UseRoomOptions): UseRoomResult {
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin ?? "";
  const key = `${options.url ?? origin}\n${room}`;

  // Acquiring in subscribe (run after commit, and again under strict mode) keeps render pure.
  const subscribe = useCallback(
    (onChange: () => void) => {
      const shared = sharedRooms.acquire(key, room, options);
      const off = shared.state.subscribe(onChange);
      return () => {
        off();
        sharedRooms.release(key);
      };
    },
    // The connection is per room and server; other option changes apply to the next connection only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );
  const snapshot = useSyncExternalStore(
    subscribe,
    () => sharedRooms.peek(key)?.state.snapshot ?? INITIAL_SNAPSHOT,
    () => INITIAL_SNAPSHOT,
  );

  const send = useCallback(
    async (data: string | EventData): Promise<Ack> => {
      const shared = sharedRooms.peek(key);
      if (!shared) throw new Error(`useRoom: ${room} is not open (the component is not mounted)`);
      const handle = await shared.session.ready;
      return handle.send(data);
    },
    [key, room],
  );
  const markRead = useCallback(
    (seq?: number) => {
      const shared = sharedRooms.peek(key);
      const newest = shared?.state.snapshot.messages.at(-1)?.seq;
      const upTo = seq ?? newest;
      if (upTo !== undefined && upTo > 0) shared?.session.room?.read(upTo);
    },
    [key],
  );

  return { ...snapshot, send, markRead };
}
