import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { type ConnectionRecord, createDynamoDbStore, type DynamoDbStore } from '@viba-realtime/lambdas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDynamoDb, LOCAL_CREDENTIALS, type LocalDynamoDb, startLocalDynamoDb } from '../src/dynamodb/server.js';

const T0 = Date.UTC(2030, 0, 1);
const SECONDS = Math.floor(T0 / 1000);

function storeFor(db: LocalDynamoDb, clock?: () => number): DynamoDbStore {
  return createDynamoDbStore({
    tableName: db.tableName,
    region: 'us-east-1',
    endpoint: db.endpoint,
    credentials: LOCAL_CREDENTIALS,
    ...(clock === undefined ? {} : { clock }),
  });
}

function rawClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
}

function connection(connectionId: string, expiresAt: number): ConnectionRecord {
  return {
    connectionId,
    sub: 'u',
    username: 'u',
    groups: [],
    channel: 'ws',
    connectedAt: T0,
    tokenExp: expiresAt,
    expiresAt,
  };
}

describe('startLocalDynamoDb', () => {
  let now = T0;
  let db: LocalDynamoDb;
  let store: DynamoDbStore;

  beforeAll(async () => {
    // A long interval: these tests call sweepExpired() themselves.
    db = await startLocalDynamoDb({ tableName: 'sweep', clock: () => now, sweepIntervalMs: 600_000 });
    store = storeFor(db, () => now);
  });

  afterAll(async () => {
    store?.destroy();
    await db?.close();
  });

  it('listens on an ephemeral loopback port and creates the table with its index', async () => {
    expect(db.port).toBeGreaterThan(0);
    expect(db.endpoint).toBe(`http://127.0.0.1:${db.port}`);
    const client = rawClient(db.endpoint);
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: 'sweep' }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual(['gsi1']);
    } finally {
      client.destroy();
    }
  });

  it('sweepExpired deletes exactly the items whose ttl has passed', async () => {
    await store.putConnection(connection('short', SECONDS + 60));
    await store.subscribe({ room: 'r', connectionId: 'short', sub: 'u' }, SECONDS + 60);
    await store.subscribe({ room: 'r', connectionId: 'long', sub: 'u' }, SECONDS + 3600);
    await store.createRoom({ room: 'r', visibility: 'public', owner: 'u', createdAt: T0 });

    expect(await db.sweepExpired()).toBe(0);
    now = (SECONDS + 60) * 1000;
    // The connection, its announcement audience entry, its subscription.
    expect(await db.sweepExpired()).toBe(3);
    expect(await db.sweepExpired()).toBe(0);

    // Move the clock back: what the sweep deleted is gone from the table, not merely filtered on read.
    now = T0;
    expect(await store.getConnection('short')).toBeUndefined();
    expect(await store.isSubscribed('r', 'short')).toBe(false);
    expect(await store.isSubscribed('r', 'long')).toBe(true);
    expect(await store.getRoom('r')).toBeDefined();
    expect(await store.isMember('r', 'u')).toBe(true);
  });

  it('concurrent sweeps share one pass', async () => {
    now = T0;
    for (let i = 0; i < 5; i++) await store.putConnection(connection(`batch-${i}`, SECONDS + 10));
    now = (SECONDS + 10) * 1000;
    const [a, b] = await Promise.all([db.sweepExpired(), db.sweepExpired()]);
    // Five connections and their five audience entries.
    expect(a).toBe(10);
    expect(b).toBe(10);
    now = T0;
    expect(await store.getConnection('batch-0')).toBeUndefined();
  });

  it('connectDynamoDb ensures a table on an existing endpoint, idempotently', async () => {
    await connectDynamoDb(db.endpoint, 'external');
    await connectDynamoDb(db.endpoint, 'external');
    const client = rawClient(db.endpoint);
    try {
      expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual(['external', 'sweep']);
    } finally {
      client.destroy();
    }
  });
});

describe('startLocalDynamoDb background sweeper', () => {
  it('deletes expired items on its own timer and stops on close', async () => {
    const db = await startLocalDynamoDb({ tableName: 'timer', clock: () => T0, sweepIntervalMs: 20 });
    const store = storeFor(db, () => T0 - 60_000);
    try {
      await store.putConnection(connection('expired', SECONDS));
      // The store's clock is a minute behind, so it still sees the item until the sweeper deletes it.
      await expect.poll(() => store.getConnection('expired'), { timeout: 5_000, interval: 20 }).toBeUndefined();
    } finally {
      store.destroy();
      await db.close();
    }
    const client = rawClient(db.endpoint);
    try {
      await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();
    } finally {
      client.destroy();
    }
  });
});

describe('startLocalDynamoDb with dataDir', () => {
  it('persists data across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'viba-dynalite-'));
    try {
      const first = await startLocalDynamoDb({ tableName: 'persisted', dataDir });
      const writer = storeFor(first);
      await writer.createRoom({ room: 'kept', visibility: 'private', owner: 'o', createdAt: T0 });
      writer.destroy();
      await first.close();

      const second = await startLocalDynamoDb({ tableName: 'persisted', dataDir });
      const reader = storeFor(second);
      try {
        expect((await reader.getRoom('kept'))?.visibility).toBe('private');
      } finally {
        reader.destroy();
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
