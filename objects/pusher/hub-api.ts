/**
 * What a PusherHub and a ChatRoom say to each other over RPC. The hub holds
 * Pusher connections; the room owns the channel of the same name. Both
 * directions carry only these shapes:
 *
 *   hub → room   pusherSubscribe / pusherUnsubscribe / pusherClientEvent
 *   room → hub   deliver(channel, deliveries): frames in the room's order
 *                terminate(socketIds): a user's connections, closed (terminate_connections)
 */

/** A presence member as the signed `channel_data` names it. */
export interface PusherMember {
  id: string;
  /** `user_info` as JSON text (`{}` when the signer gave none). */
  infoJson: string;
}

/**
 * One frame for a channel's sockets on a hub, in order. Without `to` it goes
 * to every socket subscribed to the channel (but the excluded ones); with
 * `to` it is that socket's `subscription_succeeded`, which also makes the
 * socket live: everything after it in the stream reaches it, nothing before.
 */
export interface PusherDelivery {
  frame: string;
  /** A Pusher `socket_id` that must not get it (the trigger's `socket_id`, a client event's sender). */
  exceptSocketId?: string;
  /** A presence user whose own sockets must not get it (their member_added / member_removed). */
  exceptUserId?: string;
  /** The socket whose subscription this frame completes. */
  to?: string;
  /** The one socket (already live on the channel) that gets it: a cache channel's last event for a new subscriber. */
  only?: string;
}

export interface HubDeliverOptions {
  /**
   * The room had to drop frames for this hub (it was unreachable for too
   * long): the hub closes the channel's live sockets with 4200 so their
   * clients resubscribe rather than silently miss events.
   */
  gap?: boolean;
}

/** One channel as one hub sees it. */
export interface HubChannelState {
  name: string;
  /** Connections of this hub subscribed to it. */
  subscriptionCount: number;
  /** Presence channels: distinct user ids of those connections. */
  userIds: string[];
}

/** Set by the Worker on the upgrade it forwards: the hub's own name, which rooms use to call it back. */
export const HUB_NAME_HEADER = "x-pusher-hub";
