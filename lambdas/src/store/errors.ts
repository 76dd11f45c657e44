/**
 * Errors the DynamoDB store raises on purpose, for the cases where a caller has to branch. Every other
 * SDK failure propagates as the SDK raised it (or wrapped, with the SDK error as `cause`).
 */

/** What went wrong, stable across releases: branch on this or on `instanceof`, never on `message`. */
export type StoreErrorCode = 'room_not_found' | 'message_exists' | 'unprocessed_items';

/** Base class of the store's own errors. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** The room has no META item, so it has no counter to increment (`nextSeq`). */
export class RoomNotFoundError extends StoreError {
  readonly room: string;
  constructor(room: string, options?: { cause?: unknown }) {
    super('room_not_found', `Room "${room}" does not exist.`, options);
    this.room = room;
  }
}

/** Another message (another id) is already stored at this room and seq: two writers got the same seq,
 * which is a bug. */
export class MessageExistsError extends StoreError {
  readonly room: string;
  readonly seq: number;
  constructor(room: string, seq: number, options?: { cause?: unknown }) {
    super('message_exists', `Message ${seq} of room "${room}" is already stored.`, options);
    this.room = room;
    this.seq = seq;
  }
}

/** DynamoDB kept returning some items of a BatchWriteItem as unprocessed, through every retry. */
export class UnprocessedItemsError extends StoreError {
  readonly unprocessed: number;
  constructor(unprocessed: number) {
    super('unprocessed_items', `${unprocessed} batch write request(s) stayed unprocessed after every retry.`);
    this.unprocessed = unprocessed;
  }
}

/** Whether `error` is DynamoDB's answer to a failed `ConditionExpression`. */
export function isConditionalCheckFailed(error: unknown): boolean {
  // By name rather than instanceof: two copies of the SDK in one process have two different classes.
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
