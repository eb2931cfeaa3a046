/**
 * Consecutive events given to a subscriber in one go: what the Hub hands out
 * per flush (everything accepted since the last one that the subscriber has
 * not seen), or a page of a replay.
 *
 * A WebSocket that opted in with `batch=1` gets the run as few frames as the
 * bounds allow (`{"type":"messages","messages":[…]}`, each at most
 * MAX_FRAME_EVENTS events and MAX_FRAME_BYTES bytes; a frame of one event is
 * that event's ordinary `message` frame). workerd charges about 45 µs of CPU
 * per frame sent whatever it carries, so under load this turns the same CPU
 * into many more delivered events. The frames are built once per run and
 * shared by every socket that starts at the same place (almost all of them:
 * live sockets are all caught up), so a thousand sockets cost one join.
 */
import type { EncodedEvent } from "./encoded-event";

/** Most events one coalesced frame carries. */
export const MAX_FRAME_EVENTS = 256;
/** Most bytes one coalesced frame carries (an event larger than this goes alone). */
export const MAX_FRAME_BYTES = 64 * 1024;

const BATCH_PREFIX = `{"type":"messages","messages":[`;
const BATCH_SUFFIX = "]}";
const BATCH_OVERHEAD = BATCH_PREFIX.length + BATCH_SUFFIX.length;

/** One WebSocket frame of a run, with what flow control counts for it. */
export interface RunFrame {
  text: string;
  /** UTF-8 size on the wire. */
  bytes: number;
  /** The seq of its last event: an ack of this seq acknowledges the frame. */
  lastSeq: number;
}

export class EventRun {
  #batchFrames?: RunFrame[];

  /** `events` in seq order, at least one. */
  constructor(readonly events: readonly EncodedEvent[]) {}

  get lastSeq(): number {
    return this.events[this.events.length - 1]!.seq;
  }

  /** The run as coalesced WebSocket frames, in order, each within the bounds; built once. */
  get batchFrames(): RunFrame[] {
    return (this.#batchFrames ??= this.#buildBatchFrames());
  }

  /** Splits the run into consecutive runs that each fit one coalesced frame (a replay delivers them one at a time). */
  chunks(): EventRun[] {
    if (this.events.length === 1) return [this];
    const runs: EventRun[] = [];
    this.#split((start, end) => runs.push(new EventRun(this.events.slice(start, end))));
    return runs;
  }

  #buildBatchFrames(): RunFrame[] {
    const frames: RunFrame[] = [];
    this.#split((start, end, bytes) => {
      const last = this.events[end - 1]!;
      if (end - start === 1) {
        frames.push({ text: last.wsFrame, bytes: last.wsFrameBytes, lastSeq: last.seq });
        return;
      }
      let text = BATCH_PREFIX;
      for (let i = start; i < end; i++) text += (i === start ? "" : ",") + this.events[i]!.json;
      frames.push({ text: text + BATCH_SUFFIX, bytes, lastSeq: last.seq });
    });
    return frames;
  }

  /** Calls `take(start, end, bytes)` for each frame-sized slice, `bytes` being its coalesced frame's size. */
  #split(take: (start: number, end: number, bytes: number) => void): void {
    const events = this.events;
    let start = 0;
    let bytes = BATCH_OVERHEAD;
    for (let i = 0; i < events.length; i++) {
      const size = events[i]!.jsonBytes + (i === start ? 0 : 1);
      if (i > start && (i - start >= MAX_FRAME_EVENTS || bytes + size > MAX_FRAME_BYTES)) {
        take(start, i, bytes);
        start = i;
        bytes = BATCH_OVERHEAD + events[i]!.jsonBytes;
      } else {
        bytes += size;
      }
    }
    take(start, events.length, bytes);
  }
}
