/**
 * Reads a room's history as one sequence, wherever each part lives: the
 * newest events in the object's own storage, older ones in D1. Callers never
 * see the boundary.
 */
import type { D1Store } from "./d1-store";
import type { EncodedEvent } from "./encoded-event";
import type { RoomLog } from "./room-log";

export class RoomHistory {
  constructor(
    private readonly log: RoomLog,
    private readonly d1: D1Store,
  ) {}

  /** Up to `limit` events with seq > after, oldest first, gap-free. */
  async after(after: number, limit: number): Promise<EncodedEvent[]> {
    const out: EncodedEvent[] = [];
    let cursor = after;
    while (out.length < limit && cursor < this.log.lastSeq) {
      if (cursor < this.log.trimmedSeq) {
        // The next events were trimmed locally, so D1 holds them (trim waits for the flush).
        const rows = await this.d1.readAfter(this.#room(), cursor, this.log.trimmedSeq + 1, limit - out.length);
        if (rows.length === 0 || rows[0]!.seq !== cursor + 1) {
          throw new Error(`D1 is missing events of room ${this.#room()} after seq ${cursor}`);
        }
        out.push(...rows);
        cursor = rows[rows.length - 1]!.seq;
        continue; // trimmedSeq may have moved while we awaited D1: look again
      }
      const rows = this.log.readAfter(cursor, limit - out.length);
      out.push(...rows);
      break;
    }
    return out;
  }

  /** The newest `limit` events with after < seq < before, oldest first. */
  async before(before: number, limit: number, after = 0): Promise<EncodedEvent[]> {
    const local = this.log.readBefore(before, limit).filter((e) => e.seq > after);
    const trimmed = this.log.trimmedSeq;
    if (local.length >= limit || trimmed <= after) return local;
    const upper = local.length > 0 ? local[0]!.seq : Math.min(before, trimmed + 1);
    if (upper <= after + 1) return local;
    const older = await this.d1.readBefore(this.#room(), upper, limit - local.length);
    return [...older.filter((e) => e.seq > after), ...local];
  }

  #room(): string {
    const room = this.log.room;
    if (!room) throw new Error("room name unknown");
    return room;
  }
}
