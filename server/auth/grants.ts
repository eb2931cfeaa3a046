/**
 * Room grants: the lists of room ids and prefixes that a token's `rooms`
 * claim or `PUSHER_PUBLIC_CHANNELS` carries. One matcher for the Worker
 * (native routes, `/pusher/auth`) and the objects (the Pusher hub's public
 * channels), so both sides always agree on what a grant covers.
 */

/** Whether a list of grants (exact ids, prefixes ending in `*`, or `*`) covers a room id. */
export function matchesGrants(grants: readonly string[], room: string): boolean {
  return grants.some((grant) => grant === room || (grant.endsWith("*") && room.startsWith(grant.slice(0, -1))));
}
