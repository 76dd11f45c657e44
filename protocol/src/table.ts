/**
 * The DynamoDB single-table layout: key attribute names, the index, the TTL attribute and every key
 * format. The CDK stack creates the table from {@link TABLE}; the store builds keys only through
 * {@link keys}.
 */

export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds after which an item is expired (DynamoDB TTL attribute). */
  ttlAttribute: 'ttl',
  /** Generic inverted index: each item type puts what it needs to be found by into gsi1pk/gsi1sk. */
  indexes: {
    gsi1: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  },
} as const;

/** Zero-padded so that string order equals numeric order (Number.MAX_SAFE_INTEGER has 16 digits). */
export function padSeq(seq: number): string {
  return seq.toString().padStart(16, '0');
}

/**
 * Key formats. `pk`/`sk` for the base table, `gsi1pk`/`gsi1sk` for the index.
 *
 * | item          | pk               | sk                        | gsi1pk        | gsi1sk         |
 * |---------------|------------------|---------------------------|---------------|----------------|
 * | connection    | CONN#{id}        | META                      | USER#{sub}    | CONN#{id}      |
 * | room          | ROOM#{room}      | META                      | -             | -              |
 * | membership    | ROOM#{room}      | MEMBER#{sub}              | USER#{sub}    | ROOM#{room}    |
 * | subscription  | ROOM#{room}      | SUB#{connectionId}        | CONN#{id}     | ROOM#{room}    |
 * | message       | MSGS#{room}      | SEQ#{seq, 16 digits}      | -             | -              |
 * | dedupe record | MSGS#{room}      | DEDUPE#{sub}#{clientId}   | -             | -              |
 */
export const keys = {
  connection: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: 'META' }),
  connectionByUser: (sub: string, connectionId: string) => ({ gsi1pk: `USER#${sub}`, gsi1sk: `CONN#${connectionId}` }),
  userConnectionsPrefix: (sub: string) => ({ gsi1pk: `USER#${sub}`, gsi1skPrefix: 'CONN#' }),
  room: (room: string) => ({ pk: `ROOM#${room}`, sk: 'META' }),
  membership: (room: string, sub: string) => ({ pk: `ROOM#${room}`, sk: `MEMBER#${sub}` }),
  membershipByUser: (sub: string, room: string) => ({ gsi1pk: `USER#${sub}`, gsi1sk: `ROOM#${room}` }),
  userRoomsPrefix: (sub: string) => ({ gsi1pk: `USER#${sub}`, gsi1skPrefix: 'ROOM#' }),
  subscription: (room: string, connectionId: string) => ({ pk: `ROOM#${room}`, sk: `SUB#${connectionId}` }),
  subscriptionByConnection: (connectionId: string, room: string) => ({
    gsi1pk: `CONN#${connectionId}`,
    gsi1sk: `ROOM#${room}`,
  }),
  roomSubscriptionsPrefix: (room: string) => ({ pk: `ROOM#${room}`, skPrefix: 'SUB#' }),
  connectionSubscriptionsPrefix: (connectionId: string) => ({ gsi1pk: `CONN#${connectionId}`, gsi1skPrefix: 'ROOM#' }),
  message: (room: string, seq: number) => ({ pk: `MSGS#${room}`, sk: `SEQ#${padSeq(seq)}` }),
  messagesPrefix: (room: string) => ({ pk: `MSGS#${room}`, skPrefix: 'SEQ#' }),
  dedupe: (room: string, sub: string, clientId: string) => ({ pk: `MSGS#${room}`, sk: `DEDUPE#${sub}#${clientId}` }),
} as const;
