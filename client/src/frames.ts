/**
 * Frames the client puts on a WebSocket (SPEC §4). The server validates them
 * with protocol/schemas.ts; the client keeps its own copy of the shape so it
 * does not pull in the validation library.
 */
import type { EventData } from "../../protocol/envelope.js";
import type { FlowAckFrame } from "../../protocol/frames.js";

export type ClientFrame =
  | { type: "send"; data: EventData; clientId?: string }
  | { type: "typing" }
  | { type: "read"; seq: number }
  | { type: "ping" }
  | FlowAckFrame;
