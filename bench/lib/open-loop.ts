/**
 * Open-loop notifies, the publisher of the fan-out scenarios: event i leaves
 * at t0 + i / rate whether or not earlier ones were answered, so a slow
 * server cannot lower the load it is offered (a closed loop would hide
 * exactly the saturation the scenarios look for).
 */
import { sleepUntil } from "./http.ts";
import type { Target } from "./targets.ts";

export interface OpenLoop {
  /** Round trip of every answered notify, ms. */
  rtts: number[];
  /** Notifies not answered 202 (or that failed); counts on until `answered` settles. */
  failures: number;
  /** When event 0 was due. */
  t0: number;
  /** When the last notify left. */
  lastSent: number;
  /** Settles once every notify has been answered or has failed. */
  answered: Promise<void>;
}

/** Sends `events` notifies of `{ i }` to `room` at `rate` per second; `sentAt[i]` records when each left. */
export async function notifyOpenLoop(target: Target, room: string, events: number, rate: number, sentAt: Float64Array, signal: AbortSignal): Promise<OpenLoop> {
  const loop: OpenLoop = { rtts: [], failures: 0, t0: performance.now() + 20, lastSent: 0, answered: Promise.resolve() };
  const pending: Promise<void>[] = [];
  for (let i = 0; i < events && !signal.aborted; i++) {
    await sleepUntil(loop.t0 + (i * 1000) / rate, signal);
    sentAt[i] = performance.now();
    pending.push(
      target.notify(room, "bench.fanout", { i }).then(
        (response) => {
          loop.rtts.push(response.endedAt - response.sentAt);
          if (response.status !== 202) loop.failures++;
        },
        () => void loop.failures++,
      ),
    );
  }
  loop.lastSent = performance.now();
  loop.answered = Promise.all(pending).then(() => undefined);
  return loop;
}
