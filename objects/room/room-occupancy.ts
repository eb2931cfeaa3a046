/**
 * Who is in the room, as the app's backend hears of it through webhooks:
 * `channel_occupied` / `channel_vacated` and `member_added` /
 * `member_removed` (SPEC §11). Every transport counts: the Hub's live
 * subscribers (WebSockets, hibernated ones included, SSE streams, held
 * long-polls, Pusher hub shards) and Presence's members (a long-poll keeps
 * its user present for 30 s after it answers).
 *
 * What was announced is persisted (`webhook_room` and `webhook_members`),
 * written in the same step that queues the announcement, so a room that is
 * evicted and woken neither announces again nor forgets to announce the
 * end. So is, roughly (to within POLL_WINDOW_SLACK_MS, to write at most
 * once per that), the end of the last long-poll's presence window, which
 * a fresh instance cannot otherwise know: on wake, a room that was
 * occupied and has nobody back is vacated when that window closes (at
 * once if it has), and a member not back is removed after the presence
 * grace (counted from then). The alarm is armed for it, so it happens even
 * if nothing else wakes the room.
 */
import type { EncodedSignal } from "./encoded-signal";
import type { WebhookQueue } from "./webhook-queue";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhook_room (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_members (
  user_id TEXT PRIMARY KEY
) WITHOUT ROWID;
`;

/** The persisted end of the long-poll window may lag the real one by this much. */
const POLL_WINDOW_SLACK_MS = 5000;

/** What the room can say about who is here now. */
export interface OccupancySource {
  /** The Hub has at least one live subscriber. */
  hasSubscribers(): boolean;
  /** Until when Presence keeps someone present: Infinity while anyone is connected, 0 when no one is. */
  presentUntil(now: number): number;
  /** Whether Presence knows the user (connected, polling, or within the grace after leaving). */
  knows(userId: string): boolean;
}

export class RoomOccupancy {
  readonly #active: boolean;
  readonly #members: boolean;
  #occupied: boolean;
  /** The last long-poll window's end as persisted (what a fresh instance knows of it). */
  #pollUntil: number;
  /** After a wake: members announced and not back by then are removed then. */
  #membersGraceUntil = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #timerAt = Infinity;

  constructor(
    private readonly sql: SqlStorage,
    private readonly queue: WebhookQueue,
    private readonly source: OccupancySource,
    private readonly graceMs: number,
    private readonly roomName: () => string | undefined,
  ) {
    this.#active = queue.wants("channel_occupied") || queue.wants("channel_vacated");
    this.#members = queue.wants("member_added") || queue.wants("member_removed");
    sql.exec(SCHEMA);
    const stored = new Map(sql.exec<{ key: string; value: number }>("SELECT key, value FROM webhook_room").toArray().map((row) => [row.key, row.value]));
    this.#occupied = stored.get("occupied") === 1;
    this.#pollUntil = stored.get("poll_until") ?? 0;
  }

  /** After the constructor restored the hibernated sockets and Pusher subscriptions. */
  restored(now = Date.now()): void {
    if (this.#announcedMembers().some((id) => !this.source.knows(id))) {
      this.#membersGraceUntil = Math.max(now, this.#pollUntil) + this.graceMs;
      this.#recheckAt(this.#membersGraceUntil);
    }
    this.changed(now);
  }

  /** A subscriber arrived or left, or someone polled: announce a change of occupancy. */
  changed(now = Date.now()): void {
    if (!this.#active || !this.roomName()) return;
    const occupied = this.#isOccupied(now);
    if (occupied !== this.#occupied) {
      this.#occupied = occupied;
      this.sql.exec("INSERT OR REPLACE INTO webhook_room (key, value) VALUES ('occupied', ?)", occupied ? 1 : 0);
      this.queue.enqueue({ name: occupied ? "channel_occupied" : "channel_vacated", channel: this.roomName()! }, now);
      // member_removed follows after the presence grace; should the room be evicted before, the alarm still comes.
      if (!occupied && this.#members && this.#announcedMembers().length > 0) this.#recheckAt(now + this.graceMs + 1000);
    }
    // Occupied only by a long-poll's window: remember it, and look again when it closes.
    if (occupied && !this.source.hasSubscribers()) {
      const until = Math.max(this.source.presentUntil(now), this.#pollUntil);
      if (until === Infinity) return;
      if (until > this.#pollUntil + POLL_WINDOW_SLACK_MS) {
        this.#pollUntil = until;
        this.sql.exec("INSERT OR REPLACE INTO webhook_room (key, value) VALUES ('poll_until', ?)", until);
      }
      this.#recheckAt(until + 10);
    }
  }

  /** Presence's join / leave (unique per user, leave after the grace): member_added / member_removed. */
  presence(signal: EncodedSignal): void {
    const frame = signal.frame;
    if (frame.type !== "presence") return;
    this.changed(); // a first arrival makes the room occupied before its member is added
    if (!this.#members) return;
    const channel = this.roomName();
    if (!channel) return;
    if (frame.action === "join") {
      if (this.sql.exec("INSERT OR IGNORE INTO webhook_members (user_id) VALUES (?)", frame.user.id).rowsWritten > 0) {
        this.queue.enqueue({ name: "member_added", channel, user_id: frame.user.id });
      }
    } else {
      this.#remove(channel, frame.user.id);
    }
  }

  /** The alarm's (or the timer's) look: the wake grace, members gone while the room was away, occupancy. */
  check(now = Date.now()): void {
    const channel = this.roomName();
    if (now < this.#membersGraceUntil) this.#recheckAt(this.#membersGraceUntil);
    else if (channel) {
      this.#membersGraceUntil = 0;
      for (const id of this.#announcedMembers()) if (!this.source.knows(id)) this.#remove(channel, id);
    }
    this.changed(now);
  }

  #remove(channel: string, userId: string): void {
    if (this.sql.exec("DELETE FROM webhook_members WHERE user_id = ?", userId).rowsWritten > 0) {
      this.queue.enqueue({ name: "member_removed", channel, user_id: userId });
    }
  }

  #isOccupied(now: number): boolean {
    return this.source.hasSubscribers() || this.source.presentUntil(now) > now || now < this.#pollUntil;
  }

  #announcedMembers(): string[] {
    if (!this.#members) return [];
    return this.sql.exec<{ user_id: string }>("SELECT user_id FROM webhook_members").toArray().map((row) => row.user_id);
  }

  /** A timer while this instance lives, and the alarm in case it does not. */
  #recheckAt(time: number): void {
    this.queue.wakeBy(time);
    if (this.#timer && this.#timerAt <= time) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = time;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.check();
    }, Math.max(0, time - Date.now()));
  }
}
