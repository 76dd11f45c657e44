/**
 * The admin API's errors. Each knows its HTTP status and stable `code`, and presents itself as the JSON body
 * every error answer has ({@link AdminErrorBody}). The protocol's own errors (a bad room name, an unknown room)
 * pass through with their codes: see {@link toAdminError}.
 */
import { RealtimeError } from '@viba-realtime/protocol';
import type { AdminErrorBody } from './types.js';

/** Base class of the admin API's errors. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  toJSON(): AdminErrorBody {
    return { error: this.code, message: this.message };
  }
}

/** The request is malformed: not JSON, a missing or wrong field (400 `bad_request`). */
export class AdminBadRequestError extends AdminError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(400, 'bad_request', message, options);
  }
}

/** No such route, connection or room (404 `not_found`). */
export class AdminNotFoundError extends AdminError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

/** The request came from where the console does not answer (403 `forbidden`); see ./guard.ts. */
export class AdminForbiddenError extends AdminError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

/** This emulator cannot do it (no IoT, no fault registry, no esbuild) (501 `unavailable`). */
export class AdminUnavailableError extends AdminError {
  constructor(message: string) {
    super(501, 'unavailable', message);
  }
}

/** A request the console made as a user got no answer in time (504 `timeout`). */
export class AdminTimeoutError extends AdminError {
  constructor(message: string) {
    super(504, 'timeout', message);
  }
}

/**
 * A handler answered the console's request made as a user with an error frame (`forbidden`, `not_joined`,
 * `token_expired`, ...), or refused its connection (the HTTP status of the upgrade).
 */
export class ActAsRefusedError extends AdminError {
  constructor(
    status: number,
    code: string,
    message: string,
    /** The error frame or refusal as received. */
    readonly details?: Record<string, unknown>,
  ) {
    super(status, code, message);
  }
}

/** HTTP statuses of the protocol's error codes, as the admin API answers them. */
const STATUS_OF_CODE: Record<string, number> = {
  forbidden: 403,
  unknown_room: 404,
  room_closed: 409,
  conflict: 409,
  token_expired: 401,
  internal: 500,
};

/** The status an error code of the protocol maps to (400 for the validation codes). */
export function statusOfCode(code: string): number {
  return STATUS_OF_CODE[code] ?? 400;
}

/**
 * Turns anything thrown into an {@link AdminError}: the protocol's errors (from the publisher's validation, say)
 * keep their code; anything else is a 500 `internal` whose details stay in the emulator's log.
 */
export function toAdminError(error: unknown): AdminError {
  if (error instanceof AdminError) return error;
  if (error instanceof RealtimeError) return new AdminError(statusOfCode(error.code), error.code, error.message);
  if (error instanceof RangeError) return new AdminBadRequestError(error.message, { cause: error });
  return new AdminError(500, 'internal', 'The emulator failed to do this; its log has the details.', {
    cause: error,
  });
}
