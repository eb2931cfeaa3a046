/**
 * `GET /me/unread` (SPEC §6): the user's unread counts in every room they
 * belong to, for a badge in the header or beside each conversation. It is
 * not tied to one room, so it is a plain function rather than a Room method.
 */
import { errorFromResponse, RoomError, toRoomError } from "./errors.js";
import type { FetchLike } from "./http-api.js";

export interface UnreadRoom {
  room: string;
  /** Messages above `lastRead` that someone else (or the server) sent. */
  unread: number;
  lastSeq: number;
  lastRead: number;
}

export interface UnreadCounts {
  total: number;
  rooms: UnreadRoom[];
}

export interface UnreadOptions {
  /** The service's base URL, e.g. `https://rooms.example.com`. */
  url: string;
  token: string;
  fetch?: FetchLike;
}

/** Reads the caller's unread counts. Throws a RoomError with the server's code on refusal. */
export async function unreadCounts(options: UnreadOptions): Promise<UnreadCounts> {
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  let response: Response;
  try {
    response = await fetchImpl(`${options.url.replace(/\/+$/, "")}/me/unread`, { headers: { authorization: `Bearer ${options.token}` } });
  } catch (error) {
    throw toRoomError(error);
  }
  if (!response.ok) throw await errorFromResponse(response);
  const body = (await response.json()) as UnreadCounts;
  if (typeof body?.total !== "number" || !Array.isArray(body.rooms)) throw new RoomError("bad_response", "GET /me/unread answered without total and rooms");
  return body;
}
