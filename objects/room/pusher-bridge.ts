/**
 * The room's side of the Pusher bridge: which Pusher connections (by hub
 * shard and socket_id) are subscribed to this room's channel, and the one
 * PusherHubSubscriber per shard that carries the room's frames to them.
 *
 * Subscriptions are rows of the room's own SQLite, so they survive the room
 * being evicted or restarted while the connections stay open on their hubs:
 * the constructor rebuilds the subscribers and presence from them.
 *
 * Presence channels: each presence subscription counts as one connection of
 * its `user_id` in the room's Presence, beside native WebSocket and SSE
 * connections, so a Pusher member is a room member and a native user is a
 * Pusher member. Presence's join / leave (unique by user, after the grace
 * period) become `member_added` / `member_removed`; `user_info` is the one
 * the member's signed channel_data gave, or `{"name": …}` for native users.
 */
import type { UserRef } from "../../protocol/envelope";
import { pusherChannelKind, type PusherChannelKind } from "../../protocol/pusher";
import { memberAddedFrame, memberRemovedFrame, presenceSucceededFrame, subscriptionSucceededFrame } from "../../protocol/pusher-socket";
import type { HubDeliverOptions, PusherDelivery, PusherMember } from "../pusher/hub-api";
import type { EncodedSignal } from "./encoded-signal";
import type { Hub } from "./hub";
import type { Presence } from "./presence";
import { PusherHubSubscriber } from "./pusher-subscriber";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pusher_subscriptions (
  hub TEXT NOT NULL,
  socket_id TEXT NOT NULL,
  user_id TEXT,
  user_info TEXT,
  PRIMARY KEY (hub, socket_id)
) WITHOUT ROWID;
`;

/** How the room reaches a hub shard. */
export interface HubLink {
  deliver(hubName: string, channel: string, deliveries: PusherDelivery[], options: HubDeliverOptions): Promise<number>;
  /** The socket_ids the shard has on the channel (to forget connections it no longer holds). */
  socketsOn(hubName: string, channel: string): Promise<string[]>;
}

interface Shard {
  subscriber: PusherHubSubscriber;
  /** socket_id → presence member (undefined on public and private channels). */
  sockets: Map<string, PusherMember | undefined>;
  reconciling?: boolean;
}

type Row = { hub: string; socket_id: string; user_id: string | null; user_info: string | null };

export class PusherBridge {
  readonly #shards = new Map<string, Shard>();
  /** `user_info` of presence members who subscribed over Pusher, with how many subscriptions hold it. */
  readonly #infos = new Map<string, { json: string; refs: number }>();
  readonly #memberDeliveries = new WeakMap<EncodedSignal, PusherDelivery | null>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly hub: Hub,
    private readonly presence: Presence,
    private readonly link: HubLink,
    /** The room's name, which is the channel's (known once any call has named the room). */
    private readonly roomName: () => string | undefined,
  ) {
    sql.exec(SCHEMA);
  }

  /** After a wake: the shards' subscribers and their presence, counted without announcements. */
  restore(): void {
    for (const row of this.sql.exec<Row>("SELECT hub, socket_id, user_id, user_info FROM pusher_subscriptions").toArray()) {
      const member = row.user_id === null ? undefined : { id: row.user_id, infoJson: row.user_info ?? "{}" };
      this.#shard(row.hub).sockets.set(row.socket_id, member);
      if (member) {
        this.#retainInfo(member);
        this.presence.restored(memberUser(member));
      }
    }
  }

  /** Connections subscribed over Pusher, across shards. */
  get subscriptionCount(): number {
    let count = 0;
    for (const shard of this.#shards.values()) count += shard.sockets.size;
    return count;
  }

  /**
   * A hub's socket subscribes (its signature already checked by the hub).
   * Its `subscription_succeeded` goes through the shard's ordered stream, so
   * the socket gets exactly the events accepted after this point.
   */
  subscribe(hubName: string, socketId: string, member: PusherMember | undefined): void {
    const channel = this.#channel();
    const shard = this.#shard(hubName);
    if (!shard.sockets.has(socketId)) {
      this.sql.exec(
        "INSERT OR REPLACE INTO pusher_subscriptions (hub, socket_id, user_id, user_info) VALUES (?, ?, ?, ?)",
        hubName, socketId, member?.id ?? null, member?.infoJson ?? null,
      );
      shard.sockets.set(socketId, member);
      if (member) {
        this.#retainInfo(member);
        this.presence.connected(memberUser(member));
      }
    }
    const frame = this.#kind() === "presence" ? presenceSucceededFrame(channel, this.#presenceMembers()) : subscriptionSucceededFrame(channel);
    shard.subscriber.push({ frame, to: socketId });
  }

  /** Sockets of a hub that unsubscribed or closed. */
  unsubscribe(hubName: string, socketIds: string[]): void {
    const shard = this.#shards.get(hubName);
    if (!shard) return;
    for (const socketId of socketIds) {
      if (!shard.sockets.has(socketId)) continue;
      const member = shard.sockets.get(socketId);
      shard.sockets.delete(socketId);
      this.sql.exec("DELETE FROM pusher_subscriptions WHERE hub = ? AND socket_id = ?", hubName, socketId);
      if (member) {
        this.presence.disconnected(memberUser(member));
        this.#releaseInfo(member);
      }
    }
    if (shard.sockets.size === 0) {
      shard.subscriber.close();
      this.hub.detach(shard.subscriber);
      this.#shards.delete(hubName);
    }
  }

  /** A client event: to every Pusher subscriber of the channel but its sender. Never stored, never native. */
  relay(frame: string, senderSocketId: string): void {
    for (const shard of this.#shards.values()) shard.subscriber.push({ frame, exceptSocketId: senderSocketId });
  }

  /** Presence members as pusher-js sees them (Pusher and native), for the channel routes of the HTTP API. */
  memberIds(): string[] {
    return this.presence.members(Date.now()).map((member) => member.id);
  }

  #channel(): string {
    const channel = this.roomName();
    if (!channel) throw new Error("room name unknown: enter the room before using the Pusher bridge");
    return channel;
  }

  #kind(): PusherChannelKind {
    return pusherChannelKind(this.#channel());
  }

  #shard(hubName: string): Shard {
    let shard = this.#shards.get(hubName);
    if (shard) return shard;
    const channel = this.#channel();
    const subscriber = new PusherHubSubscriber(
      hubName,
      (deliveries, options) => this.link.deliver(hubName, channel, deliveries, options),
      (signal) => this.#memberDelivery(signal),
      (name, count) => this.#reconcile(name, count),
    );
    shard = { subscriber, sockets: new Map() };
    this.#shards.set(hubName, shard);
    // Pusher subscribers go live where they subscribe: no replay (Pusher has none).
    this.hub.restore(subscriber);
    return shard;
  }

  /** Presence members with their user_info, the subscriber included. */
  #presenceMembers(): PusherMember[] {
    return this.presence.members(Date.now()).map((member) => ({ id: member.id, infoJson: this.#infoJson(member) }));
  }

  #infoJson(user: UserRef): string {
    return this.#infos.get(user.id)?.json ?? JSON.stringify({ name: user.name });
  }

  /** member_added / member_removed for a presence join / leave, built once per signal for every shard. */
  #memberDelivery(signal: EncodedSignal): PusherDelivery | undefined {
    const cached = this.#memberDeliveries.get(signal);
    if (cached !== undefined) return cached ?? undefined;
    let delivery: PusherDelivery | null = null;
    const frame = signal.frame;
    if (frame.type === "presence" && this.#kind() === "presence") {
      const channel = this.#channel();
      // A user never hears of their own arrival or departure (Pusher's rule).
      delivery = frame.action === "join"
        ? { frame: memberAddedFrame(channel, frame.user.id, this.#infoJson(frame.user)), exceptUserId: frame.user.id }
        : { frame: memberRemovedFrame(channel, frame.user.id), exceptUserId: frame.user.id };
    }
    this.#memberDeliveries.set(signal, delivery);
    return delivery ?? undefined;
  }

  /**
   * After a batch, the shard said how many of its sockets are on the
   * channel. Fewer than the room knows: some connections went away without
   * an unsubscribe reaching the room (the hub restarted, an RPC was lost);
   * forget the ones the shard no longer has.
   *
   * The count may predate subscriptions the room has recorded since, so it
   * only triggers a look at the shard's actual list, and only sockets the
   * room knew before asking can be forgotten (a socket is on the shard's
   * list before the room ever hears of it).
   */
  #reconcile(hubName: string, count: number): void {
    const shard = this.#shards.get(hubName);
    if (!shard || count >= shard.sockets.size || shard.reconciling) return;
    shard.reconciling = true;
    const known = [...shard.sockets.keys()];
    this.link
      .socketsOn(hubName, this.#channel())
      .then((held) => {
        const live = new Set(held);
        this.unsubscribe(hubName, known.filter((socketId) => !live.has(socketId)));
      })
      .catch((error) => console.error(`pusher: could not list ${hubName}'s sockets on ${this.roomName()}:`, error))
      .finally(() => (shard.reconciling = false));
  }

  #retainInfo(member: PusherMember): void {
    const info = this.#infos.get(member.id);
    if (info) info.refs++;
    else this.#infos.set(member.id, { json: member.infoJson, refs: 1 });
  }

  #releaseInfo(member: PusherMember): void {
    const info = this.#infos.get(member.id);
    if (info && --info.refs <= 0) this.#infos.delete(member.id);
  }
}

/** The room user a presence member is: their id, and `user_info.name` as display name when it is a string. */
function memberUser(member: PusherMember): UserRef {
  let name = member.id;
  try {
    const info: unknown = JSON.parse(member.infoJson);
    const given = info !== null && typeof info === "object" ? (info as { name?: unknown }).name : undefined;
    if (typeof given === "string" && given.length > 0) name = given.slice(0, 128);
  } catch {
    // user_info was checked to be JSON by the hub; a name is only a nicety
  }
  return { id: member.id, name };
}
