/**
 * The classic polling-chat API (SPEC §9), as a thin adapter over the same
 * room: session N is the room `chat-session:N`, `id` is the seq, `message`
 * is `data.text`. Old dashboards keep working and see the same messages as
 * WebSocket and SSE clients.
 */
import * as v from "valibot";
import type { Envelope } from "../../protocol/envelope";
import { describeIssues } from "../../protocol/schemas";
import type { AcceptedMessage } from "../../objects/ChatRoom";
import { configFrom } from "../../server/config";
import { readJsonBody } from "../http/body";
import { ApiError, errorResponse, json } from "../http/errors";
import { parseQuery } from "../http/query";
import { forwardStream, roomStub, unwrap } from "../rooms";
import { bodyLimit, roomRequest, type RouteHandler } from "./context";

/** Canonical decimal numbers only (no leading zeros), small enough to be exact in JSON. */
const SESSION_ID = /^(0|[1-9]\d{0,14})$/;
const sessionIdSchema = v.pipe(v.string(), v.regex(SESSION_ID, "chat session ids are whole numbers without leading zeros"));

const pollQuerySchema = v.object({
  lastMessageId: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a non-negative integer"), v.transform(Number))),
  longPoll: v.optional(v.picklist(["true", "false", "1", "0"], "must be true or false")),
  token: v.optional(v.string()),
});

const postBodySchema = v.object({
  chat_session_id: v.union([v.pipe(v.number(), v.safeInteger(), v.minValue(0)), v.pipe(v.string(), v.regex(SESSION_ID))], "must be a chat session number"),
  message: v.pipe(v.string(), v.minLength(1, "must not be empty")),
});

export interface LegacyMessage {
  id: number;
  chat_session_id: number;
  sender_type: string;
  sender_id: string | null;
  sender_name: string | null;
  message: string;
  created_at: string;
  is_read: boolean;
}

const sessionRoom = (sessionId: string) => `chat-session:${sessionId}`;

function sessionIdFrom(raw: string | undefined): string {
  const parsed = v.safeParse(sessionIdSchema, raw);
  if (!parsed.success) throw new ApiError("invalid_room", describeIssues(parsed.issues));
  return parsed.output;
}

/** `2026-11-21T10:00:00.000Z` → `2026-11-21 10:00:00` (UTC). */
export function legacyTimestamp(iso: string): string {
  return iso.slice(0, 19).replace("T", " ");
}

export function toLegacyMessage(envelope: Envelope, sessionId: number, senderRole: string | null, lastRead: number): LegacyMessage {
  const text = envelope.data.text;
  return {
    id: envelope.seq,
    chat_session_id: sessionId,
    sender_type: envelope.from ? (senderRole ?? "user") : "system",
    sender_id: envelope.from?.id ?? null,
    sender_name: envelope.from?.name ?? null,
    message: typeof text === "string" ? text : JSON.stringify(envelope.data),
    created_at: legacyTimestamp(envelope.ts),
    is_read: envelope.seq <= lastRead,
  };
}

/** Legacy clients test `success`: their errors keep the contract's shape and add `success: false`. */
function withLegacyErrors(handler: RouteHandler): RouteHandler {
  return async (request, env, ctx) => {
    try {
      return await handler(request, env, ctx);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return errorResponse(error.code, error.message, error.retryAfter, { success: false });
    }
  };
}

export const legacyPoll: RouteHandler = withLegacyErrors(async (request, env) => {
  const sessionId = sessionIdFrom(request.params.sessionId);
  const { url, caller } = await roomRequest(request, env, sessionRoom(sessionId));
  const query = parseQuery(url, pollQuerySchema);
  const longPolling = query.longPoll === "true" || query.longPoll === "1";
  const response = await forwardStream(
    env,
    "/messages",
    {
      ...caller,
      after: query.lastMessageId ?? 0,
      waitMs: longPolling ? configFrom(env).maxWaitSeconds * 1000 : 0,
      withSenderRoles: true,
    },
    request,
  );
  const page = (await response.json()) as { messages: Envelope[]; senderRoles: (string | null)[]; lastRead: number };
  const messages = page.messages.map((envelope, i) => toLegacyMessage(envelope, Number(sessionId), page.senderRoles[i] ?? null, page.lastRead));
  return json({ messages, longPolling });
});

export const legacyPost: RouteHandler = withLegacyErrors(async (request, env) => {
  const body = await readJsonBody(request, postBodySchema, bodyLimit(env));
  const sessionId = sessionIdFrom(String(body.chat_session_id));
  const { room, caller } = await roomRequest(request, env, sessionRoom(sessionId));
  const { message } = unwrap<AcceptedMessage>(await roomStub(env, room).send(caller, { data: { text: body.message } }));
  return json({ success: true, messageId: message.seq });
});
