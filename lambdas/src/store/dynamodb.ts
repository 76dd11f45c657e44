/**
 * The {@link Store} on one DynamoDB table (layout in the protocol's `table.ts`).
 *
 * Built for what both AWS and the emulator's dynalite support: no transactions (dynalite has none, and
 * they cost double on AWS) and no Scan. Writes that can race are conditional, multi-item changes are
 * ordered so that a retry after a crash finishes the job, and every Query pages to the end. Expired items
 * are filtered on every read because TTL deletion is lazy: AWS deletes up to ~2 days late, dynalite never.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AUDIENCE_ALL, AUDIENCE_SHARDS, groupAudience, keys, LIMITS, TABLE, timeId } from '@viba-realtime/protocol';
import type { HandlerConfig } from '../config.js';
import { mapWithConcurrency } from '../core/concurrency.js';
import {
  type AnnouncementRecord,
  type BatchClaim,
  type ClaimResult,
  type Clock,
  type ConnectionLifecycle,
  type ConnectionRecord,
  type DedupeRecord,
  type DeliveryTarget,
  type MessagePage,
  type NotificationRecord,
  type RoomRecord,
  type Store,
  type StoredMessage,
  type SubscriptionRecord,
  systemClock,
} from '../core/ports.js';
import { batchDelete, batchWrite } from './batch.js';
import { isConditionalCheckFailed, MessageExistsError, RoomNotFoundError } from './errors.js';
import {
  announceKeyItem,
  announcementItem,
  announcementOfKey,
  audienceEntryItems,
  audienceEntryKey,
  audienceGroups,
  audienceGroupsOfRecord,
  groupsOfAllEntry,
  type Item,
  notificationItem,
  notificationOfKey,
  notifyKeyItem,
  num,
  primaryKey,
  str,
  toAnnouncement,
  toConnection,
  toDedupe,
  toDeliveryTarget,
  toMessage,
  toNotification,
  toRoom,
} from './items.js';

export {
  MessageExistsError,
  RoomNotFoundError,
  StoreError,
  type StoreErrorCode,
  UnprocessedItemsError,
} from './errors.js';
// Re-exported so the package entry point offers the table definition to the emulator and the CDK stack.
export { createTableInput, ensureTable } from './table-definition.js';

const GSI1 = TABLE.indexes.gsi1;
const TTL = TABLE.ttlAttribute;

/** Key attribute names in expressions go through placeholders so a layout change touches only TABLE. */
const NAMES = {
  '#pk': TABLE.partitionKey,
  '#sk': TABLE.sortKey,
  '#gpk': GSI1.partitionKey,
  '#gsk': GSI1.sortKey,
} as const;

/** How often a claim is retried when the record it lost to vanished (TTL) before it could be read. */
const CLAIM_ATTEMPTS = 3;

/** How long a fan-out batch's record is kept after its claim or its completion: a day. */
const BATCH_RETENTION_SECONDS = 24 * 3600;

/** Conditional updates in flight at once for one markRead / markAllRead. */
const UPDATE_CONCURRENCY = 16;

/** Options of {@link DynamoDbStore}. */
export interface DynamoDbStoreOptions {
  /** A document client; build it with `removeUndefinedValues: true` (see {@link createDynamoDbStore}). */
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Decides what is expired. @default systemClock */
  clock?: Clock;
  /** Query `Limit`, so tests can force paging. @default undefined (DynamoDB's 1 MB pages) */
  pageSize?: number;
}

/**
 * {@link Store} on DynamoDB through the document client.
 *
 * @example
 * const store = new DynamoDbStore({ client: DynamoDBDocumentClient.from(new DynamoDBClient({})), tableName });
 * const { room, created } = await store.createRoom({ room: 'lobby', visibility: 'public', owner, createdAt: Date.now() });
 */
export class DynamoDbStore implements Store {
  readonly tableName: string;
  private readonly client: DynamoDBDocumentClient;
  private readonly clock: Clock;
  private readonly pageSize: number | undefined;

  constructor(options: DynamoDbStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.clock = options.clock ?? systemClock;
    this.pageSize = options.pageSize;
  }

  /** Releases the client's sockets. Call it when the store is no longer used (tests, emulator shutdown). */
  destroy(): void {
    this.client.destroy();
  }

  // ---- connections ----

  async putConnection(connection: ConnectionRecord): Promise<boolean> {
    const item: Item = {
      ...keys.connection(connection.connectionId),
      ...keys.connectionByUser(connection.sub, connection.connectionId),
      type: 'connection',
      connectionId: connection.connectionId,
      sub: connection.sub,
      username: connection.username,
      groups: connection.groups,
      channel: connection.channel,
      connectedAt: connection.connectedAt,
      tokenExp: connection.tokenExp,
      [TTL]: connection.expiresAt,
      ...(connection.lifecycle === undefined
        ? {}
        : { lifecycleVersion: connection.lifecycle.versionNumber, lifecycleTs: connection.lifecycle.timestamp }),
    };
    if (connection.lifecycle !== undefined) {
      // MQTT: IoT topics deliver announcements, so such a connection has no audience entries.
      return this.putIfNewer(item, connection.lifecycle.versionNumber, 'newer');
    }
    const { Attributes: previous } = await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: item, ReturnValues: 'ALL_OLD' }),
    );
    if (connection.channel === 'ws') await this.enterAudiences(connection, previous);
    return true;
  }

  /**
   * Enters a WebSocket connection in the audience directory: `all` and its groups. After the record, never
   * before: an entry then always has a record or an `all` entry that leads `deleteConnection` to it. Entries
   * of groups the record under the same id had (`previous`) but this one has not are removed.
   */
  private async enterAudiences(connection: ConnectionRecord, previous: Item | undefined): Promise<void> {
    const groups = audienceGroups(connection.groups);
    await batchWrite(
      this.client,
      this.tableName,
      audienceEntryItems(connection, groups).map((entry) => ({ PutRequest: { Item: entry } })),
    );
    const left = (previous === undefined ? [] : (audienceGroupsOfRecord(previous) ?? [])).filter(
      (group) => !groups.includes(group),
    );
    await batchDelete(
      this.client,
      this.tableName,
      left.map((group) => audienceEntryKey(groupAudience(group), connection.connectionId)),
    );
  }

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const item = await this.get(keys.connection(connectionId));
    // A gone mark (MQTT) shares the key but is no connection.
    return item === undefined || item.type !== 'connection' ? undefined : toConnection(item);
  }

  async markConnectionGone(
    connectionId: string,
    lifecycle: ConnectionLifecycle,
    expiresAt: number,
    pendingExpiresAt: number,
  ): Promise<{ rooms: string[]; pending: number } | undefined> {
    const mark: Item = {
      ...keys.connection(connectionId),
      type: 'connection-gone',
      connectionId,
      lifecycleVersion: lifecycle.versionNumber,
      lifecycleTs: lifecycle.timestamp,
      [TTL]: expiresAt,
    };
    // The session's own record has the same version and gives way; a newer session's does not.
    if (!(await this.putIfNewer(mark, lifecycle.versionNumber, 'same or newer'))) return undefined;
    const later = (item: Item) => typeof item.subscribedAt === 'number' && item.subscribedAt > lifecycle.timestamp;
    // Deleted one by one, each on condition that it is still this session's: an MQTT connection id is the
    // client id's for every session, so a reconnect's rejoin rewrites the same key, and may do so between the
    // query and the delete (an unconditional batch delete then removed the new session's subscription: found
    // by bench/soak.ts in reconnect storms).
    const rooms: string[] = [];
    for (const item of (await this.connectionSubscriptions(connectionId)).filter((item) => !later(item))) {
      if ((await this.deleteSubscriptionMadeBy(item, lifecycle.timestamp)) && this.isLive(item))
        rooms.push(str(item, 'room'));
    }
    const pending = (await this.connectionSubscriptions(connectionId)).filter(later);
    for (const item of pending) await this.setSubscriptionsExpiry(connectionId, pendingExpiresAt, str(item, 'room'));
    return { rooms, pending: pending.length };
  }

  /** Deletes a subscription unless it was (re)made after `time`; true if it deleted it. */
  private async deleteSubscriptionMadeBy(item: Item, time: number): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: primaryKey(item),
          ConditionExpression:
            'attribute_exists(#pk) AND (attribute_not_exists(subscribedAt) OR subscribedAt <= :time)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: { ':time': time },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** Deletes the subscriptions of a connection; returns the rooms of the live ones. */
  private async deleteSubscriptionsOf(connectionId: string) {
    const subscriptions = await this.connectionSubscriptions(connectionId);
    await batchDelete(
      this.client,
      this.tableName,
      subscriptions.map((item) => primaryKey(item)),
    );
    return subscriptions.filter((item) => this.isLive(item)).map((item) => str(item, 'room'));
  }

  /** Every subscription item of a connection, expired ones included, from the index. */
  private connectionSubscriptions(connectionId: string): Promise<Item[]> {
    const prefix = keys.connectionSubscriptionsPrefix(connectionId);
    return this.queryIndex(prefix.gsi1pk, prefix.gsi1skPrefix);
  }

  /**
   * Puts an item unless the stored one at its key carries a lifecycle version that wins: with `newer`, the
   * stored item must be older than `version` (a duplicate `connected` changes nothing); with `same or
   * newer`, older or equal (a `disconnected` replaces its own session's record). Expired items never win.
   */
  private async putIfNewer(item: Item, version: number, replaces: 'newer' | 'same or newer'): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: `attribute_not_exists(#pk) OR attribute_not_exists(#lv) OR #lv ${replaces === 'newer' ? '<' : '<='} :v OR #ttl <= :now`,
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#lv': 'lifecycleVersion', '#ttl': TTL },
          ExpressionAttributeValues: { ':v': version, ':now': Math.floor(this.nowSeconds()) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  async deleteConnection(connectionId: string): Promise<string[]> {
    // Subscriptions first: if this call dies half-way, the connection item and the index still lead a
    // retry (or the 410 cleanup of a later fan-out) to what is left.
    const rooms = await this.deleteSubscriptionsOf(connectionId);
    const { Attributes: record } = await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: keys.connection(connectionId), ReturnValues: 'ALL_OLD' }),
    );
    await this.leaveAudiences(connectionId, record);
    return rooms;
  }

  /**
   * Removes a connection's audience entries. Their groups come from the record just deleted; without one
   * (deleted by an earlier call that died half-way, or never written) from the `all` entry, which lists them
   * and is removed last for that reason. So a fan-out that meets a vanished connection (410) and calls
   * `deleteConnection` removes every entry that made it post there, and the next fan-out does not post again.
   */
  private async leaveAudiences(connectionId: string, record: Item | undefined): Promise<void> {
    const all = audienceEntryKey(AUDIENCE_ALL, connectionId);
    let groups: string[];
    if (record !== undefined) {
      const recorded = audienceGroupsOfRecord(record);
      // An MQTT record or gone mark: such connections have no entries.
      if (recorded === undefined) return;
      groups = recorded;
    } else {
      const { Item: entry } = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: all, ConsistentRead: true }),
      );
      if (entry === undefined) return;
      groups = groupsOfAllEntry(entry);
    }
    await batchDelete(
      this.client,
      this.tableName,
      groups.map((group) => audienceEntryKey(groupAudience(group), connectionId)),
    );
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: all }));
  }

  async listUserConnections(sub: string): Promise<ConnectionRecord[]> {
    const prefix = keys.userConnectionsPrefix(sub);
    const items = await this.queryIndex(prefix.gsi1pk, prefix.gsi1skPrefix);
    return items.filter((item) => this.isLive(item)).map(toConnection);
  }

  // ---- rooms and members ----

  async getRoom(room: string): Promise<RoomRecord | undefined> {
    const item = await this.get(keys.room(room));
    return item === undefined ? undefined : toRoom(item);
  }

  async createRoom(room: Omit<RoomRecord, 'lastSeq'>): Promise<{ room: RoomRecord; created: boolean }> {
    const record: RoomRecord = { ...room, lastSeq: 0 };
    let stored = record;
    let created = true;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...keys.room(room.room),
            type: 'room',
            room: record.room,
            visibility: record.visibility,
            owner: record.owner,
            createdAt: record.createdAt,
            lastSeq: 0,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': NAMES['#pk'] },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      created = false;
      const existing = await this.getRoom(room.room);
      // Rooms are never deleted, so a failed condition means the item is there for a consistent read.
      if (existing === undefined)
        throw new Error(`Room "${room.room}" exists but could not be read.`, { cause: error });
      stored = existing;
    }
    // A second write, not a transaction: putting the stored owner's membership is idempotent, so a caller
    // that lost the race (or retries after a crash between the writes) repairs a missing one. It is the
    // stored owner, never the caller, so losing the race grants the caller nothing.
    await this.addMember(stored.room, stored.owner);
    return { room: stored, created };
  }

  async isMember(room: string, sub: string): Promise<boolean> {
    return (await this.get(keys.membership(room, sub))) !== undefined;
  }

  async addMember(room: string, sub: string): Promise<void> {
    await this.put({
      ...keys.membership(room, sub),
      ...keys.membershipByUser(sub, room),
      type: 'membership',
      room,
      sub,
    });
  }

  async removeMember(room: string, sub: string): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: keys.membership(room, sub) }));
  }

  async listUserRooms(sub: string): Promise<string[]> {
    const prefix = keys.userRoomsPrefix(sub);
    const items = await this.queryIndex(prefix.gsi1pk, prefix.gsi1skPrefix);
    return items.filter((item) => this.isLive(item)).map((item) => str(item, 'room'));
  }

  async closeRoom(room: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: keys.room(room),
      UpdateExpression: 'SET #closed = :true',
      // An update would otherwise create a bare room item.
      ConditionExpression: 'attribute_exists(#pk)',
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#closed': 'closed' },
      ExpressionAttributeValues: { ':true': true },
    });
  }

  async listRoomMembers(room: string): Promise<string[]> {
    // `MEMBER#` alone: the membership key of the empty sub is the prefix of every membership key.
    const { pk, sk: prefix } = keys.membership(room, '');
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
      ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
      ConsistentRead: true,
    });
    return items.filter((item) => this.isLive(item)).map((item) => str(item, 'sub'));
  }

  // ---- subscriptions ----

  async subscribe(subscription: SubscriptionRecord, expiresAt: number): Promise<void> {
    await this.put({
      ...keys.subscription(subscription.room, subscription.connectionId),
      ...keys.subscriptionByConnection(subscription.connectionId, subscription.room),
      type: 'subscription',
      room: subscription.room,
      connectionId: subscription.connectionId,
      sub: subscription.sub,
      subscribedAt: subscription.subscribedAt,
      ...(subscription.tokenExp === undefined ? {} : { tokenExp: subscription.tokenExp }),
      [TTL]: expiresAt,
    });
  }

  async unsubscribe(room: string, connectionId: string): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: keys.subscription(room, connectionId) }),
    );
  }

  async setSubscriptionsExpiry(connectionId: string, expiresAt: number, room?: string): Promise<void> {
    const rooms =
      room === undefined ? (await this.connectionSubscriptions(connectionId)).map((item) => str(item, 'room')) : [room];
    for (const name of rooms) {
      await this.conditionalUpdate({
        Key: keys.subscription(name, connectionId),
        UpdateExpression: 'SET #ttl = :ttl',
        // An update would otherwise create a bare item where a leave or a disconnect just deleted one.
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#ttl': TTL },
        ExpressionAttributeValues: { ':ttl': expiresAt },
      });
    }
  }

  async isSubscribed(room: string, connectionId: string): Promise<boolean> {
    return (await this.get(keys.subscription(room, connectionId))) !== undefined;
  }

  async listConnectionRooms(connectionId: string): Promise<string[]> {
    const items = await this.connectionSubscriptions(connectionId);
    return items.filter((item) => this.isLive(item)).map((item) => str(item, 'room'));
  }

  async listRoomSubscriptions(room: string): Promise<SubscriptionRecord[]> {
    const prefix = keys.roomSubscriptionsPrefix(room);
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
      ExpressionAttributeValues: { ':pk': prefix.pk, ':prefix': prefix.skPrefix },
      // A connection that has just joined must get the next fan-out.
      ConsistentRead: true,
    });
    return items
      .filter((item) => this.isLive(item))
      .map((item) => ({
        room: str(item, 'room'),
        connectionId: str(item, 'connectionId'),
        sub: str(item, 'sub'),
        ...(typeof item.subscribedAt === 'number' ? { subscribedAt: item.subscribedAt } : {}),
        ...(typeof item.tokenExp === 'number' ? { tokenExp: item.tokenExp } : {}),
      }));
  }

  // ---- de-duplication ----

  async claimDedupe(room: string, sub: string, clientId: string, messageId: string, now: number): Promise<ClaimResult> {
    const key = keys.dedupe(room, sub, clientId);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...key,
              type: 'dedupe',
              room,
              sub,
              clientId,
              messageId,
              claimedAt: now,
              [TTL]: Math.floor(now / 1000) + LIMITS.dedupeWindowSeconds,
            },
            // An expired record that TTL has not deleted yet must not block a new claim.
            ConditionExpression: 'attribute_not_exists(#pk) OR #ttl <= :nowSeconds',
            ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#ttl': TTL },
            ExpressionAttributeValues: { ':nowSeconds': this.nowSeconds() },
          }),
        );
        return { claimed: true };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        const existing = await this.get(key);
        if (existing !== undefined) return { claimed: false, existing: toDedupe(existing) };
        // The winner's record expired between our write and our read: claim again.
        if (attempt >= CLAIM_ATTEMPTS) {
          throw new Error(`Could not claim message "${clientId}" in room "${room}".`, { cause: error });
        }
      }
    }
  }

  async takeOverClaim(
    room: string,
    sub: string,
    clientId: string,
    seen: DedupeRecord,
    messageId: string,
    now: number,
  ): Promise<boolean> {
    return this.conditionalUpdate({
      Key: keys.dedupe(room, sub, clientId),
      UpdateExpression: 'SET messageId = :messageId, claimedAt = :now, #ttl = :ttl',
      // Of several retries that find the same stale claim, exactly one still sees it unchanged — including
      // its seq: a holder that reserved one since it was seen has made progress and is not taken over.
      ConditionExpression: `messageId = :seenId AND claimedAt = :seenAt AND attribute_not_exists(#stored) AND ${
        seen.seq === undefined ? 'attribute_not_exists(#seq)' : '#seq = :seenSeq'
      }`,
      ExpressionAttributeNames: { '#ttl': TTL, '#stored': 'stored', '#seq': 'seq' },
      ExpressionAttributeValues: {
        ':messageId': messageId,
        ':now': now,
        ':ttl': Math.floor(now / 1000) + LIMITS.dedupeWindowSeconds,
        ':seenId': seen.messageId,
        ':seenAt': seen.claimedAt,
        ...(seen.seq === undefined ? {} : { ':seenSeq': seen.seq }),
      },
    });
  }

  async reserveSeq(
    room: string,
    sub: string,
    clientId: string,
    messageId: string,
    result: { seq: number; ts: number },
    replacing?: number,
  ): Promise<boolean> {
    return this.conditionalUpdate({
      Key: keys.dedupe(room, sub, clientId),
      UpdateExpression: 'SET #seq = :seq, #ts = :ts',
      // Only the current holder, once (or once more, in place of an abandoned seq): a request that lost its
      // claim to a takeover must not reserve.
      ConditionExpression: `messageId = :messageId AND ${replacing === undefined ? 'attribute_not_exists(#seq)' : '#seq = :old'}`,
      ExpressionAttributeNames: { '#seq': 'seq', '#ts': 'ts' },
      ExpressionAttributeValues: {
        ':seq': result.seq,
        ':ts': result.ts,
        ':messageId': messageId,
        ...(replacing === undefined ? {} : { ':old': replacing }),
      },
    });
  }

  async markStored(room: string, sub: string, clientId: string, messageId: string): Promise<boolean> {
    // False only if the claim changed hands or expired; either way there is nothing left for us to mark.
    return this.conditionalUpdate({
      Key: keys.dedupe(room, sub, clientId),
      UpdateExpression: 'SET #stored = :true',
      ConditionExpression: 'messageId = :messageId',
      ExpressionAttributeNames: { '#stored': 'stored' },
      ExpressionAttributeValues: { ':true': true, ':messageId': messageId },
    });
  }

  async releaseClaim(
    room: string,
    sub: string,
    clientId: string,
    messageId: string,
    claimedAt: number,
  ): Promise<boolean> {
    return this.conditionalUpdate({
      Key: keys.dedupe(room, sub, clientId),
      // claimedAt 0 is older than any stale bound; `stored` goes too, as the fan-out has not run (see send.ts).
      UpdateExpression: 'SET claimedAt = :zero REMOVE #stored',
      ConditionExpression: 'messageId = :messageId AND claimedAt = :claimedAt',
      ExpressionAttributeNames: { '#stored': 'stored' },
      ExpressionAttributeValues: { ':zero': 0, ':messageId': messageId, ':claimedAt': claimedAt },
    });
  }

  /** An UpdateItem whose ConditionExpression may fail: true if applied, false if the condition failed. */
  private async conditionalUpdate(
    input: Omit<ConstructorParameters<typeof UpdateCommand>[0], 'TableName'>,
  ): Promise<boolean> {
    try {
      await this.client.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  // ---- notifications ----

  async putNotification(
    notification: NotificationRecord,
    key?: string,
  ): Promise<{ notification: NotificationRecord; duplicate: boolean }> {
    const { record, duplicate } = await this.putWithKey(notification, key, {
      keyItem: notifyKeyItem,
      ofKey: (used) => notificationOfKey(used, notification.sub, notification.body),
      item: notificationItem,
      read: toNotification,
    });
    return { notification: record, duplicate };
  }

  /**
   * Stores a record under an idempotency key (see {@link Store.putNotification}): the key first, so of two
   * calls with the same key the one whose key write wins stores its record, and a repeat gets the first one.
   */
  private async putWithKey<R>(
    record: R,
    key: string | undefined,
    kind: {
      keyItem: (r: R, key: string) => Item;
      ofKey: (used: Item) => R;
      item: (r: R) => Item;
      read: (i: Item) => R;
    },
  ): Promise<{ record: R; duplicate: boolean }> {
    if (key !== undefined) {
      const used = await this.putUnlessLive(kind.keyItem(record, key));
      if (used !== undefined) {
        const first = kind.ofKey(used);
        const stored = await this.get(primaryKey(kind.item(first)));
        if (stored !== undefined) return { record: kind.read(stored), duplicate: true };
        // The key's record is missing though both expire together: the call that used the key died between
        // its two writes (or is between them right now). Finish its job, with this call's body.
        return { record: await this.putOnce(first, kind), duplicate: true };
      }
    }
    return { record: await this.putOnce(record, kind), duplicate: false };
  }

  /** Puts a record unless it is stored already (a retry, or a racing call finishing the same key); returns it
   * as stored. Conditional, so a retry cannot, for example, mark a notification read since unread again. */
  private async putOnce<R>(record: R, kind: { item: (r: R) => Item; read: (i: Item) => R }): Promise<R> {
    const stored = await this.putUnlessLive(kind.item(record));
    return stored === undefined ? record : kind.read(stored);
  }

  async listNotifications(
    sub: string,
    query: { before?: string; limit: number; unreadOnly: boolean },
  ): Promise<{ notifications: NotificationRecord[]; next?: { before: string } }> {
    const limit = Math.floor(query.limit);
    if (!(limit > 0)) return { notifications: [] };
    // Unread ones from the sparse index (only they carry its keys), all from the inbox partition.
    const unread = keys.unreadPrefix(sub);
    const inbox = keys.inboxPrefix(sub);
    const at = query.unreadOnly
      ? { partition: unread.gsi1pk, prefix: unread.gsi1skPrefix, pk: GSI1.partitionKey, sk: GSI1.sortKey }
      : { partition: inbox.pk, prefix: inbox.skPrefix, pk: TABLE.partitionKey, sk: TABLE.sortKey };
    // `before` is exclusive, DynamoDB's BETWEEN inclusive: the cursor's own item is skipped below.
    const beforeSk = query.before === undefined ? undefined : `${at.prefix}${query.before}`;
    const items = await this.queryLive(
      {
        TableName: this.tableName,
        ...(query.unreadOnly ? { IndexName: GSI1.name } : { ConsistentRead: true }),
        KeyConditionExpression:
          beforeSk === undefined
            ? '#k = :pk AND begins_with(#s, :prefix)'
            : '#k = :pk AND #s BETWEEN :prefix AND :before',
        ExpressionAttributeNames: { '#k': at.pk, '#s': at.sk },
        ExpressionAttributeValues: {
          ':pk': at.partition,
          ':prefix': at.prefix,
          ...(beforeSk === undefined ? {} : { ':before': beforeSk }),
        },
        ScanIndexForward: false,
      },
      limit + 1,
      // An index read may lag a markRead by a moment; the item's own `read` does not.
      (item) => item.type === 'notification' && item[at.sk] !== beforeSk && !(query.unreadOnly && item.read === true),
    );
    const notifications = items.slice(0, limit).map(toNotification);
    const last = notifications[notifications.length - 1];
    return items.length > limit && last !== undefined
      ? { notifications, next: { before: last.id } }
      : { notifications };
  }

  async countUnread(sub: string): Promise<number> {
    const prefix = keys.unreadPrefix(sub);
    let count = 0;
    let startKey: Item | undefined;
    do {
      const { Count, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: GSI1.name,
          KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
          // Expired notifications TTL has not deleted yet are still in the index.
          FilterExpression: 'attribute_not_exists(#ttl) OR #ttl > :now',
          ExpressionAttributeNames: { '#gpk': NAMES['#gpk'], '#gsk': NAMES['#gsk'], '#ttl': TTL },
          ExpressionAttributeValues: {
            ':gpk': prefix.gsi1pk,
            ':prefix': prefix.gsi1skPrefix,
            ':now': this.nowSeconds(),
          },
          Select: 'COUNT',
          ...(this.pageSize === undefined ? {} : { Limit: this.pageSize }),
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      count += Count ?? 0;
      startKey = LastEvaluatedKey;
    } while (startKey !== undefined);
    return count;
  }

  async markNotificationsRead(sub: string, ids: readonly string[]): Promise<number> {
    return this.markRead(sub, [...new Set(ids)]);
  }

  async markAllNotificationsRead(sub: string): Promise<number> {
    // Read every page before the first update: each update takes its item out of the index being read. The
    // index is eventually consistent: a notification stored an instant ago may stay unread.
    const prefix = keys.unreadPrefix(sub);
    const unread = (await this.queryIndex(prefix.gsi1pk, prefix.gsi1skPrefix)).filter(
      (item) => this.isLive(item) && item.type === 'notification',
    );
    return this.markRead(
      sub,
      unread.map((item) => str(item, 'id')),
    );
  }

  /** Marks notifications read, a few at a time; returns how many were unread (and live) and are read now. */
  private async markRead(sub: string, ids: readonly string[]): Promise<number> {
    const settled = await mapWithConcurrency(ids, UPDATE_CONCURRENCY, (id) =>
      this.conditionalUpdate({
        Key: keys.notification(sub, id),
        // Leaving the sparse index is what makes it read for countUnread and unreadOnly.
        UpdateExpression: 'SET #read = :true REMOVE #gpk, #gsk',
        // False for an unknown id (no item is created), an already read or an expired notification.
        ConditionExpression: '#read = :false AND #ttl > :now',
        ExpressionAttributeNames: { '#read': 'read', '#gpk': NAMES['#gpk'], '#gsk': NAMES['#gsk'], '#ttl': TTL },
        ExpressionAttributeValues: { ':true': true, ':false': false, ':now': this.nowSeconds() },
      }),
    );
    let changed = 0;
    for (const outcome of settled) {
      if (outcome.status === 'rejected') throw outcome.reason;
      if (outcome.value) changed += 1;
    }
    return changed;
  }

  // ---- announcements ----

  async putAnnouncement(
    announcement: AnnouncementRecord,
    key?: string,
  ): Promise<{ announcement: AnnouncementRecord; duplicate: boolean }> {
    const { record, duplicate } = await this.putWithKey(announcement, key, {
      keyItem: announceKeyItem,
      ofKey: (used) => announcementOfKey(used, announcement),
      item: announcementItem,
      read: toAnnouncement,
    });
    return { announcement: record, duplicate };
  }

  async listAnnouncements(
    audiences: readonly string[],
    query: { since?: number; after?: string; limit: number },
  ): Promise<{ announcements: AnnouncementRecord[]; next?: { after: string } }> {
    const limit = Math.floor(query.limit);
    if (!(limit > 0)) return { announcements: [] };
    // Ids sort by time (`timeId`), so `ts >= since` is `sk >= A#{the id prefix of since}`. Sort keys do not
    // depend on the audience, so the bounds are built once.
    const skOf = (id: string) => keys.announcement(AUDIENCE_ALL, id).sk;
    const since = query.since === undefined ? undefined : skOf(timeId('a', Math.max(0, Math.ceil(query.since)), ''));
    const after = query.after === undefined ? undefined : skOf(query.after);
    // With both, the later bound; `after` is exclusive, `since` inclusive. An announcement partition holds
    // nothing but `A#` items, so a lower bound alone stays inside them.
    let condition = '#pk = :pk AND begins_with(#sk, :from)';
    let from: string = keys.announcementsPrefix(AUDIENCE_ALL).skPrefix;
    if (after !== undefined && (since === undefined || after >= since)) {
      condition = '#pk = :pk AND #sk > :from';
      from = after;
    } else if (since !== undefined) {
      condition = '#pk = :pk AND #sk >= :from';
      from = since;
    }
    // Each audience gives up to limit + 1: if the merge has more than limit, more follow.
    const perAudience = await Promise.all(
      [...new Set(audiences)].map((audience) =>
        this.queryLive(
          {
            TableName: this.tableName,
            KeyConditionExpression: condition,
            ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
            ExpressionAttributeValues: { ':pk': keys.announcementsPrefix(audience).pk, ':from': from },
            ConsistentRead: true,
          },
          limit + 1,
          (item) => item.type === 'announcement',
        ),
      ),
    );
    const merged = perAudience
      .flat()
      .map(toAnnouncement)
      .sort((a, b) => compare(a.id, b.id) || compare(a.audience, b.audience));
    const announcements = merged.slice(0, limit);
    const last = announcements[announcements.length - 1];
    return merged.length > limit && last !== undefined
      ? { announcements, next: { after: last.id } }
      : { announcements };
  }

  async listAudienceShard(audience: string, shard: number): Promise<DeliveryTarget[]> {
    if (!Number.isInteger(shard) || shard < 0 || shard >= AUDIENCE_SHARDS) {
      throw new RangeError(`Audience shard ${shard} is not in 0..${AUDIENCE_SHARDS - 1}.`);
    }
    const prefix = keys.audiencePrefix(audience, shard);
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
      ExpressionAttributeValues: { ':pk': prefix.pk, ':prefix': prefix.skPrefix },
      // A connection that has just connected gets the next announcement.
      ConsistentRead: true,
    });
    return items.filter((item) => this.isLive(item)).map(toDeliveryTarget);
  }

  async listExpiredConnections(shard: number, nowSeconds: number, limit: number): Promise<DeliveryTarget[]> {
    if (!Number.isInteger(shard) || shard < 0 || shard >= AUDIENCE_SHARDS) {
      throw new RangeError(`Audience shard ${shard} is not in 0..${AUDIENCE_SHARDS - 1}.`);
    }
    const range = keys.expiredTokensRange(shard, nowSeconds);
    const targets: DeliveryTarget[] = [];
    let startKey: Item | undefined;
    do {
      const { Items, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: GSI1.name,
          KeyConditionExpression: '#gpk = :gpk AND #gsk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#gpk': NAMES['#gpk'], '#gsk': NAMES['#gsk'] },
          ExpressionAttributeValues: { ':gpk': range.gsi1pk, ':from': range.from, ':to': range.to },
          Limit: Math.min(limit - targets.length, this.pageSize ?? limit),
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      // An entry past its TTL belongs to a connection API Gateway has cut already (2 hours); TTL removes it.
      targets.push(...(Items ?? []).filter((item) => this.isLive(item)).map(toDeliveryTarget));
      startKey = LastEvaluatedKey;
    } while (startKey !== undefined && targets.length < limit);
    return targets.slice(0, limit);
  }

  // ---- fan-out batches ----

  async claimBatch(batchId: string, now: number): Promise<BatchClaim> {
    const key = keys.fanoutBatch(batchId);
    for (let attempt = 1; ; attempt++) {
      const existing = await this.putUnlessLive({
        ...key,
        type: 'fanout-batch',
        batchId,
        state: 'running',
        claimedAt: now,
        doneCount: 0,
        [TTL]: Math.floor(now / 1000) + BATCH_RETENTION_SECONDS,
      });
      if (existing === undefined) return { claimed: true, doneCount: 0 };
      if (existing.state === 'done') return { claimed: false, state: 'done' };
      const claimedAt = num(existing, 'claimedAt');
      if (claimedAt > now - LIMITS.fanoutClaimStaleMs) return { claimed: false, state: 'running' };
      // Stale: its worker died. Of several takeovers exactly one still sees the claim it read.
      try {
        const { Attributes } = await this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: key,
            UpdateExpression: 'SET claimedAt = :now, #ttl = :ttl',
            ConditionExpression: '#state = :running AND claimedAt = :seen',
            ExpressionAttributeNames: { '#state': 'state', '#ttl': TTL },
            ExpressionAttributeValues: {
              ':now': now,
              ':ttl': Math.floor(now / 1000) + BATCH_RETENTION_SECONDS,
              ':running': 'running',
              ':seen': claimedAt,
            },
            // The checkpoint as of the takeover: the stale worker may have moved it since it was read.
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { claimed: true, doneCount: num(Attributes ?? {}, 'doneCount') };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        // Taken over or finished meanwhile: read it again.
        if (attempt >= CLAIM_ATTEMPTS) return { claimed: false, state: 'running' };
      }
    }
  }

  async checkpointBatch(batchId: string, doneCount: number): Promise<void> {
    // Only forward, and only while running: a stale worker that is slow rather than dead may checkpoint
    // after a takeover, and every target below the highest checkpoint was delivered by someone.
    await this.conditionalUpdate({
      Key: keys.fanoutBatch(batchId),
      UpdateExpression: 'SET doneCount = :n',
      ConditionExpression: '#state = :running AND doneCount < :n',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':n': doneCount, ':running': 'running' },
    });
  }

  async releaseBatch(batchId: string, doneCount: number): Promise<void> {
    // claimedAt 0 is older than any stale bound: the next claim takes the batch over with its checkpoint. The
    // checkpoint only moves forward, as in checkpointBatch; a checkpoint past ours means another worker took the
    // batch over, and its claim is not ours to release.
    await this.conditionalUpdate({
      Key: keys.fanoutBatch(batchId),
      UpdateExpression: 'SET claimedAt = :zero, doneCount = :n',
      ConditionExpression: '#state = :running AND doneCount <= :n',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':zero': 0, ':running': 'running', ':n': doneCount },
    });
  }

  async completeBatch(batchId: string, now: number): Promise<void> {
    // Unconditional: a done mark is what a late duplicate of the batch must find, claimed before or not.
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.fanoutBatch(batchId),
        UpdateExpression: 'SET #type = :type, batchId = :id, #state = :done, #ttl = :ttl',
        ExpressionAttributeNames: { '#type': 'type', '#state': 'state', '#ttl': TTL },
        ExpressionAttributeValues: {
          ':type': 'fanout-batch',
          ':id': batchId,
          ':done': 'done',
          ':ttl': Math.floor(now / 1000) + BATCH_RETENTION_SECONDS,
        },
      }),
    );
  }

  // ---- messages ----

  async nextSeq(room: string): Promise<number> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.room(room),
          UpdateExpression: 'ADD lastSeq :one',
          // Without it ADD would create a bare counter item for a room that was never created.
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': NAMES['#pk'] },
          ExpressionAttributeValues: { ':one': 1 },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return num(Attributes ?? {}, 'lastSeq');
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new RoomNotFoundError(room, { cause: error });
      throw error;
    }
  }

  async putMessage(message: StoredMessage): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...keys.message(message.room, message.seq),
            type: 'message',
            id: message.id,
            room: message.room,
            from: message.from,
            seq: message.seq,
            ts: message.ts,
            // As a JSON string: DynamoDB's numbers cannot hold every JSON number (1e300) and its maps reject
            // some keys JSON allows (""), so the body round-trips exactly only as text.
            body: JSON.stringify(message.body),
            ref: message.ref,
            [TTL]: Math.floor(message.ts / 1000) + LIMITS.messageRetentionSeconds,
          },
          // The same id may be put again (a retry that took over a reserved claim); another id may not.
          ConditionExpression: 'attribute_not_exists(#pk) OR #id = :id',
          ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#id': 'id' },
          ExpressionAttributeValues: { ':id': message.id },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new MessageExistsError(message.room, message.seq, { cause: error });
      throw error;
    }
  }

  async abandonSeq(room: string, seq: number): Promise<StoredMessage | undefined> {
    const key = keys.message(room, seq);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          // A tombstone: listMessages skips it, and no late write can fill the seq any more.
          Item: {
            ...key,
            type: 'gap',
            room,
            seq,
            [TTL]: Math.floor(this.clock() / 1000) + LIMITS.messageRetentionSeconds,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': NAMES['#pk'] },
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const existing = await this.get(key);
      return existing !== undefined && existing.type === 'message' ? toMessage(existing) : undefined;
    }
  }

  async listMessages(room: string, query: { after?: number; before?: number; limit: number }): Promise<MessagePage> {
    const limit = Math.floor(query.limit);
    if (!(limit > 0)) return { messages: [] };
    const { pk } = keys.message(room, 0);
    const forward = query.after !== undefined;
    const input: QueryCommandInput = {
      TableName: this.tableName,
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
      ScanIndexForward: forward,
      ConsistentRead: true,
    };
    // Every condition stays inside the SEQ# range, so the DEDUPE# items of the same partition never match.
    if (query.after !== undefined) {
      const from = Math.max(0, Math.floor(query.after)) + 1;
      if (from > Number.MAX_SAFE_INTEGER) return { messages: [] };
      input.KeyConditionExpression = '#pk = :pk AND #sk BETWEEN :from AND :to';
      input.ExpressionAttributeValues = {
        ':pk': pk,
        ':from': keys.message(room, from).sk,
        ':to': keys.message(room, Number.MAX_SAFE_INTEGER).sk,
      };
    } else if (query.before !== undefined) {
      const to = Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(query.before) - 1);
      // Seqs start at 1: nothing lies before 1.
      if (to < 1) return { messages: [] };
      input.KeyConditionExpression = '#pk = :pk AND #sk BETWEEN :from AND :to';
      input.ExpressionAttributeValues = {
        ':pk': pk,
        ':from': keys.message(room, 0).sk,
        ':to': keys.message(room, to).sk,
      };
    } else {
      const prefix = keys.messagesPrefix(room);
      input.KeyConditionExpression = '#pk = :pk AND begins_with(#sk, :prefix)';
      input.ExpressionAttributeValues = { ':pk': prefix.pk, ':prefix': prefix.skPrefix };
    }

    const items: Item[] = [];
    let more = false;
    let startKey: Item | undefined;
    do {
      const remaining = limit - items.length;
      const { Items, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          ...input,
          Limit: this.pageSize === undefined ? remaining : Math.min(this.pageSize, remaining),
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      for (const item of Items ?? []) if (this.isLive(item) && item.type === 'message') items.push(item);
      startKey = LastEvaluatedKey;
      more = startKey !== undefined;
    } while (more && items.length < limit);

    const messages = items.map(toMessage);
    if (!forward) messages.reverse();
    const page: MessagePage = { messages };
    const first = messages[0];
    const last = messages[messages.length - 1];
    if ((more || messages.length >= limit) && first !== undefined && last !== undefined) {
      page.next = forward ? { after: last.seq } : { before: first.seq };
    }
    return page;
  }

  // ---- helpers ----

  private nowSeconds(): number {
    return this.clock() / 1000;
  }

  /** Whether TTL has not yet passed for the item; items without TTL never expire. */
  private isLive(item: Item): boolean {
    const ttl = item[TTL];
    return typeof ttl !== 'number' || ttl > this.nowSeconds();
  }

  private async put(item: Item): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: item }));
  }

  /** A consistent read: most reads follow a write of the same request or of the previous one. */
  private async get(key: Record<string, string>): Promise<Item | undefined> {
    const { Item: item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return item !== undefined && this.isLive(item) ? item : undefined;
  }

  /** Every item of a gsi1 partition whose sort key starts with `prefix`. Index reads are eventually
   * consistent on AWS (GSIs offer nothing else). */
  private queryIndex(partition: string, prefix: string): Promise<Item[]> {
    return this.queryAll({
      TableName: this.tableName,
      IndexName: GSI1.name,
      KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
      ExpressionAttributeNames: { '#gpk': NAMES['#gpk'], '#gsk': NAMES['#gsk'] },
      ExpressionAttributeValues: { ':gpk': partition, ':prefix': prefix },
    });
  }

  /**
   * Puts `item` unless a live item is stored at its key (the expired one TTL has not deleted yet gives way).
   * Returns undefined when written, else the stored item.
   */
  private async putUnlessLive(item: Item): Promise<Item | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(#pk) OR #ttl <= :now',
            ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#ttl': TTL },
            ExpressionAttributeValues: { ':now': this.nowSeconds() },
          }),
        );
        return undefined;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        const existing = await this.get(primaryKey(item));
        if (existing !== undefined) return existing;
        // It expired between our write and our read: write again.
        if (attempt >= CLAIM_ATTEMPTS) throw new Error(`Could not write ${describeItem(item)}.`, { cause: error });
      }
    }
  }

  /**
   * Runs a Query page by page until `want` live items pass `accept` or the Query ends; returns at most
   * `want`. Each page asks for no more than are still wanted, so a short page costs no extra read.
   */
  private async queryLive(input: QueryCommandInput, want: number, accept: (item: Item) => boolean): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const remaining = want - items.length;
      const { Items, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          ...input,
          Limit: this.pageSize === undefined ? remaining : Math.min(this.pageSize, remaining),
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      for (const item of Items ?? []) {
        if (items.length < want && this.isLive(item) && accept(item)) items.push(item);
      }
      startKey = LastEvaluatedKey;
    } while (startKey !== undefined && items.length < want);
    return items;
  }

  /** Runs a Query to its last page. Expired items are included; callers filter. */
  private async queryAll(input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const { Items, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          ...input,
          ...(this.pageSize === undefined ? {} : { Limit: this.pageSize }),
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      items.push(...(Items ?? []));
      startKey = LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }
}

/** Options of {@link createDynamoDbStore}. */
export interface CreateDynamoDbStoreOptions {
  tableName: string;
  region: string;
  /** An emulator's URL (`http://127.0.0.1:8000`); AWS's regional endpoint when absent. */
  endpoint?: string;
  /** Static credentials (the emulator's dummy ones); the SDK's default provider chain when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** @default systemClock */
  clock?: Clock;
}

/**
 * Builds a {@link DynamoDbStore} with its own SDK client.
 *
 * @example
 * const store = createDynamoDbStore({ tableName: 'viba', region: 'us-east-1', endpoint: 'http://127.0.0.1:8000',
 *   credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
 */
export function createDynamoDbStore(options: CreateDynamoDbStoreOptions): DynamoDbStore {
  const client = new DynamoDBClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
  });
  const documentClient = DynamoDBDocumentClient.from(client, {
    // Optional record fields (a dedupe record's seq) are `undefined` in JS; DynamoDB has no such value.
    marshallOptions: { removeUndefinedValues: true },
  });
  return new DynamoDbStore({
    client: documentClient,
    tableName: options.tableName,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}

/** The store a handler uses, from its configuration (see `loadConfig`). */
export function createStoreFromConfig(
  config: Pick<HandlerConfig, 'tableName' | 'region' | 'dynamodbEndpoint' | 'credentials'>,
  clock: Clock,
): DynamoDbStore {
  return createDynamoDbStore({
    tableName: config.tableName,
    region: config.region,
    ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    clock,
  });
}

/** Code-unit order, which equals DynamoDB's byte order for the ASCII ids we write. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeItem(item: Item): string {
  return `${String(item.type)} ${String(item[TABLE.partitionKey])}/${String(item[TABLE.sortKey])}`;
}
