/**
 * Items of the single table and the records they hold: each `*Item` builds what the store writes, each `to*`
 * reads a stored item back, throwing if a required attribute is missing (a corrupt item is a bug, not a
 * value to pass on). Bodies are stored as JSON text: DynamoDB's numbers cannot hold every JSON number
 * (1e300) and its maps reject some keys JSON allows (""), so a body round-trips exactly only as text.
 */
import {
  AUDIENCE_ALL,
  audienceShardOf,
  GROUP_NAME_PATTERN,
  groupAudience,
  type JsonObject,
  keys,
  type RoomVisibility,
  TABLE,
} from '@viba-realtime/protocol';
import type {
  AnnouncementRecord,
  Channel,
  ConnectionRecord,
  DedupeRecord,
  DeliveryTarget,
  NotificationRecord,
  RoomRecord,
  StoredMessage,
} from '../core/ports.js';

export type Item = Record<string, unknown>;

const TTL = TABLE.ttlAttribute;

// ---- attribute access ----

export function str(item: Item, name: string): string {
  const value = item[name];
  if (typeof value !== 'string') throw new Error(`Stored item ${describeKey(item)} has no string "${name}".`);
  return value;
}

export function num(item: Item, name: string): number {
  const value = item[name];
  if (typeof value !== 'number') throw new Error(`Stored item ${describeKey(item)} has no number "${name}".`);
  return value;
}

function strings(item: Item, name: string): string[] {
  const value = item[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function describeKey(item: Item): string {
  return `${String(item[TABLE.partitionKey])}/${String(item[TABLE.sortKey])}`;
}

export function primaryKey(item: Item): Record<string, string> {
  return { [TABLE.partitionKey]: str(item, TABLE.partitionKey), [TABLE.sortKey]: str(item, TABLE.sortKey) };
}

// ---- connections, rooms, messages ----

export function toConnection(item: Item): ConnectionRecord {
  return {
    connectionId: str(item, 'connectionId'),
    sub: str(item, 'sub'),
    username: str(item, 'username'),
    groups: strings(item, 'groups'),
    channel: str(item, 'channel') as Channel,
    connectedAt: num(item, 'connectedAt'),
    tokenExp: num(item, 'tokenExp'),
    expiresAt: num(item, TTL),
    ...(typeof item.lifecycleVersion === 'number'
      ? { lifecycle: { versionNumber: item.lifecycleVersion, timestamp: num(item, 'lifecycleTs') } }
      : {}),
  };
}

export function toRoom(item: Item): RoomRecord {
  return {
    room: str(item, 'room'),
    visibility: str(item, 'visibility') as RoomVisibility,
    owner: str(item, 'owner'),
    createdAt: num(item, 'createdAt'),
    lastSeq: num(item, 'lastSeq'),
    ...(item.closed === true ? { closed: true } : {}),
  };
}

export function toDedupe(item: Item): DedupeRecord {
  const record: DedupeRecord = { messageId: str(item, 'messageId'), claimedAt: num(item, 'claimedAt') };
  if (typeof item.seq === 'number') record.seq = item.seq;
  if (typeof item.ts === 'number') record.ts = item.ts;
  if (item.stored === true) record.stored = true;
  return record;
}

export function toMessage(item: Item): StoredMessage {
  return {
    id: str(item, 'id'),
    room: str(item, 'room'),
    from: str(item, 'from'),
    seq: num(item, 'seq'),
    ts: num(item, 'ts'),
    body: JSON.parse(str(item, 'body')) as JsonObject,
    ref: str(item, 'ref'),
  };
}

// ---- notifications ----

/** A notification; while unread it also carries the sparse index key `UNREAD#{sub}` / `N#{id}`. */
export function notificationItem(record: NotificationRecord): Item {
  return {
    ...keys.notification(record.sub, record.id),
    ...(record.read ? {} : keys.unreadNotification(record.sub, record.id)),
    type: 'notification',
    sub: record.sub,
    id: record.id,
    ts: record.ts,
    body: JSON.stringify(record.body),
    read: record.read,
    [TTL]: record.expiresAt,
  };
}

export function toNotification(item: Item): NotificationRecord {
  return {
    sub: str(item, 'sub'),
    id: str(item, 'id'),
    ts: num(item, 'ts'),
    body: JSON.parse(str(item, 'body')) as JsonObject,
    read: item.read === true,
    expiresAt: num(item, TTL),
  };
}

/**
 * The record of a notification idempotency key: which notification the key stored first (id, ts), living as
 * long as that notification. Enough to find it, and to store it again should the call that used the key
 * have died between its two writes.
 */
export function notifyKeyItem(record: NotificationRecord, key: string): Item {
  return {
    ...keys.notifyKey(record.sub, key),
    type: 'notify-key',
    sub: record.sub,
    key,
    notificationId: record.id,
    ts: record.ts,
    [TTL]: record.expiresAt,
  };
}

/** The notification a key item names, rebuilt around `body` (the caller's: the first call's was not kept). */
export function notificationOfKey(keyItem: Item, sub: string, body: JsonObject): NotificationRecord {
  return {
    sub,
    id: str(keyItem, 'notificationId'),
    ts: num(keyItem, 'ts'),
    body,
    read: false,
    expiresAt: num(keyItem, TTL),
  };
}

// ---- announcements ----

export function announcementItem(record: AnnouncementRecord): Item {
  return {
    ...keys.announcement(record.audience, record.id),
    type: 'announcement',
    audience: record.audience,
    id: record.id,
    ts: record.ts,
    from: record.from,
    ...(record.group === undefined ? {} : { group: record.group }),
    body: JSON.stringify(record.body),
    [TTL]: record.expiresAt,
  };
}

export function toAnnouncement(item: Item): AnnouncementRecord {
  return {
    audience: str(item, 'audience'),
    id: str(item, 'id'),
    ts: num(item, 'ts'),
    from: str(item, 'from'),
    ...(typeof item.group === 'string' ? { group: item.group } : {}),
    body: JSON.parse(str(item, 'body')) as JsonObject,
    expiresAt: num(item, TTL),
  };
}

/** The record of an announcement idempotency key (as {@link notifyKeyItem}; the key is global, so it names
 * the audience too). */
export function announceKeyItem(record: AnnouncementRecord, key: string): Item {
  return {
    ...keys.announceKey(key),
    type: 'announce-key',
    key,
    audience: record.audience,
    announcementId: record.id,
    ts: record.ts,
    [TTL]: record.expiresAt,
  };
}

/** The announcement a key item names, rebuilt around the caller's `from`, `group` and `body`. */
export function announcementOfKey(keyItem: Item, caller: AnnouncementRecord): AnnouncementRecord {
  return {
    ...caller,
    audience: str(keyItem, 'audience'),
    id: str(keyItem, 'announcementId'),
    ts: num(keyItem, 'ts'),
    expiresAt: num(keyItem, TTL),
  };
}

// ---- audience directory ----

/** The groups of a connection that have an audience: valid names (`GROUP_NAME_PATTERN`), each once. */
export function audienceGroups(groups: readonly string[]): string[] {
  return [...new Set(groups.filter((group) => GROUP_NAME_PATTERN.test(group)))];
}

/**
 * The audience entries of a WebSocket connection: `all` first, then one per group. Each carries the token's
 * expiry, so an announcement closes a connection past it instead of posting to it. The `all` entry also lists
 * the groups, so that `deleteConnection` finds the group entries even when the connection record is already
 * gone, and is indexed by the token's expiry for the token sweeper.
 */
export function audienceEntryItems(connection: ConnectionRecord, groups: readonly string[]): Item[] {
  const shard = audienceShardOf(connection.connectionId);
  const entry = (audience: string): Item => ({
    ...keys.audienceEntry(audience, shard, connection.connectionId),
    type: 'audience-entry',
    audience,
    connectionId: connection.connectionId,
    sub: connection.sub,
    tokenExp: connection.tokenExp,
    [TTL]: connection.expiresAt,
  });
  const all: Item = {
    ...entry(AUDIENCE_ALL),
    ...keys.connectionByTokenExpiry(shard, connection.tokenExp, connection.connectionId),
    groups: [...groups],
  };
  return [all, ...groups.map((group) => entry(groupAudience(group)))];
}

/** The key of a connection's entry in `audience`. */
export function audienceEntryKey(audience: string, connectionId: string): { pk: string; sk: string } {
  return keys.audienceEntry(audience, audienceShardOf(connectionId), connectionId);
}

/** The groups an `all` entry lists (see {@link audienceEntryItems}). */
export function groupsOfAllEntry(item: Item): string[] {
  return audienceGroups(strings(item, 'groups'));
}

/** The groups of a stored connection record that has audience entries (a `ws` one), else undefined. */
export function audienceGroupsOfRecord(item: Item): string[] | undefined {
  return item.type === 'connection' && item.channel === 'ws' ? audienceGroups(strings(item, 'groups')) : undefined;
}

/** An audience entry as a delivery target (with the token's expiry; entries written before it was kept have none). */
export function toDeliveryTarget(item: Item): DeliveryTarget {
  return {
    connectionId: str(item, 'connectionId'),
    sub: str(item, 'sub'),
    ...(typeof item.tokenExp === 'number' ? { tokenExp: item.tokenExp } : {}),
  };
}
