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
import { type JsonObject, keys, LIMITS, type RoomVisibility, TABLE } from '@viba-realtime/protocol';
import type { HandlerConfig } from '../config.js';
import {
  type Channel,
  type ClaimResult,
  type Clock,
  type ConnectionLifecycle,
  type ConnectionRecord,
  type DedupeRecord,
  type MessagePage,
  type RoomRecord,
  type Store,
  type StoredMessage,
  type SubscriptionRecord,
  systemClock,
} from '../core/ports.js';
import { batchDelete } from './batch.js';
import { isConditionalCheckFailed, MessageExistsError, RoomNotFoundError } from './errors.js';

export {
  MessageExistsError,
  RoomNotFoundError,
  StoreError,
  type StoreErrorCode,
  UnprocessedItemsError,
} from './errors.js';
// Re-exported so the package entry point offers the table definition to the emulator and the CDK stack.
export { createTableInput, ensureTable } from './table-definition.js';

type Item = Record<string, unknown>;

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
    if (connection.lifecycle === undefined) {
      await this.put(item);
      return true;
    }
    return this.putIfNewer(item, connection.lifecycle.versionNumber, 'newer');
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
  ): Promise<string[] | undefined> {
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
    const rooms = await this.deleteSubscriptionsOf(connectionId, (item) => !later(item));
    const pending = (await this.connectionSubscriptions(connectionId)).filter(later);
    for (const item of pending) await this.setSubscriptionsExpiry(connectionId, pendingExpiresAt, str(item, 'room'));
    return rooms;
  }

  /** Deletes the subscriptions of a connection (those `which` selects); returns the rooms of the live ones. */
  private async deleteSubscriptionsOf(connectionId: string, which: (item: Item) => boolean = () => true) {
    const subscriptions = (await this.connectionSubscriptions(connectionId)).filter(which);
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
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: keys.connection(connectionId) }));
    return rooms;
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

// ---- item -> record ----

function str(item: Item, name: string): string {
  const value = item[name];
  if (typeof value !== 'string') throw new Error(`Stored item ${describeKey(item)} has no string "${name}".`);
  return value;
}

function num(item: Item, name: string): number {
  const value = item[name];
  if (typeof value !== 'number') throw new Error(`Stored item ${describeKey(item)} has no number "${name}".`);
  return value;
}

function describeKey(item: Item): string {
  return `${String(item[TABLE.partitionKey])}/${String(item[TABLE.sortKey])}`;
}

function primaryKey(item: Item): Record<string, string> {
  return { [TABLE.partitionKey]: str(item, TABLE.partitionKey), [TABLE.sortKey]: str(item, TABLE.sortKey) };
}

function toConnection(item: Item): ConnectionRecord {
  const groups = item.groups;
  return {
    connectionId: str(item, 'connectionId'),
    sub: str(item, 'sub'),
    username: str(item, 'username'),
    groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
    channel: str(item, 'channel') as Channel,
    connectedAt: num(item, 'connectedAt'),
    tokenExp: num(item, 'tokenExp'),
    expiresAt: num(item, TTL),
    ...(typeof item.lifecycleVersion === 'number'
      ? { lifecycle: { versionNumber: item.lifecycleVersion, timestamp: num(item, 'lifecycleTs') } }
      : {}),
  };
}

function toRoom(item: Item): RoomRecord {
  return {
    room: str(item, 'room'),
    visibility: str(item, 'visibility') as RoomVisibility,
    owner: str(item, 'owner'),
    createdAt: num(item, 'createdAt'),
    lastSeq: num(item, 'lastSeq'),
  };
}

function toDedupe(item: Item): DedupeRecord {
  const record: DedupeRecord = { messageId: str(item, 'messageId'), claimedAt: num(item, 'claimedAt') };
  if (typeof item.seq === 'number') record.seq = item.seq;
  if (typeof item.ts === 'number') record.ts = item.ts;
  if (item.stored === true) record.stored = true;
  return record;
}

function toMessage(item: Item): StoredMessage {
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
