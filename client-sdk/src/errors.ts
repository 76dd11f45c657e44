/**
 * Every error the SDK raises or emits is a {@link RealtimeClientError} with a stable `code`: branch on
 * `code` (or `instanceof`), never on `message`. Codes of the wire protocol (`forbidden`, `body_too_large`, ...)
 * come as {@link RequestError}; the rest are the SDK's own.
 */
import type { ErrorCode, ErrorFrame } from '@viba-realtime/protocol';

/** Codes of failures that happen on the client's side of the wire. */
export type ClientErrorCode =
  | 'unauthorized'
  | 'connection_failed'
  | 'timeout'
  | 'client_closed'
  | 'offline_queue_full'
  | 'token_provider_failed'
  | 'schema_mismatch'
  | 'room_left'
  | 'listener_failed'
  | 'invalid_config';

/** Every code an SDK error can carry: the protocol's and the client's own. */
export type RealtimeErrorCode = ErrorCode | ClientErrorCode;

/** Base class of every SDK error. */
export class RealtimeClientError extends Error {
  readonly code: RealtimeErrorCode;
  /** Data that explains the error (the room, a limit, the frame, ...). */
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: RealtimeErrorCode,
    message: string,
    options?: { details?: Record<string, unknown> | undefined; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }
}

/**
 * A request the service refused (an `error` frame), or one the SDK refused before sending because the
 * service would have (same code: `invalid_room`, `body_too_large`, ...). `permanent` says whether retrying the
 * same request can ever succeed.
 */
export class RequestError extends RealtimeClientError {
  declare readonly code: ErrorCode;
  /** The error frame, when the service sent one. */
  readonly frame: ErrorFrame | undefined;
  constructor(code: ErrorCode, message: string, options?: { frame?: ErrorFrame; details?: Record<string, unknown> }) {
    super(code, message, { details: options?.details ?? options?.frame?.details });
    this.frame = options?.frame;
  }
  /** Whether the same request can never succeed (everything but `conflict`, `internal` and `token_expired`). */
  get permanent(): boolean {
    return this.code !== 'conflict' && this.code !== 'internal' && this.code !== 'token_expired';
  }
  /** The error of an `error` frame. */
  static fromFrame(frame: ErrorFrame): RequestError {
    return new RequestError(frame.code, frame.message, { frame });
  }
}

/** The service refused the token (HTTP 401/403 at WebSocket connect, CONNACK refusal on MQTT) even after a
 * fresh one from `getToken()`. The client stops reconnecting: sign the user in again, then `connect()`. */
export class AuthenticationError extends RealtimeClientError {
  /** HTTP status or MQTT CONNACK reason code, when known. */
  readonly status: number | undefined;
  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super('unauthorized', message, { details: { status: options?.status }, cause: options?.cause });
    this.status = options?.status;
  }
}

/** The connection could not be opened or was lost. The client retries by itself; this is for logs. */
export class ConnectionError extends RealtimeClientError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('connection_failed', message, options);
  }
}

/** No answer to a request within `requestTimeoutMs`. Safe to retry: every request is idempotent (a `send`
 * keeps its id). */
export class RequestTimeoutError extends RealtimeClientError {
  constructor(action: string, timeoutMs: number) {
    super('timeout', `No answer to "${action}" within ${timeoutMs} ms.`, { details: { action, timeoutMs } });
  }
}

/** The client was closed with `close()` (or stopped on a permanent error) while this was pending. */
export class ClientClosedError extends RealtimeClientError {
  constructor(message = 'The client is closed.', options?: { cause?: unknown }) {
    super('client_closed', message, options);
  }
}

/** A send made while offline found the offline queue full (`offlineQueueSize`). Nothing was queued. */
export class OfflineQueueFullError extends RealtimeClientError {
  constructor(limit: number) {
    super('offline_queue_full', `The offline queue holds at most ${limit} requests.`, { details: { limit } });
  }
}

/** `getToken()` threw or returned something that is not a JWT. The client retries with backoff. */
export class TokenProviderError extends RealtimeClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('token_provider_failed', message, options);
  }
}

/** A body failed the app's runtime schema: an outgoing one (thrown, nothing sent) or an incoming one (emitted
 * as an `error` event with the raw frame in `details.frame`, so nothing vanishes silently). */
export class SchemaError extends RealtimeClientError {
  constructor(kind: 'message' | 'notification' | 'announcement', options: { cause?: unknown; frame?: unknown }) {
    super('schema_mismatch', `A ${kind} body does not match the schema.`, {
      details: { kind, frame: options.frame },
      cause: options.cause,
    });
  }
}

/** The room was left (`room.leave()`) while this was pending. */
export class RoomLeftError extends RealtimeClientError {
  constructor(room: string) {
    super('room_left', `Room "${room}" was left.`, { details: { room } });
  }
}

/** An app listener threw. The SDK goes on; the error is emitted on the client's `error` event with the
 * listener's exception as `cause`. */
export class ListenerError extends RealtimeClientError {
  constructor(event: string, cause: unknown) {
    super('listener_failed', `A listener of "${event}" threw.`, { details: { event }, cause });
  }
}

/** The options cannot work (no `url` and no `config`, a config of another version, `mqtt` without an MQTT
 * endpoint in the config). Thrown by `createRealtimeClient`, before anything connects. */
export class ConfigError extends RealtimeClientError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('invalid_config', message, options);
  }
}
