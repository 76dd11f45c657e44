/**
 * Error codes of the wire protocol. Each is stable: clients branch on `code`, never on `message`.
 */
export const ERROR_CODES = {
  /** The frame is not JSON, not an object, or a field has the wrong type. */
  bad_request: 'The frame is not valid JSON or a field has the wrong shape.',
  /** `action` names no route. */
  unknown_action: "The action is not one of the protocol's actions.",
  /** `room` is missing or breaks the room name rules. */
  invalid_room: 'The room name is missing or not 1-64 characters of [A-Za-z0-9_.-].',
  /** `id` is missing (where required) or breaks the client id rules. */
  invalid_id: 'The client id is missing or not 1-64 characters of [A-Za-z0-9_.:-].',
  /** `body` is larger than LIMITS.maxBodyBytes. */
  body_too_large: 'The body is larger than the limit.',
  /** The caller may not do this (for example join a private room it is not a member of). */
  forbidden: 'You are not allowed to do this.',
  /** The connection has not joined the room it sends to. */
  not_joined: 'Join the room first.',
  /** The connection has joined as many rooms as it may. */
  too_many_rooms: 'This connection has joined the maximum number of rooms.',
  /** The token the connection was opened with has expired; the connection is closed. */
  token_expired: 'Your token has expired; reconnect with a fresh one.',
  /** The room does not exist (backend publisher: `sendToRoom`, `grant`, `revoke`, `closeRoom`). */
  unknown_room: 'The room does not exist.',
  /** The room was closed by the backend: no joins, no sends. */
  room_closed: 'The room is closed.',
  /** A user id is not a valid Cognito `sub` (1-128 characters of [A-Za-z0-9_-]). */
  invalid_user: 'The user id is not 1-128 characters of [A-Za-z0-9_-].',
  /** A group name is not a valid Cognito group usable in topics (1-64 characters of [A-Za-z0-9_.-]). */
  invalid_group: 'The group name is not 1-64 characters of [A-Za-z0-9_.-].',
  /** More recipients than one call may address (LIMITS.maxNotifyRecipients). */
  too_many_recipients: 'Too many recipients in one call.',
  /** The same client id is being processed by another request right now; retry shortly. */
  conflict: 'The same message is being processed; retry.',
  /** Something failed on our side; details are in the server logs only. */
  internal: 'Internal error.',
} as const;

/** A stable error code of the wire protocol. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether a string is one of our {@link ErrorCode}s. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * Base class of every error viba-realtime raises on purpose. Each subclass fixes its `code`; `details`
 * carries the data that explains it (for example `{ actual, limit }`).
 */
export class RealtimeError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message?: string, options?: { details?: Record<string, unknown>; cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }
}

/** The frame or one of its fields is malformed (codes `bad_request`, `unknown_action`, `invalid_room`,
 * `invalid_id`, `body_too_large`, `invalid_user`, `invalid_group`). */
export class ValidationError extends RealtimeError {}

/** The caller is not allowed to do this (code `forbidden`). */
export class ForbiddenError extends RealtimeError {
  constructor(message?: string, options?: { details?: Record<string, unknown> }) {
    super('forbidden', message, options);
  }
}

/** The connection has not joined the room (code `not_joined`). */
export class NotJoinedError extends RealtimeError {
  constructor(room: string) {
    super('not_joined', `Join room "${room}" first.`, { details: { room } });
  }
}

/** The connection has joined too many rooms (code `too_many_rooms`). */
export class TooManyRoomsError extends RealtimeError {
  constructor(limit: number) {
    super('too_many_rooms', `A connection may join at most ${limit} rooms.`, { details: { limit } });
  }
}

/** The connection's token has expired (code `token_expired`). */
export class TokenExpiredError extends RealtimeError {
  constructor(expiredAt: number) {
    super('token_expired', undefined, { details: { expiredAt } });
  }
}

/** A request with the same client id is in flight (code `conflict`). */
export class ConflictError extends RealtimeError {
  constructor(message?: string) {
    super('conflict', message);
  }
}

/** The room does not exist (code `unknown_room`). */
export class UnknownRoomError extends RealtimeError {
  constructor(room: string) {
    super('unknown_room', `Room "${room}" does not exist.`, { details: { room } });
  }
}

/** The room is closed (code `room_closed`). */
export class RoomClosedError extends RealtimeError {
  constructor(room: string) {
    super('room_closed', `Room "${room}" is closed.`, { details: { room } });
  }
}

/** More recipients than one call may address (code `too_many_recipients`). */
export class TooManyRecipientsError extends RealtimeError {
  constructor(actual: number, limit: number) {
    super('too_many_recipients', `${actual} recipients; one call may address at most ${limit}.`, {
      details: { actual, limit },
    });
  }
}
