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

/** Epoch seconds, zero-padded to 11 digits (good past the year 5000) so string order is time order. */
function padEpochSeconds(seconds: number): string {
  return Math.max(0, Math.floor(seconds)).toString().padStart(11, '0');
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
 * | notification  | INBOX#{sub}      | N#{id}                    | UNREAD#{sub} while unread | N#{id} |
 * | notify key    | INBOX#{sub}      | NKEY#{key}                | -             | -              |
 * | announcement  | ANN#{audience}   | A#{id}                    | -             | -              |
 * | announce key  | ANNKEY#{key}     | META                      | -             | -              |
 * | audience entry| AUD#{audience}#{shard} | CONN#{connectionId} | EXPIRY#{shard} (`all` only) | EXP#{tokenExp}#{connectionId} |
 * | fan-out batch | BATCH#{batchId}  | META                      | -             | -              |
 *
 * `audience` is `all` or `group.{group}`; an audience entry lists a WebSocket connection for announcements
 * (MQTT connections get them from IoT topics), in one of {@link AUDIENCE_SHARDS} partitions picked by a hash of
 * the connection id, so a burst of connects does not write to one partition. The `all` entry is also indexed
 * by its token's expiry (same shard), so the token sweeper finds every connection whose token has expired with
 * one query per shard. Notification and announcement
 * ids sort by time (see `timeId`), so `N#`/`A#` order is time order.
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
  notification: (sub: string, id: string) => ({ pk: `INBOX#${sub}`, sk: `N#${id}` }),
  unreadNotification: (sub: string, id: string) => ({ gsi1pk: `UNREAD#${sub}`, gsi1sk: `N#${id}` }),
  inboxPrefix: (sub: string) => ({ pk: `INBOX#${sub}`, skPrefix: 'N#' }),
  unreadPrefix: (sub: string) => ({ gsi1pk: `UNREAD#${sub}`, gsi1skPrefix: 'N#' }),
  notifyKey: (sub: string, key: string) => ({ pk: `INBOX#${sub}`, sk: `NKEY#${key}` }),
  announcement: (audience: string, id: string) => ({ pk: `ANN#${audience}`, sk: `A#${id}` }),
  announcementsPrefix: (audience: string) => ({ pk: `ANN#${audience}`, skPrefix: 'A#' }),
  announceKey: (key: string) => ({ pk: `ANNKEY#${key}`, sk: 'META' }),
  audienceEntry: (audience: string, shard: number, connectionId: string) => ({
    pk: `AUD#${audience}#${shard}`,
    sk: `CONN#${connectionId}`,
  }),
  audiencePrefix: (audience: string, shard: number) => ({ pk: `AUD#${audience}#${shard}`, skPrefix: 'CONN#' }),
  connectionByTokenExpiry: (shard: number, tokenExp: number, connectionId: string) => ({
    gsi1pk: `EXPIRY#${shard}`,
    gsi1sk: `EXP#${padEpochSeconds(tokenExp)}#${connectionId}`,
  }),
  /** The index range of a shard's connections whose token expired at or before `nowSeconds`:
   * `gsi1sk` from `from` to `to`, both inclusive. */
  expiredTokensRange: (shard: number, nowSeconds: number) => ({
    gsi1pk: `EXPIRY#${shard}`,
    from: 'EXP#',
    // The bound is the `#` after the seconds bumped to `$` (the next character): every sort key of `nowSeconds`
    // continues with `#`, so it is inside, whatever the connection id; every later second is outside.
    to: `EXP#${padEpochSeconds(nowSeconds)}$`,
  }),
  fanoutBatch: (batchId: string) => ({ pk: `BATCH#${batchId}`, sk: 'META' }),
} as const;

/** Partitions of each announcement audience (see the `audience entry` row of {@link keys}). */
export const AUDIENCE_SHARDS = 16;

/** The audience everyone is in. */
export const AUDIENCE_ALL = 'all';

/** The audience of one Cognito group. */
export function groupAudience(group: string): string {
  return `group.${group}`;
}

/** The audience shard of a connection: a small stable hash (FNV-1a) of its id. */
export function audienceShardOf(connectionId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < connectionId.length; i++) {
    hash ^= connectionId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % AUDIENCE_SHARDS;
}

/**
 * A server id that sorts by time: `prefix`, the epoch ms in base 36 (9 characters, good past year 5000), then
 * `random` (letters and digits). Notifications use `n`, announcements `a`.
 */
export function timeId(prefix: string, ms: number, random: string): string {
  return `${prefix}${ms.toString(36).padStart(9, '0')}${random}`;
}
