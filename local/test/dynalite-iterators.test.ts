/**
 * The emulator's DynamoDB closes the level iterator of every Query and Scan (see src/dynamodb/dynalite-iterators.ts):
 * without the fix none was ever closed, and the emulator's heap grew with every read.
 */
import { createRequire } from 'node:module';
import { DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, type LocalDynamoDb, startLocalDynamoDb } from '../src/dynamodb/server.js';

let db: LocalDynamoDb;
let client: DynamoDBClient;
let closes = 0;

beforeAll(async () => {
  db = await startLocalDynamoDb({ tableName: 'iterators', sweepIntervalMs: 3_600_000 });
  client = new DynamoDBClient({ endpoint: db.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  // Count closes on dynalite's own copy of abstract-level, the one whose iterators it creates.
  const level = createRequire(createRequire(import.meta.url).resolve('dynalite'))('abstract-level') as {
    AbstractKeyIterator: { prototype: object };
  };
  // The base class every level iterator (plain, key, value) inherits close() from.
  const common = Object.getPrototypeOf(level.AbstractKeyIterator.prototype) as { close(): Promise<void> };
  const close = common.close;
  common.close = function (this: unknown) {
    closes++;
    return close.call(this);
  };
});

afterAll(async () => {
  client.destroy();
  await db.close();
});

it('closes the iterator of every Query and Scan, read to the end or cut short by a limit', async () => {
  for (let i = 0; i < 10; i++) {
    await client.send(new PutItemCommand({ TableName: 'iterators', Item: { pk: { S: 'p' }, sk: { S: `s${i}` } } }));
  }
  const before = closes;
  const reads = 20;
  for (let i = 0; i < reads / 2; i++) {
    await client.send(
      new QueryCommand({
        TableName: 'iterators',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'p' } },
        ...(i % 2 === 0 ? { Limit: 3 } : {}),
      }),
    );
    await client.send(new ScanCommand({ TableName: 'iterators', ...(i % 2 === 0 ? { Limit: 3 } : {}) }));
  }
  // Closing is asynchronous (the stream's destroy); the last read's may still be under way.
  await expect.poll(() => closes - before).toBeGreaterThanOrEqual(reads);
});
