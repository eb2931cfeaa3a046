/**
 * A hub's connections and who is on which channel, in memory for the
 * fan-out and in the hub's SQLite so it survives hibernation:
 *
 *   socket → its HubSocket (socket_id and activity from the attachment)
 *   socket_id → HubSocket
 *   channel → the sockets subscribed to it
 *
 * The maps are rebuilt once per wake (`restore`), never per event. Rows
 * whose socket is not among the hub's live WebSockets belong to
 * connections that ended while the hub was gone (a restart, not
 * hibernation): they are deleted and handed back so the rooms can forget
 * them too.
 */
import { userIdOfChannel } from "../../protocol/pusher";
import type { HubChannelState, PusherMember } from "./hub-api";
import { HubSocket, type ChannelSubscription, type HubSocketAttachment } from "./hub-socket";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS subscriptions (
  socket_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  user_id TEXT,
  user_info TEXT,
  PRIMARY KEY (socket_id, channel)
) WITHOUT ROWID;
`;

type Row = { socket_id: string; channel: string; user_id: string | null; user_info: string | null };

export class HubSockets {
  readonly #bySocket = new Map<WebSocket, HubSocket>();
  readonly #byId = new Map<string, HubSocket>();
  readonly #channels = new Map<string, Set<HubSocket>>();

  constructor(private readonly sql: SqlStorage) {
    sql.exec(SCHEMA);
  }

  get size(): number {
    return this.#bySocket.size;
  }

  all(): IterableIterator<HubSocket> {
    return this.#bySocket.values();
  }

  /**
   * Rebuilds the maps from the live WebSockets and the rows. Returns the
   * stale subscriptions (channel → socket_ids), already deleted here.
   * Sockets without an attachment cannot be placed and are returned too.
   */
  restore(webSockets: WebSocket[]): { stale: Map<string, string[]>; orphans: WebSocket[] } {
    const orphans: WebSocket[] = [];
    for (const ws of webSockets) {
      const attachment = ws.deserializeAttachment() as HubSocketAttachment | null;
      if (!attachment?.socketId) {
        orphans.push(ws);
        continue;
      }
      this.#register(new HubSocket(ws, attachment));
    }
    const stale = new Map<string, string[]>();
    for (const row of this.sql.exec<Row>("SELECT socket_id, channel, user_id, user_info FROM subscriptions").toArray()) {
      const socket = this.#byId.get(row.socket_id);
      if (!socket) {
        const ids = stale.get(row.channel) ?? [];
        ids.push(row.socket_id);
        stale.set(row.channel, ids);
        continue;
      }
      const member = row.user_id === null ? undefined : { id: row.user_id, infoJson: row.user_info ?? "{}" };
      this.#join(socket, row.channel, { live: true, ...(member ? { member } : {}) });
    }
    for (const [channel, ids] of stale) {
      for (const id of ids) this.sql.exec("DELETE FROM subscriptions WHERE socket_id = ? AND channel = ?", id, channel);
    }
    return { stale, orphans };
  }

  /** A new connection; its identity goes into the attachment at once. */
  add(ws: WebSocket, socketId: string, now: number): HubSocket {
    const attachment: HubSocketAttachment = { socketId, seenAt: now };
    ws.serializeAttachment(attachment);
    const socket = new HubSocket(ws, attachment);
    this.#register(socket);
    return socket;
  }

  get(ws: WebSocket): HubSocket | undefined {
    return this.#bySocket.get(ws);
  }

  byId(socketId: string): HubSocket | undefined {
    return this.#byId.get(socketId);
  }

  /** Forgets a connection; returns what it was subscribed to, for the rooms. */
  remove(socket: HubSocket): Map<string, ChannelSubscription> {
    if (!this.#bySocket.delete(socket.ws)) return new Map();
    this.#byId.delete(socket.socketId);
    for (const channel of socket.channels.keys()) this.#leaveSet(socket, channel);
    if (socket.channels.size > 0) this.sql.exec("DELETE FROM subscriptions WHERE socket_id = ?", socket.socketId);
    return socket.channels;
  }

  /** Records a subscription that the room has yet to confirm (not live yet). */
  subscribe(socket: HubSocket, channel: string, member: PusherMember | undefined): ChannelSubscription {
    this.sql.exec(
      "INSERT OR REPLACE INTO subscriptions (socket_id, channel, user_id, user_info) VALUES (?, ?, ?, ?)",
      socket.socketId, channel, member?.id ?? null, member?.infoJson ?? null,
    );
    const subscription: ChannelSubscription = { live: false, ...(member ? { member } : {}) };
    this.#join(socket, channel, subscription);
    return subscription;
  }

  unsubscribe(socket: HubSocket, channel: string): ChannelSubscription | undefined {
    const subscription = socket.channels.get(channel);
    if (!subscription) return undefined;
    socket.channels.delete(channel);
    this.#leaveSet(socket, channel);
    this.sql.exec("DELETE FROM subscriptions WHERE socket_id = ? AND channel = ?", socket.socketId, channel);
    return subscription;
  }

  /** Sockets subscribed to a channel, live or not yet. */
  on(channel: string): ReadonlySet<HubSocket> {
    return this.#channels.get(channel) ?? EMPTY;
  }

  channelState(name: string): HubChannelState {
    const sockets = this.on(name);
    const userIds = new Set<string>();
    for (const socket of sockets) {
      const member = socket.channels.get(name)?.member;
      if (member) userIds.add(member.id);
    }
    return { name, subscriptionCount: sockets.size, userIds: [...userIds] };
  }

  channelStates(prefix = ""): HubChannelState[] {
    const states: HubChannelState[] = [];
    // Server-to-user channels are connections' own, not channels of the app: the HTTP API never lists them.
    for (const name of this.#channels.keys()) if (name.startsWith(prefix) && userIdOfChannel(name) === undefined) states.push(this.channelState(name));
    return states;
  }

  #register(socket: HubSocket): void {
    this.#bySocket.set(socket.ws, socket);
    this.#byId.set(socket.socketId, socket);
  }

  #join(socket: HubSocket, channel: string, subscription: ChannelSubscription): void {
    socket.channels.set(channel, subscription);
    let set = this.#channels.get(channel);
    if (!set) this.#channels.set(channel, (set = new Set()));
    set.add(socket);
  }

  #leaveSet(socket: HubSocket, channel: string): void {
    const set = this.#channels.get(channel);
    if (!set) return;
    set.delete(socket);
    if (set.size === 0) this.#channels.delete(channel);
  }
}

const EMPTY: ReadonlySet<HubSocket> = new Set();
