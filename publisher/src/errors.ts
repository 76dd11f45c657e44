/**
 * The publisher's errors. Input errors are the protocol's typed errors (each with a stable `code`), re-exported
 * here so a backend imports everything from one module.
 */
export {
  ForbiddenError,
  RealtimeError,
  RoomClosedError,
  TooManyRecipientsError,
  UnknownRoomError,
  ValidationError,
} from '@viba-realtime/protocol';

/** The publisher's configuration is incomplete (a missing table name, endpoint or environment variable). */
export class PublisherConfigError extends Error {
  override readonly name = 'PublisherConfigError';
}
