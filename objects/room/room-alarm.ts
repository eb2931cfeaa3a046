/**
 * The room has one alarm, shared by the D1 outbox, the push queue and the
 * webhook queue: each asks for it by the time it needs, and none pushes
 * back a sooner one. A failed D1 write is retried after the same backoff
 * wherever it happens.
 */

/** The longest wait between two D1 attempts after failures in a row. */
export const MAX_D1_BACKOFF_MS = 60_000;

/** Sets the alarm to `time` unless it is already due sooner. */
export async function armAlarmBy(storage: DurableObjectStorage, time: number): Promise<void> {
  const current = await storage.getAlarm();
  if (current === null || current > time) await storage.setAlarm(time);
}

/** The wait after the nth D1 failure in a row: 0.5 s, 1 s, 2 s … up to a minute. */
export function d1BackoffMs(failures: number): number {
  return Math.min(MAX_D1_BACKOFF_MS, 250 * 2 ** Math.min(failures, 16));
}
