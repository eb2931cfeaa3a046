/**
 * The envelope: the one shape an event has on every transport (WebSocket,
 * SSE, long-poll, D1 history). See docs/api.md#envelope.
 */

/** Who did something: a user id and display name. */
export interface UserRef {
  id: string;
  name: string;
}

/** The JSON object an event carries. Always an object, never an array or scalar. */
export type EventData = Record<string, unknown>;

export interface Envelope {
  room: string;
  seq: number;
  id: string;
  event: string;
  /** Absent (not null) for server events that name no sender. */
  from?: UserRef;
  data: EventData;
  ts: string;
  /** Echoed when the sender gave one. */
  clientId?: string;
}

/** The `event` name of chat messages sent by users. */
export const CHAT_MESSAGE_EVENT = "message";

/**
 * Builds an envelope with its keys in the documented order, leaving optional
 * keys out rather than setting them to undefined (JSON.stringify would drop
 * them anyway, but tests and clients compare objects).
 */
export function makeEnvelope(fields: Envelope): Envelope {
  const envelope: Envelope = { room: fields.room, seq: fields.seq, id: fields.id, event: fields.event } as Envelope;
  if (fields.from) envelope.from = { id: fields.from.id, name: fields.from.name };
  envelope.data = fields.data;
  envelope.ts = fields.ts;
  if (fields.clientId !== undefined) envelope.clientId = fields.clientId;
  return envelope;
}
