/**
 * The emulator's DynamoDB: dynalite (the DynamoDB API in pure JS) on a local port, with our table created
 * through the real SDK and a TTL sweeper, because dynalite never expires items the way AWS does.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AttributeValue, DeleteItemCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { type Clock, ensureTable, systemClock } from '@viba-realtime/lambdas';
import { TABLE } from '@viba-realtime/protocol';
import dynalite from 'dynalite';
import { isLoopbackUrl } from '../loopback.js';

/** Region and dummy credentials for local endpoints: the SDK signs every request, emulators ignore it. */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Parallel conditional deletes per sweep page. */
const SWEEP_CONCURRENCY = 16;

/** Options of {@link startLocalDynamoDb}. */
export interface LocalDynamoDbOptions {
  /** The table to create (if missing). */
  tableName: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** A directory to persist the data in (dynalite's LevelDB `path`). @default undefined (in memory) */
  dataDir?: string;
  /** How often the TTL sweeper runs. @default 5000 */
  sweepIntervalMs?: number;
  /** Decides what has expired. @default systemClock */
  clock?: Clock;
}

/** A running local DynamoDB. */
export interface LocalDynamoDb {
  /** `http://host:port`, for the SDK's `endpoint`. */
  endpoint: string;
  port: number;
  tableName: string;
  /** Runs one TTL pass now; resolves to the number of items deleted. */
  sweepExpired(): Promise<number>;
  /** Stops the sweeper and the server. */
  close(): Promise<void>;
}

function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/**
 * Starts dynalite, creates the table and runs the TTL sweeper.
 *
 * @example
 * const db = await startLocalDynamoDb({ tableName: 'viba-realtime' });
 * const store = createDynamoDbStore({ tableName: db.tableName, region: 'us-east-1', endpoint: db.endpoint,
 *   credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
 * // ...
 * await db.close();
 */
export async function startLocalDynamoDb(options: LocalDynamoDbOptions): Promise<LocalDynamoDb> {
  const host = options.host ?? '127.0.0.1';
  const clock = options.clock ?? systemClock;
  const sweepIntervalMs = options.sweepIntervalMs ?? 5_000;
  if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });

  // Table state changes are instant: nothing local is worth waiting half a second for.
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.dataDir === undefined ? {} : { path: options.dataDir }),
  });
  await listen(server, options.port ?? 0, host);
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const client = localClient(endpoint);

  try {
    await ensureTable(client, options.tableName);
  } catch (error) {
    client.destroy();
    await closeServer(server);
    throw error;
  }

  let running: Promise<number> | undefined;
  let closed = false;
  const sweepExpired = (): Promise<number> => {
    // One pass at a time: a slow pass must not be overlapped by the timer's next one.
    running ??= sweep(client, options.tableName, clock).finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    // A failed background pass is retried by the next tick; sweepExpired() callers see their own errors.
    sweepExpired().catch(() => undefined);
  }, sweepIntervalMs);
  timer.unref();

  return {
    endpoint,
    port,
    tableName: options.tableName,
    sweepExpired,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      client.destroy();
      await closeServer(server);
    },
  };
}

/**
 * Ensures the table on an external DynamoDB endpoint (DynamoDB Local, or a real table), for the emulator's
 * `--dynamodb-endpoint`. Loopback endpoints get dummy credentials and `us-east-1`; others use the SDK's
 * default region and credential chain unless given.
 */
export async function connectDynamoDb(
  endpoint: string,
  tableName: string,
  options: {
    region?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  } = {},
): Promise<void> {
  const local = isLoopbackUrl(endpoint);
  const region = options.region ?? (local ? LOCAL_REGION : undefined);
  const credentials = options.credentials ?? (local ? LOCAL_CREDENTIALS : undefined);
  const client = new DynamoDBClient({
    endpoint,
    ...(region === undefined ? {} : { region }),
    ...(credentials === undefined ? {} : { credentials }),
  });
  try {
    await ensureTable(client, tableName);
  } finally {
    client.destroy();
  }
}

/** One TTL pass: scans for expired items and deletes each one that is still expired. */
async function sweep(client: DynamoDBClient, tableName: string, clock: Clock): Promise<number> {
  const names = { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey, '#ttl': TABLE.ttlAttribute };
  let deleted = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const now = { ':now': { N: String(clock() / 1000) } };
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: '#pk, #sk',
        FilterExpression: '#ttl <= :now',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: now,
        ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
      }),
    );
    const items = page.Items ?? [];
    for (let i = 0; i < items.length; i += SWEEP_CONCURRENCY) {
      const results = await Promise.all(
        items.slice(i, i + SWEEP_CONCURRENCY).map((key) => deleteIfExpired(client, tableName, key, now)),
      );
      deleted += results.filter(Boolean).length;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return deleted;
}

/** Conditional, so an item rewritten with a fresh TTL since the scan (a renewed claim) survives. */
async function deleteIfExpired(
  client: DynamoDBClient,
  tableName: string,
  key: Record<string, AttributeValue>,
  now: Record<string, AttributeValue>,
): Promise<boolean> {
  try {
    await client.send(
      new DeleteItemCommand({
        TableName: tableName,
        Key: key,
        ConditionExpression: '#ttl <= :now',
        ExpressionAttributeNames: { '#ttl': TABLE.ttlAttribute },
        ExpressionAttributeValues: now,
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive sockets of SDK clients (ours and the handlers') would hold close() open indefinitely.
    server.closeAllConnections();
  });
}
