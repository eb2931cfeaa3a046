/** React bindings for realtime rooms: `useRoom`. See client/README.md. */
export { useRoom, type UseRoomOptions, type UseRoomResult } from "./use-room.js";
export type { RoomSnapshot } from "./room-state.js";
export { SharedRooms, sharedRooms, type SharedRoom } from "./shared-rooms.js";
