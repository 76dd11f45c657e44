/** What the client gives its parts (rooms, inbox, announcements): requests, error reporting, body checks. */
import type { ClientFrame, JsonObject, ServerFrame } from '@viba-realtime/protocol';
import type { RealtimeClientError } from '../errors.js';
import type { RealtimeLogger } from '../types.js';
import type { RequestOptions } from './requests.js';

export type BodyKind = 'message' | 'notification' | 'announcement';

export interface ClientContext {
  request(frame: ClientFrame, options?: RequestOptions): Promise<ServerFrame>;
  /** Writes queued requests whose gate opened. */
  flush(): void;
  readonly isOpen: boolean;
  /** The signed-in user's `sub`, from the last token (undefined before the first one). */
  readonly userId: string | undefined;
  /** Emits on the client's `error` event. */
  reportError(error: RealtimeClientError): void;
  /** A listener threw. */
  listenerFailed(event: string, error: unknown): void;
  /** The app's runtime schema check of a received body; `undefined` (and an `error` event) when it fails. */
  checkIncoming(kind: BodyKind, body: JsonObject, frame: unknown): JsonObject | undefined;
  /** The same for a body about to be sent; throws `SchemaError`. */
  checkOutgoing(kind: BodyKind, body: JsonObject): void;
  /** Fails the room's pending requests (its `send`s held until it is joined): the room left or failed. */
  failRoomRequests(room: string, error: Error): void;
  /** Reconnect at once with a fresh token (a `token_expired` answer). */
  tokenExpired(): void;
  readonly logger: RealtimeLogger;
  /** Base and cap of retry delays (ms). */
  readonly retryDelay: (attempt: number) => number;
}
