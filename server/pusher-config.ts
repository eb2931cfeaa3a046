/**
 * Settings of the Pusher Channels WebSocket side (docs/pusher.md), read
 * from vars with their defaults. The app credentials are secrets and are
 * read with `requireSecret`.
 */
import { commaList, intVar } from "./config";
import type { Env } from "./env";

export interface PusherConfig {
  /** How many PusherHub objects share the Pusher connections (each socket lands on one at random). */
  hubShards: number;
  /** Connections one hub holds at most; beyond, new ones are refused with 4100 and retry elsewhere. */
  hubMaxSockets: number;
  /**
   * Room ids that Pusher clients may subscribe to as public channels, with
   * no signature: exact ids and prefixes ending in `*`, as token grants.
   * Empty by default: a room is a public channel only when the operator says
   * so, because a public channel has no credential at all (the app key is in
   * every browser) and the same room's native routes ask for a token.
   */
  publicChannels: string[];
  /**
   * Channels whose subscribers are sent `pusher_internal:subscription_count`
   * as their count changes (PUSHER_SUBSCRIPTION_COUNT): grants like
   * publicChannels, `*` for all. Empty by default, as on Pusher, where an
   * app turns the feature on.
   */
  subscriptionCountChannels: string[];
}

/** Hub objects are addressed by these names; the HTTP API asks every one for channel state. */
export const PUSHER_HUB_NAME_PREFIX = "pusher-hub:";

const cache = new WeakMap<object, PusherConfig>();

export function pusherConfigFrom(env: Env): PusherConfig {
  const cached = cache.get(env);
  if (cached) return cached;
  const config: PusherConfig = {
    hubShards: Math.min(256, Math.max(1, Math.floor(intVar(env.PUSHER_HUB_SHARDS, 8, "PUSHER_HUB_SHARDS")))),
    hubMaxSockets: Math.floor(intVar(env.PUSHER_HUB_MAX_SOCKETS, 10_000, "PUSHER_HUB_MAX_SOCKETS")),
    publicChannels: grantList(env.PUSHER_PUBLIC_CHANNELS),
    subscriptionCountChannels: /^(1|true|yes|on)$/i.test(env.PUSHER_SUBSCRIPTION_COUNT?.trim() ?? "") ? ["*"] : grantList(env.PUSHER_SUBSCRIPTION_COUNT),
  };
  cache.set(env, config);
  return config;
}

/** A comma-separated list of room ids and `prefix*` grants. */
function grantList(value: string | undefined): string[] {
  return commaList(value);
}

export function hubName(shard: number): string {
  return `${PUSHER_HUB_NAME_PREFIX}${shard}`;
}

/** Every hub's name, shard 0 first. */
export function allHubNames(env: Env): string[] {
  return Array.from({ length: pusherConfigFrom(env).hubShards }, (_, shard) => hubName(shard));
}
