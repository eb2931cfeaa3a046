/** Defaults of the contract's limits; each is overridable by a Wrangler var. */
export const DEFAULT_LIMITS = {
  /** Bytes of the serialized `data` object of one event. */
  maxMessageBytes: 16384,
  /** Token bucket for user sends, per user per room. */
  sendRatePerSecond: 10,
  sendBurst: 20,
  /** Long-poll `wait` is clamped to this many seconds. */
  maxWaitSeconds: 25,
  /** History page size. */
  defaultPageLimit: 100,
  maxPageLimit: 1000,
  /** Rooms in one batch notify. */
  maxNotifyRooms: 100,
} as const;

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

/** Room ids: a superset of Pusher channel names. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_\-=@,.;:]{1,164}$/;
/** Event names given to notify. */
export const EVENT_NAME_PATTERN = /^[A-Za-z0-9_\-.:]{1,64}$/;
