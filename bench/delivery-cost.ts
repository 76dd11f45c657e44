/**
 * Delivery core cost (issue 7, item 2): what one chat message costs the routes Lambda.
 *
 * The real core `send` runs with the real `DynamoDbStore` (against the emulator's DynamoDB server) and the
 * real `ConnectionsDelivery` (against a fake `@connections` endpoint that answers 200 after a fixed
 * latency), so every figure goes through the real SDK code path:
 * - AWS calls per message by operation, counted by an SDK middleware (`lib/aws-call-counter.ts`);
 * - handler CPU ms per 1,000 deliveries (latency 0), next to a bare PostToConnection SDK loop of the same
 *   size (same client, same concurrency) measured in the same run;
 * - wall time of a fan-out when each post takes `latencyMs`, next to the naive design (Scan everything,
 *   one unbounded Promise.all), which exists only here.
 *
 * DynamoDB (dynalite) and the fake endpoint run in a child process, so `process.cpuUsage()` of this
 * process is the handler's CPU alone (SDK clients, core, JSON), not the servers'.
 *
 * Run: `npx tsx bench/delivery-cost.ts [--quick] [--rooms 10,100] [--wall 1000] [--messages 3] [--latency 20]
 * [--no-write]`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand, type ScanCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  type Caller,
  ConnectionsDelivery,
  type CoreDeps,
  createLogger,
  DynamoDbStore,
  mapWithConcurrency,
  type SubscriptionRecord,
  send,
  toChatFrame,
} from '@viba-realtime/lambdas';
import { type AckFrame, type ChatFrame, keys, LIMITS } from '@viba-realtime/protocol';
import { AwsCallCounter, type CallCounts } from './lib/aws-call-counter.js';
import {
  type BenchArgs,
  cpuStopwatch,
  intFlag,
  parseBenchArgs,
  percentiles,
  printTable,
  ratio,
  withDeadline,
  writeResult,
} from './lib/index.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
const TABLE_NAME = 'viba-bench-delivery';
/** Subscriptions written at once while a room is set up. */
const SETUP_CONCURRENCY = 32;
/** Every wait on the child process or a fan-out is bounded by this. */
const STEP_DEADLINE_MS = 300_000;
/** The what-if pool size shown next to the shipped one in the wall-time table. */
const WHAT_IF_CONCURRENCY = 64;
/** The warm-up room and rounds before anything is measured. */
const WARMUP_RECIPIENTS = 200;
const WARMUP_ROUNDS = 10;
const encoder = new TextEncoder();

export interface DeliveryCostOptions {
  /** Short run (rooms of 10 and 100). @default false */
  quick?: boolean;
  /** Recipients per room (the sender is one more subscription). @default [10, 100, 1000, 10000]; quick [10, 100] */
  rooms?: number[];
  /** Measured messages per room (after one warm-up message). @default 3 */
  messages?: number;
  /** Simulated `@connections` latency for the wall-time phase, ms. 0 still runs it. @default 20 */
  latencyMs?: number;
  /** Recipients of the wall-time fan-out. @default 1000; quick 100 */
  wallRecipients?: number;
  /** Fan-outs per design in the wall-time phase (median reported). @default 3 */
  wallRepeats?: number;
}

export interface RoomCost {
  recipients: number;
  messages: number;
  /** Per message, by `service:Operation` (the same for every measured message, else the max). */
  callsPerMessage: CallCounts;
  dynamodbCallsPerMessage: number;
  queryCallsPerMessage: number;
  postsPerMessage: number;
  /** Whether every measured message made the same DynamoDB calls. */
  dynamodbCallsStable: boolean;
  /** Handler CPU (this process: core + store + delivery + SDK) per 1,000 deliveries, median over messages. */
  handlerCpuMsPer1000: number;
  /** A bare PostToConnection loop of the same size and concurrency, per 1,000 posts, median. */
  bareLoopCpuMsPer1000: number;
  /** handler / bare; the target is at most 1.5. */
  cpuRatio: number;
  /** Recipient x message pairs the fake endpoint never saw. */
  lost: number;
  /** Extra posts beyond one per recipient and message (including any to the sender). */
  duplicated: number;
  /** Every recipient got each message (warm-up included) exactly once. */
  exactlyOnce: boolean;
}

export interface WallTime {
  recipients: number;
  latencyMs: number;
  /** Core `send` (all DynamoDB steps + bounded fan-out at LIMITS.deliveryConcurrency), median ms. */
  coreMs: number;
  /** Bench-only: the shipped store and delivery, but a pool of WHAT_IF_CONCURRENCY. Median ms. */
  whatIfMs: number;
  whatIfConcurrency: number;
  /** Bench-only naive design: PutItem + Scan of the table + one unbounded Promise.all. Median ms. */
  naiveMs: number;
  /** ceil(recipients / concurrency) x latency: the floor of the shipped pool. */
  coreFloorMs: number;
  naiveCallsPerMessage: CallCounts;
  naiveDynamodbCallsPerMessage: number;
  /** Posts the naive design made per message (it posts to the sender too). */
  naivePostsPerMessage: number;
}

export interface DeliveryCostResult {
  options: Required<Omit<DeliveryCostOptions, 'rooms'>> & { rooms: number[]; deliveryConcurrency: number };
  rooms: RoomCost[];
  wall: WallTime;
  targets: {
    cpuRatioAtMost1_5: Record<string, boolean>;
    dynamodbCallsConstant: boolean;
    postsEqualRecipients: boolean;
    fanOut1000Under500ms: boolean | null;
    exactlyOnce: boolean;
  };
}

// ---------------------------------------------------------------------------------------------------------
// The child process: dynalite + the fake @connections endpoint.

type ServersRequest = { type: 'latency'; ms: number } | { type: 'report' } | { type: 'close' };
type ToServers = ServersRequest & { id: number };
type FromServers =
  | { type: 'ready'; dynamodbEndpoint: string; connectionsEndpoint: string }
  | { id: number; type: 'ok' }
  | { id: number; type: 'report'; posts: number; pairs: [string, number][] };

const SERVERS_ROLE = 'VIBA_BENCH_DELIVERY_SERVERS';

async function runServers(): Promise<void> {
  const { startLocalDynamoDb } = await import('@viba-realtime/local');
  // The sweeper's Scan would add load at random times; nothing in the bench expires.
  const db = await startLocalDynamoDb({ tableName: TABLE_NAME, sweepIntervalMs: 3_600_000 });
  let latencyMs = 0;
  let posts = 0;
  let pairs = new Map<string, number>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/local\/@connections\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts += 1;
      let id = '?';
      try {
        id = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id);
      } catch {
        // Recorded as '?': counted as an unexpected post.
      }
      const key = `${decodeURIComponent(match[1] as string)}|${id}`;
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
      const answer = () => res.writeHead(200, { 'content-length': '0' }).end();
      if (latencyMs > 0) setTimeout(answer, latencyMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const reply = (message: FromServers) => process.send?.(message);
  process.on('message', (raw) => {
    const message = raw as ToServers;
    if (message.type === 'latency') {
      latencyMs = message.ms;
      reply({ id: message.id, type: 'ok' });
    } else if (message.type === 'report') {
      reply({ id: message.id, type: 'report', posts, pairs: [...pairs] });
      posts = 0;
      pairs = new Map();
    } else {
      server.closeAllConnections();
      server.close();
      void db.close().finally(() => {
        reply({ id: message.id, type: 'ok' });
        process.disconnect?.();
      });
    }
  });
  reply({ type: 'ready', dynamodbEndpoint: db.endpoint, connectionsEndpoint: `http://127.0.0.1:${port}/local` });
}

/** The parent's handle on the child. */
class Servers {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (m: FromServers) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  private constructor(
    child: ChildProcess,
    readonly dynamodbEndpoint: string,
    readonly connectionsEndpoint: string,
  ) {
    this.#child = child;
    child.on('message', (raw) => {
      const message = raw as FromServers;
      if (!('id' in message)) return;
      this.#pending.get(message.id)?.resolve(message);
      this.#pending.delete(message.id);
    });
    child.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`bench servers exited (${code})`));
      this.#pending.clear();
    });
  }

  static async start(): Promise<Servers> {
    const file = fileURLToPath(import.meta.url);
    const child = fork(file, [], {
      // tsx resolves from the repository root, where it is installed.
      cwd: join(dirname(file), '..'),
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [SERVERS_ROLE]: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = new Promise<FromServers>((resolve, reject) => {
      child.once('message', (m) => resolve(m as FromServers));
      child.once('exit', (code) => reject(new Error(`bench servers exited before ready (${code})`)));
      child.once('error', reject);
    });
    const message = await withDeadline(ready, 60_000, 'starting bench servers').catch((error: unknown) => {
      child.kill();
      throw error;
    });
    if (message.type !== 'ready') throw new Error(`unexpected first message ${message.type}`);
    return new Servers(child, message.dynamodbEndpoint, message.connectionsEndpoint);
  }

  #call(message: ServersRequest): Promise<FromServers> {
    const id = this.#nextId++;
    const answer = new Promise<FromServers>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#child.send({ ...message, id });
    return withDeadline(answer, STEP_DEADLINE_MS, `bench servers: ${message.type}`);
  }

  async setLatency(ms: number): Promise<void> {
    await this.#call({ type: 'latency', ms });
  }

  /** Posts seen since the last report, as `connectionId|frameId` -> count; clears them. */
  async report(): Promise<{ posts: number; pairs: Map<string, number> }> {
    const message = await this.#call({ type: 'report' });
    if (message.type !== 'report') throw new Error('unexpected answer to report');
    return { posts: message.posts, pairs: new Map(message.pairs) };
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || !this.#child.connected) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    await this.#call({ type: 'close' }).catch(() => undefined);
    await withDeadline(exited, 10_000, 'bench servers exit').catch(() => this.#child.kill());
  }
}

// ---------------------------------------------------------------------------------------------------------
// The measured side.

interface Room {
  name: string;
  sender: Caller;
  recipients: string[];
}

function median(values: number[]): number {
  return percentiles(values).p50;
}

/** A fresh room with a sender and `size` recipients, written through the store like `join` would. */
async function createRoom(store: DynamoDbStore, name: string, size: number): Promise<Room> {
  const now = Date.now();
  const expiresAt = Math.floor(now / 1000) + 7200;
  await store.createRoom({ room: name, visibility: 'public', owner: 'bench-owner', createdAt: now });
  const sender: Caller = {
    connectionId: `${name}-sender`,
    sub: 'bench-sender',
    username: 'bench-sender',
    groups: [],
    tokenExp: expiresAt,
    connectedAt: now,
  };
  const recipients = Array.from({ length: size }, (_, i) => `${name}-c${i}`);
  const subscriptions: SubscriptionRecord[] = [
    { room: name, connectionId: sender.connectionId, sub: sender.sub, subscribedAt: now },
    ...recipients.map((connectionId, i) => ({ room: name, connectionId, sub: `user-${i}`, subscribedAt: now + 1 })),
  ];
  const results = await mapWithConcurrency(subscriptions, SETUP_CONCURRENCY, (s) => store.subscribe(s, expiresAt));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return { name, sender, recipients };
}

/** The frame a bare loop posts: a chat frame of the same shape and size as the core's. */
function bareFrame(room: string, id: string): Uint8Array {
  const frame: ChatFrame = {
    type: 'chat',
    id,
    room,
    from: 'bench-sender',
    seq: 1,
    ts: Date.now(),
    body: { text: 'hello from the delivery cost bench' },
    ref: id,
  };
  return encoder.encode(JSON.stringify(frame));
}

/** The baseline: PostToConnection over `ids` with `concurrency` workers, nothing else. */
async function bareLoop(delivery: ConnectionsDelivery, ids: readonly string[], data: Uint8Array, concurrency: number) {
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      await delivery.client.send(new PostToConnectionCommand({ ConnectionId: id, Data: data }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
}

interface Harness {
  servers: Servers;
  store: DynamoDbStore;
  documentClient: DynamoDBDocumentClient;
  delivery: ConnectionsDelivery;
  deps: CoreDeps;
  counter: AwsCallCounter;
}

function ackId(ack: AckFrame): string {
  if (ack.id === undefined) throw new Error(`send was not acknowledged with an id: ${JSON.stringify(ack)}`);
  return ack.id;
}

async function sendOne(h: Harness, room: Room, clientId: string) {
  return send(h.deps, room.sender, {
    action: 'send',
    room: room.name,
    id: clientId,
    body: { text: 'hello from the delivery cost bench' },
  });
}

/** Phase 1: calls, CPU and exactly-once for one room size, at latency 0. */
async function measureRoom(h: Harness, room: Room, messages: number): Promise<RoomCost> {
  const n = room.recipients.length;
  const sent = new Set<string>();
  const bareIds = new Set<string>();
  // Warm-up (not measured): JIT, sockets, the room's first Query.
  sent.add(ackId(await sendOne(h, room, 'warmup')));
  const warmId = `bare-${room.name}-warmup`;
  bareIds.add(warmId);
  await bareLoop(h.delivery, room.recipients, bareFrame(room.name, warmId), LIMITS.deliveryConcurrency);

  const calls: CallCounts[] = [];
  const handlerCpu: number[] = [];
  const bareCpu: number[] = [];
  for (let i = 0; i < messages; i++) {
    // Interleaved, so drift (GC, thermal) hits both sides alike.
    const bareId = `bare-${room.name}-${i}`;
    bareIds.add(bareId);
    const data = bareFrame(room.name, bareId);
    const bareWatch = cpuStopwatch();
    await bareLoop(h.delivery, room.recipients, data, LIMITS.deliveryConcurrency);
    bareCpu.push(bareWatch() * 1000);

    const before = h.counter.snapshot();
    const watch = cpuStopwatch();
    const ack = await sendOne(h, room, `m-${i}`);
    handlerCpu.push(watch() * 1000);
    calls.push(AwsCallCounter.diff(before, h.counter.snapshot()));
    sent.add(ackId(ack));
  }

  // Exactly once: every recipient, every message (warm-up included); nothing to anyone else.
  const { pairs } = await h.servers.report();
  let lost = 0;
  let duplicated = 0;
  const expected = new Set<string>();
  for (const messageId of [...sent, ...bareIds]) {
    for (const connectionId of room.recipients) {
      const key = `${connectionId}|${messageId}`;
      expected.add(key);
      const count = pairs.get(key) ?? 0;
      if (count === 0) lost += 1;
      else duplicated += count - 1;
    }
  }
  for (const [key, count] of pairs) if (!expected.has(key)) duplicated += count;

  const dynamo = calls.map((c) => AwsCallCounter.total(c, 'dynamodb'));
  const posts = calls.map((c) => c['apigw:PostToConnection'] ?? 0);
  const widest = calls.reduce((a, b) =>
    AwsCallCounter.total(b, 'dynamodb') > AwsCallCounter.total(a, 'dynamodb') ? b : a,
  );
  const handler = median(handlerCpu.map((ms) => (ms / n) * 1000));
  const bare = median(bareCpu.map((ms) => (ms / n) * 1000));
  return {
    recipients: n,
    messages,
    callsPerMessage: widest,
    dynamodbCallsPerMessage: Math.max(...dynamo),
    queryCallsPerMessage: Math.max(...calls.map((c) => c['dynamodb:Query'] ?? 0)),
    postsPerMessage: Math.max(...posts),
    dynamodbCallsStable: dynamo.every((d) => d === dynamo[0]) && posts.every((p) => p === n),
    handlerCpuMsPer1000: handler,
    bareLoopCpuMsPer1000: bare,
    cpuRatio: ratio(handler, bare),
    lost,
    duplicated,
    exactlyOnce: lost === 0 && duplicated === 0,
  };
}

/** Bench-only naive design: store the message, Scan the whole table for the room's subscriptions, post to
 * all of them at once. Never shipped: it reads every item of the table per message and has no bound. */
async function naiveSend(h: Harness, room: Room, seq: number): Promise<void> {
  const id = `naive-${room.name}-${seq}`;
  const frame: ChatFrame = {
    type: 'chat',
    id,
    room: room.name,
    from: room.sender.sub,
    seq,
    ts: Date.now(),
    body: { text: 'hello from the delivery cost bench' },
    ref: id,
  };
  await h.documentClient.send(
    new PutCommand({
      TableName: TABLE_NAME,
      Item: { ...frame, ...keys.message(`naive-${room.name}`, seq), type: 'message', body: JSON.stringify(frame.body) },
    }),
  );
  const input: ScanCommandInput = {
    TableName: TABLE_NAME,
    FilterExpression: '#type = :type AND #room = :room',
    ExpressionAttributeNames: { '#type': 'type', '#room': 'room' },
    ExpressionAttributeValues: { ':type': 'subscription', ':room': room.name },
  };
  const targets: string[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await h.documentClient.send(
      new ScanCommand({ ...input, ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }) }),
    );
    for (const item of page.Items ?? []) targets.push(String(item.connectionId));
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  const data = encoder.encode(JSON.stringify(frame));
  await Promise.all(
    targets.map((connectionId) =>
      h.delivery.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data })),
    ),
  );
}

/** Bench-only what-if: the shipped store and delivery with a wider pool than LIMITS.deliveryConcurrency. */
async function whatIfSend(h: Harness, room: Room, seq: number, concurrency: number): Promise<void> {
  const id = `whatif-${room.name}-${seq}`;
  const targets = (await h.store.listRoomSubscriptions(room.name)).filter(
    (s) => s.connectionId !== room.sender.connectionId,
  );
  const frame = toChatFrame({ id, room: room.name, from: room.sender.sub, seq, ts: Date.now(), body: {}, ref: id });
  await mapWithConcurrency(targets, concurrency, (t) =>
    h.delivery.post({ connectionId: t.connectionId, sub: t.sub }, frame),
  );
}

async function timed(task: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await withDeadline(task(), STEP_DEADLINE_MS, 'fan-out');
  return performance.now() - start;
}

/** Phase 2: wall time of one fan-out at a fixed post latency, core vs naive vs a wider pool. */
async function measureWall(h: Harness, room: Room, latencyMs: number, repeats: number): Promise<WallTime> {
  await h.servers.setLatency(latencyMs);
  const core: number[] = [];
  const naive: number[] = [];
  const whatIf: number[] = [];
  let naiveCalls: CallCounts = {};
  try {
    for (let i = 0; i < repeats; i++) {
      core.push(await timed(() => sendOne(h, room, `wall-${i}`)));
      const before = h.counter.snapshot();
      naive.push(await timed(() => naiveSend(h, room, i + 1)));
      naiveCalls = AwsCallCounter.diff(before, h.counter.snapshot());
      whatIf.push(await timed(() => whatIfSend(h, room, i + 1, WHAT_IF_CONCURRENCY)));
    }
  } finally {
    await h.servers.setLatency(0);
    await h.servers.report();
  }
  const n = room.recipients.length;
  return {
    recipients: n,
    latencyMs,
    coreMs: median(core),
    whatIfMs: median(whatIf),
    whatIfConcurrency: WHAT_IF_CONCURRENCY,
    naiveMs: median(naive),
    coreFloorMs: Math.ceil(n / LIMITS.deliveryConcurrency) * latencyMs,
    naiveCallsPerMessage: naiveCalls,
    naiveDynamodbCallsPerMessage: AwsCallCounter.total(naiveCalls, 'dynamodb'),
    naivePostsPerMessage: naiveCalls['apigw:PostToConnection'] ?? 0,
  };
}

export async function runDeliveryCost(options: DeliveryCostOptions = {}): Promise<DeliveryCostResult> {
  const quick = options.quick ?? false;
  const rooms = options.rooms ?? (quick ? [10, 100] : [10, 100, 1_000, 10_000]);
  const messages = options.messages ?? 3;
  const latencyMs = options.latencyMs ?? 20;
  const wallRecipients = options.wallRecipients ?? (quick ? 100 : 1_000);
  const wallRepeats = options.wallRepeats ?? 3;

  const servers = await Servers.start();
  const raw = new DynamoDBClient({ endpoint: servers.dynamodbEndpoint, region: REGION, credentials: CREDENTIALS });
  const documentClient = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const store = new DynamoDbStore({ client: documentClient, tableName: TABLE_NAME });
  const log = createLogger('silent');
  const delivery = new ConnectionsDelivery({
    endpoint: servers.connectionsEndpoint,
    region: REGION,
    credentials: CREDENTIALS,
    log,
  });
  const counter = new AwsCallCounter();
  counter.attach(documentClient, 'dynamodb');
  counter.attach(delivery.client, 'apigw');
  const h: Harness = {
    servers,
    store,
    documentClient,
    delivery,
    deps: { store, delivery, clock: Date.now, log },
    counter,
  };

  try {
    // Warm-up (not measured): JIT-compiles the SDK, core and store paths, opens sockets.
    const warm = await createRoom(store, 'bench-warmup', WARMUP_RECIPIENTS);
    for (let i = 0; i < (quick ? 2 : WARMUP_ROUNDS); i++) {
      await sendOne(h, warm, `warm-${i}`);
      await bareLoop(delivery, warm.recipients, bareFrame(warm.name, `bare-warm-${i}`), LIMITS.deliveryConcurrency);
    }
    await servers.report();

    const costs: RoomCost[] = [];
    const created = new Map<number, Room>();
    for (const size of rooms) {
      const room = await createRoom(store, `bench-${size}`, size);
      created.set(size, room);
      costs.push(await measureRoom(h, room, messages));
    }
    const wallRoom =
      created.get(wallRecipients) ?? (await createRoom(store, `bench-wall-${wallRecipients}`, wallRecipients));
    const wall = await measureWall(h, wallRoom, latencyMs, wallRepeats);

    const first = costs[0];
    return {
      options: {
        quick,
        rooms,
        messages,
        latencyMs,
        wallRecipients,
        wallRepeats,
        deliveryConcurrency: LIMITS.deliveryConcurrency,
      },
      rooms: costs,
      wall,
      targets: {
        cpuRatioAtMost1_5: Object.fromEntries(costs.map((c) => [String(c.recipients), c.cpuRatio <= 1.5])),
        dynamodbCallsConstant: costs.every(
          (c) =>
            c.dynamodbCallsStable &&
            c.dynamodbCallsPerMessage - c.queryCallsPerMessage ===
              (first?.dynamodbCallsPerMessage ?? 0) - (first?.queryCallsPerMessage ?? 0),
        ),
        postsEqualRecipients: costs.every((c) => c.postsPerMessage === c.recipients),
        fanOut1000Under500ms: wall.recipients === 1_000 && latencyMs === 20 ? wall.coreMs < 500 : null,
        exactlyOnce: costs.every((c) => c.exactlyOnce),
      },
    };
  } finally {
    store.destroy();
    delivery.client.destroy();
    await servers.close();
  }
}

function printDeliveryCost(result: DeliveryCostResult): void {
  printTable(
    result.rooms.map((c) => ({
      recipients: c.recipients,
      'ddb calls/msg': c.dynamodbCallsPerMessage,
      'of which Query': c.queryCallsPerMessage,
      'posts/msg': c.postsPerMessage,
      'handler CPU ms/1k': c.handlerCpuMsPer1000,
      'bare loop CPU ms/1k': c.bareLoopCpuMsPer1000,
      'ratio (<=1.5)': c.cpuRatio,
      lost: c.lost,
      duplicated: c.duplicated,
    })),
    {
      title: `Delivery core cost: AWS calls and CPU per message (latency 0, ${result.options.messages} messages/room)`,
    },
  );
  const first = result.rooms[0];
  if (first) {
    console.log(
      `calls of one message (room ${first.recipients}): ${Object.entries(first.callsPerMessage)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  }
  const w = result.wall;
  printTable(
    [
      {
        design: `core send, pool ${result.options.deliveryConcurrency} (shipped)`,
        'wall ms': w.coreMs,
        'floor ms': w.coreFloorMs,
        'ddb calls/msg': first?.dynamodbCallsPerMessage,
      },
      {
        design: `what-if: pool ${w.whatIfConcurrency}`,
        'wall ms': w.whatIfMs,
        'floor ms': Math.ceil(w.recipients / w.whatIfConcurrency) * w.latencyMs,
      },
      {
        design: 'naive: Scan + unbounded Promise.all',
        'wall ms': w.naiveMs,
        'ddb calls/msg': w.naiveDynamodbCallsPerMessage,
      },
    ],
    {
      title: `Fan-out wall time: ${w.recipients} recipients, ${w.latencyMs} ms per post (median of ${result.options.wallRepeats})`,
    },
  );
  console.log(`targets: ${JSON.stringify(result.targets)}`);
}

/** CLI (and `bench/run.ts`): true when every delivery was exactly once and the call counts are as designed.
 * `npx tsx bench/delivery-cost.ts [--quick] [--rooms 10,100] [--wall 1000] [--messages N] [--latency MS]
 * [--no-write]`. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runDeliveryCost({
    quick: args.quick,
    ...(typeof args.flags.rooms === 'string' ? { rooms: args.flags.rooms.split(',').map(Number) } : {}),
    ...(typeof args.flags.wall === 'string' ? { wallRecipients: Number(args.flags.wall) } : {}),
    messages: intFlag(args, 'messages', 3),
    latencyMs: args.flags.latency === undefined ? 20 : Number(args.flags.latency),
  });
  printDeliveryCost(result);
  if (args.write) console.log(`result: ${writeResult('delivery-cost', { ...result })}`);
  // Correctness only (bench/run.ts's contract): speed targets are reported, never a failure.
  const { exactlyOnce, postsEqualRecipients, dynamodbCallsConstant } = result.targets;
  return exactlyOnce && postsEqualRecipients && dynamodbCallsConstant;
}

const entry = process.argv[1];
if (process.env[SERVERS_ROLE] === '1') {
  await runServers();
} else if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = (await main()) ? 0 : 1;
}
