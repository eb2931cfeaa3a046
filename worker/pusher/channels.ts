/**
 * Channel state for the Pusher HTTP API (`GET /apps/:id/channels…`): which
 * channels have Pusher connections, how many, and presence members.
 *
 * Connections live on PusherHub shards, so counts are the sum over every
 * shard (each answers from memory). Presence members are the room's: the
 * same set pusher-js clients see in `subscription_succeeded`, Pusher
 * members and native (WebSocket, SSE, long-poll) users of the room alike.
 */
import type { HubChannelState } from "../../objects/pusher/hub-api";
import { pusherChannelKind } from "../../protocol/pusher";
import type { Env } from "../../server/env";
import { allHubNames } from "../../server/pusher-config";
import { roomStub } from "../rooms";

export interface PusherChannelState {
  name: string;
  /** Pusher connections subscribed to the channel. */
  subscriptionCount: number;
  /** presence- channels: distinct user ids of the members; [] for others. */
  userIds: string[];
}

/** Rooms asked at once for their presence members when listing many presence channels. */
const PRESENCE_LOOKUPS_AT_ONCE = 50;

/** Occupied channels (subscriptionCount > 0), optionally only those starting with prefix. Aggregates every hub shard. */
export async function listPusherChannels(env: Env, prefix?: string): Promise<PusherChannelState[]> {
  const perHub = await Promise.all(allHubNames(env).map((name) => hub(env, name).channels(prefix)));
  const counts = sumCounts(perHub.flat());
  const names = [...counts.keys()].filter((name) => counts.get(name)! > 0).sort();
  const states: PusherChannelState[] = names.map((name) => ({ name, subscriptionCount: counts.get(name)!, userIds: [] }));
  const presence = states.filter((state) => pusherChannelKind(state.name) === "presence");
  for (let i = 0; i < presence.length; i += PRESENCE_LOOKUPS_AT_ONCE) {
    await Promise.all(presence.slice(i, i + PRESENCE_LOOKUPS_AT_ONCE).map(async (state) => (state.userIds = await memberIds(env, state.name))));
  }
  return states;
}

/** One channel's state (subscriptionCount 0 when unoccupied). */
export async function getPusherChannel(env: Env, name: string): Promise<PusherChannelState> {
  const [perHub, userIds] = await Promise.all([
    Promise.all(allHubNames(env).map((hubName) => hub(env, hubName).channel(name))),
    pusherChannelKind(name) === "presence" ? memberIds(env, name) : Promise.resolve([]),
  ]);
  const subscriptionCount = perHub.reduce((sum, state) => sum + state.subscriptionCount, 0);
  return { name, subscriptionCount, userIds };
}

function hub(env: Env, name: string) {
  return env.PUSHER_HUBS.get(env.PUSHER_HUBS.idFromName(name));
}

function memberIds(env: Env, channel: string): Promise<string[]> {
  return roomStub(env, channel).pusherMemberIds(channel);
}

function sumCounts(states: HubChannelState[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const state of states) counts.set(state.name, (counts.get(state.name) ?? 0) + state.subscriptionCount);
  return counts;
}
