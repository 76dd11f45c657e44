/**
 * The emulator's DynamoDB: dynalite (the DynamoDB API in pure JS) on a local port, with our table created
 * through the real SDK and a TTL sweeper, because dynalite never expires items the way AWS does. With fault
 * injection, requests pass a fault hook first, which may answer them as DynamoDB fails (see {@link answerFault}).
 */
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { type AttributeValue, DeleteItemCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { type Clock, ensureTable, systemClock } from '@viba-realtime/lambdas';
import { TABLE } from '@viba-realtime/protocol';
import dynalite from 'dynalite';
import { describeDynamoDbRequest } from '../faults/dynamodb-request.js';
import type { FaultHook } from '../faults/injector.js';
import type { DynamoDbFault } from '../faults/rules.js';
import { isLoopbackUrl } from '../loopback.js';
import { closeDynaliteIterators } from './dynalite-iterators.js';

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
  /** Fault injection: asked about every request while it has active rules. @default none */
  faults?: FaultHook<'dynamodb'>;
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
  // Else every Query and Scan leaks an open iterator (see ./dynalite-iterators.ts).
  closeDynaliteIterators();
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.dataDir === undefined ? {} : { path: options.dataDir }),
  });
  if (options.faults !== undefined) interceptFaults(server, options.faults);
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

/** DynamoDB's own texts (its developer guide's error examples) for the faults it can answer. */
const FAULT_ANSWERS = {
  throttle: {
    status: 400,
    type: 'ProvisionedThroughputExceededException',
    message:
      'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  },
  'server-error': { status: 500, type: 'InternalServerError', message: 'Internal server error' },
} as const;

/**
 * Puts the fault hook in front of dynalite's request handler. While the hook has no active rule a request goes
 * straight through; otherwise its body is read to describe it, and it is either failed or handed on to dynalite
 * as a stream replaying the same bytes.
 */
function interceptFaults(server: Server, hook: FaultHook<'dynamodb'>): void {
  const [serve] = server.listeners('request') as RequestListener[];
  if (serve === undefined) throw new Error('dynalite registered no request handler');
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!hook.armed()) {
      serve(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.slice(target.indexOf('.') + 1);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        // dynalite answers it with its SerializationException.
      }
      const fault = hook.decide(describeDynamoDbRequest(operation, parsed));
      if (fault !== undefined) {
        answerFault(res, fault);
        return;
      }
      const replay = Object.assign(new PassThrough(), { headers: req.headers, method: req.method, url: req.url });
      serve(replay as unknown as IncomingMessage, res);
      replay.end(body);
    });
  });
}

/**
 * Answers as DynamoDB fails: `throttle` is 400 `ProvisionedThroughputExceededException` and `server-error` 500
 * `InternalServerError`, in the AWS JSON 1.0 error shape (`__type` with the service's namespace, `message`), which
 * the SDK retries (3 attempts, throttling with a longer backoff) before the caller sees it. `timeout` answers
 * nothing: the caller waits, as on a request DynamoDB never answers, until it gives up or the emulator closes.
 */
function answerFault(res: ServerResponse, fault: DynamoDbFault): void {
  if (fault === 'timeout') return;
  const answer = FAULT_ANSWERS[fault];
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${answer.type}`, message: answer.message });
  res.writeHead(answer.status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomRequestId(),
  });
  res.end(body);
}

/** 52 characters like DynamoDB's request ids. */
function randomRequestId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let id = '';
  for (let i = 0; i < 52; i++) id += alphabet[Math.floor(Math.random() * alphabet.length)];
  return id;
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
