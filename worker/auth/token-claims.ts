/**
 * From a verified token's claims to the identity the service uses: the user
 * id, the display name and the room grants, each read from the claim the
 * settings name (JWT_USER_ID_CLAIM, JWT_NAME_CLAIM, JWT_ROOMS_CLAIM). A
 * name is a dotted path into nested claims (`app_metadata.rooms`); a claim
 * whose own name holds dots (Auth0's namespaced `https://rooms.example/rooms`)
 * is found whole first.
 */
import * as v from "valibot";
import type { UserRef } from "../../protocol/envelope";
import { ApiError } from "../http/errors";
import type { TokenSettings } from "./token-settings";

export interface ClientIdentity {
  user: UserRef;
  role?: string;
  /** Room ids and prefixes (`support-*`, `*`) the token grants. */
  rooms: string[];
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The value at `path` in the claims: the whole name first, then split at each dot from the left. */
export function claimAt(claims: unknown, path: string): unknown {
  if (!isRecord(claims)) return undefined;
  if (Object.hasOwn(claims, path)) return claims[path];
  for (let dot = path.indexOf("."); dot > 0; dot = path.indexOf(".", dot + 1)) {
    const head = path.slice(0, dot);
    if (Object.hasOwn(claims, head) && isRecord(claims[head])) {
      const found = claimAt(claims[head], path.slice(dot + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

const userIdSchema = v.union([
  v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  // Some frameworks put a numeric user id in `sub`.
  v.pipe(v.number(), v.safeInteger(), v.transform(String)),
]);
const nameSchema = v.optional(v.pipe(v.string(), v.maxLength(128)));
const roleSchema = v.optional(v.pipe(v.string(), v.maxLength(64)));
const roomsSchema = v.optional(v.array(v.string()));

function claim<S extends v.GenericSchema>(claims: unknown, path: string, schema: S, requirement: string): v.InferOutput<S> {
  const parsed = v.safeParse(schema, claimAt(claims, path));
  if (!parsed.success) throw new ApiError("invalid_token", `token claims: ${path} ${requirement}`);
  return parsed.output;
}

export function identityFrom(claims: unknown, settings: TokenSettings): ClientIdentity {
  const id = claim(claims, settings.userIdClaim, userIdSchema, "is required: a user id of 1-128 characters");
  const name = claim(claims, settings.nameClaim, nameSchema, "must be a string of at most 128 characters");
  const role = claim(claims, "role", roleSchema, "must be a string of at most 64 characters");
  const rooms = claim(claims, settings.roomsClaim, roomsSchema, "must be an array of room ids");
  return { user: { id, name: name ?? id }, ...(role !== undefined ? { role } : {}), rooms: rooms ?? [] };
}
