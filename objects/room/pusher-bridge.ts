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
import { isCacheChannel, pusherChannelKind, userIdOfChannel, type PusherChannelKind } from "../../protocol/pusher";
import {
  cacheMissFrame,
  memberAddedFrame,
  memberRemovedFrame,
  presenceSucceededFrame,
  subscriptionCountFrame,
  subscriptionSucceededFrame,
} from "../../protocol/pusher-socket";
import type { HubDeliverOptions, PusherDelivery, PusherMember } from "../pusher/hub-api";
import type { EncodedEvent } from "./encoded-event";
import type { EncodedSignal } from "./encoded-signal";
import type { Hub } from "./hub";
import type { Presence } from "./presence";
import { PusherHubSubscriber } from "./pusher-subscriber";
import { SubscriptionCountNotifier } from "./subscription-count";

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
  /** Closes these sockets of the shard (terminate_connections); resolves with how many it held. */
  terminate(hubName: string, socketIds: string[]): Promise<number>;
}

/** What the room adds to the bridge: its log for cache channels, and its settings. */
export interface BridgeHooks {
  /** A cache channel's cached event: the room's newest one, while recent enough. */
  cachedEvent(): EncodedEvent | undefined;
  /**
   * A new subscriber of a cache channel found nothing cached (it has been
   * sent `pusher:cache_miss`). Pusher also tells the app's backend (the
   * `cache_miss` webhook).
   */
  cacheMiss(channel: string): void;
  /** Whether the channel's subscribers get `pusher_internal:subscription_count` (PUSHER_SUBSCRIPTION_COUNT). */
  countsSubscriptions(channel: string): boolean;
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
  readonly #counts = new SubscriptionCountNotifier(
    () => this.subscriptionCount,
    (count) => this.relay(subscriptionCountFrame(this.#channel(), count)),
  );

  constructor(
    private readonly sql: SqlStorage,
    private readonly hub: Hub,
    private readonly presence: Presence,
    private readonly link: HubLink,
    /** The room's name, which is the channel's (known once any call has named the room). */
    private readonly roomName: () => string | undefined,
    private readonly hooks: BridgeHooks,
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
    const added = !shard.sockets.has(socketId);
    if (added) {
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
    if (isCacheChannel(channel)) this.#replayCache(shard, socketId, channel);
    if (added) this.#countChanged();
  }

  /** Sockets of a hub that unsubscribed or closed. */
  unsubscribe(hubName: string, socketIds: string[]): void {
    const shard = this.#shards.get(hubName);
    if (!shard) return;
    const before = shard.sockets.size;
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
    const changed = shard.sockets.size !== before;
    if (shard.sockets.size === 0) {
      shard.subscriber.close();
      this.hub.detach(shard.subscriber);
      this.#shards.delete(hubName);
    }
    if (changed) this.#countChanged();
  }

  /**
   * A frame for every Pusher subscriber of the channel but one connection
   * (a client event's sender, a trigger's `socket_id`). Never stored, never
   * native: client events, and events sent to a user.
   */
  relay(frame: string, exceptSocketId?: string): void {
    for (const shard of this.#shards.values()) shard.subscriber.push(exceptSocketId === undefined ? { frame } : { frame, exceptSocketId });
  }

  /**
   * Closes every connection subscribed here, on whichever shard
   * (`terminate_connections` on a user's channel). The shards' unsubscribes
   * come back as the sockets close. Resolves with how many were closed.
   */
  async terminate(): Promise<number> {
    const closed = await Promise.all([...this.#shards].map(([hubName, shard]) => this.link.terminate(hubName, [...shard.sockets.keys()])));
    return closed.reduce((sum, count) => sum + count, 0);
  }

  /** Presence members as pusher-js sees them (Pusher and native), for the channel routes of the HTTP API. */
  memberIds(): string[] {
    return this.presence.members(Date.now()).map((member) => member.id);
  }

  /** The cached event for a new subscriber of a cache channel, or `pusher:cache_miss`: to that socket only, right after its confirmation. */
  #replayCache(shard: Shard, socketId: string, channel: string): void {
    const cached = this.hooks.cachedEvent();
    if (cached) return shard.subscriber.push({ frame: cached.pusherFrame, only: socketId });
    shard.subscriber.push({ frame: cacheMissFrame(channel), only: socketId });
    this.hooks.cacheMiss(channel);
  }

  #countChanged(): void {
    const channel = this.#channel();
    if (this.#kind() === "presence" || userIdOfChannel(channel) !== undefined || !this.hooks.countsSubscriptions(channel)) return;
    this.#counts.changed();
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
