/**
 * Cost model (issue 7, point 5): the AWS bill per million chat messages, for rooms of 10 and 1,000 members
 * on each channel, and per 10,000 connections held for a month, from the calls the real code makes.
 *
 * 1. **Count.** The real core (`send`, `announce`, `runFanoutBatch`, `connect`/`disconnect`, the MQTT lifecycle,
 *    every request through the handlers' shared `answer`), the real `DynamoDbStore` against the emulator's
 *    DynamoDB server and the real deliveries (`ConnectionsDelivery`, `IotDelivery` behind `RoutingDelivery`,
 *    `SqsFanoutQueue`) against fake endpoints that answer 200 (`lib/fake-aws.ts`, in a child process). Per
 *    message or step: AWS calls by operation (`lib/aws-call-counter.ts`), DynamoDB capacity units including
 *    index writes (`lib/aws-usage.ts`), the AWS calls on the critical path, metered units of every post and
 *    publish (32 KB API Gateway, 5 KB IoT, 64 KB SQS), the handlers' own log lines, and handler CPU (in a
 *    second pass without the capacity meter's extra reads). An MQTT request runs as `iot-ingress` runs it:
 *    the caller's connection record, `answer`, the answer published to `rt/users/{sub}/responses`.
 * 2. **Price.** `bench/prices.ts` is the one price table. Lambda bills wall time, which is not measured here:
 *    the billed duration of an invocation is an explicit assumption ({@link ASSUMPTIONS}), from the counted
 *    critical-path round trips and deliveries, printed next to the measured CPU.
 * 3. **Output.** Tables of counted calls per message, $ per million messages by service, and 10,000
 *    connections held for a month per channel; `--markdown` prints them as the docs quote them
 *    (docs/DEPLOY.md "Cost estimate", docs/PERFORMANCE.md "Cost model"); a JSON result in `bench/results/`.
 *
 * Run: `npm run cost [-- --quick] [--no-write] [--markdown] [--rooms 10,1000] [--messages 5] [--body-bytes 200]
 * [--audience 1000]`. The $ figures depend only on the counts (deterministic); CPU figures on the machine.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  announce,
  type Caller,
  ConnectionsDelivery,
  type CoreDeps,
  connect,
  createLogger,
  DynamoDbStore,
  disconnect,
  type FanoutBatch,
  IotDelivery,
  type Logger,
  mapWithConcurrency,
  mqttConnected,
  mqttConnectionId,
  mqttDisconnected,
  RoutingDelivery,
  runFanoutBatch,
  SqsFanoutQueue,
} from '@viba-realtime/lambdas';
import { IOT_AUTHORIZER_TIMES } from '@viba-realtime/lambdas/handlers/iot-authorizer';
import { answer, parseRequest } from '@viba-realtime/lambdas/handlers/requests';
import {
  APIGW_LIMITS,
  BACKEND_SENDER,
  clientIdFor,
  LIMITS,
  type ServerFrame,
  TABLE,
  topics,
} from '@viba-realtime/protocol';
import { AwsCallCounter, type CallCounts } from './lib/aws-call-counter.js';
import { DynamoDbCapacityMeter, RoundTripTracker, type UsageCounts } from './lib/aws-usage.js';
import { FakeAws, type FakeAwsReport } from './lib/fake-aws.js';
import {
  type BenchArgs,
  cpuStopwatch,
  formatNumber,
  intFlag,
  parseBenchArgs,
  percentiles,
  printTable,
  type TableRow,
  writeResult,
} from './lib/index.js';
import { cost, PRICES, type PriceItem } from './prices.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
const TABLE_NAME = 'viba-bench-cost';
const SETUP_CONCURRENCY = 32;
const MILLION = 1_000_000;
/** Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion below that. */
const FULL_VCPU_MB = 1769;

// ---------------------------------------------------------------------------------------------------------
// Assumptions: everything the model needs that is neither a price nor counted.

/** The Lambda memory size of the stack's functions, read from `infra/src/realtime.ts` (all of them share it). */
function lambdaMemoryMb(): { mb: number; source: string } {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'infra', 'src', 'realtime.ts');
  try {
    const text = readFileSync(file, 'utf8');
    const sizes = [...text.matchAll(/memorySize:\s*(\d+)/g)].map((m) => Number(m[1]));
    const arm = text.includes('Architecture.ARM_64');
    if (sizes.length > 0 && sizes.every((s) => s === sizes[0]) && arm) {
      return { mb: sizes[0] as number, source: 'infra/src/realtime.ts (memorySize, Architecture.ARM_64)' };
    }
  } catch {
    // Fall through to the default below.
  }
  return { mb: 256, source: 'default: infra/src/realtime.ts could not be read as one arm64 memory size' };
}

const memory = lambdaMemoryMb();

export const ASSUMPTIONS = {
  lambda: {
    memoryMb: memory.mb,
    memorySource: memory.source,
    /** Billed ms of a warm invocation besides its AWS calls and deliveries: runtime, parsing, logging. */
    baseMs: 5,
    /** Billed ms per AWS call on the critical path (DynamoDB, a data-plane publish): in-region round trip
     * plus SDK work at 256 MB's share of a vCPU (the earlier hand estimate in DEPLOY.md: 60 ms for a send's 7). */
    roundTripMs: 8,
    /** Billed ms per delivery (post or IoT publish) of a fan-out: ~0.35 ms of SDK CPU per post on a fast core
     * (docs/PERFORMANCE.md §2), at 256/1,769 of a vCPU; fan-outs are CPU-bound at this size (48 in flight). */
    deliveryMs: 2.3,
    /** JWT signature check of an authorizer (keys cached after the first call). */
    authorizerVerifyMs: 5,
    /** Cold starts (INIT, billed since 2025-08-01) are left out: under 1% of invocations per AWS. */
    coldStarts: 'not included',
  },
  logs: {
    /** Lambda's platform lines per invocation (JSON log format: start and report). */
    platformBytesPerInvocation: 500,
    /** One line of the WebSocket stage's JSON access log (per connect, message and disconnect). */
    accessLogBytesPerLine: 350,
  },
  chat: {
    /** Characters of the message text (`body: { text }`). */
    bodyBytes: 200,
    /** MQTT members have one device each: one PUBLISH (and PUBACK) per user topic. */
    mqttConnectionsPerUser: 1,
  },
  connections: {
    connections: 10_000,
    hoursPerMonth: 730,
    /** Each user is in one room of this many connected users, all on the same channel. */
    roomSize: 10,
    /** Cognito ID/access token lifetime (an app client's default; 5 min to 1 day possible). */
    tokenLifetimeMinutes: 60,
    /** The SDK replaces the connection this long before the token expires (`CLIENT_DEFAULTS.refreshMarginMs`). */
    refreshMarginMinutes: 1,
    /** The SDK's WebSocket `ping` after this long without sending (`CLIENT_DEFAULTS.heartbeatIntervalMs`). */
    heartbeatMinutes: 4,
    /** IoT re-invokes the custom authorizer this often (`IOT_AUTHORIZER_TIMES.refreshAfter`). */
    iotAuthorizerRefreshSeconds: IOT_AUTHORIZER_TIMES.refreshAfter,
    /** API Gateway's `$connect` and `$disconnect` billed as messages (the pricing page does not say). */
    apiGatewayConnectEventsBilled: true,
    /** IoT's two lifecycle events of a reconnect billed as messages (the pricing page does not say). */
    iotLifecycleEventsBilled: true,
  },
  sqs: {
    /** The worker's event source mapping: per queued batch one ReceiveMessage (in 64 KB chunks of the
     * message) and one DeleteMessage. Its idle long polls of an empty queue are a fixed monthly cost. */
    perBatch: 'ReceiveMessage + DeleteMessage',
  },
} as const;

// ---------------------------------------------------------------------------------------------------------
// Usage: billable quantities by price item.

export type Usage = Partial<Record<PriceItem, number>>;

function addUsage(into: Usage, more: Usage, times = 1): Usage {
  for (const [item, quantity] of Object.entries(more) as [PriceItem, number][]) {
    into[item] = (into[item] ?? 0) + quantity * times;
  }
  return into;
}

function scaleUsage(usage: Usage, times: number): Usage {
  return addUsage({}, usage, times);
}

function subtractUsage(a: Usage, b: Usage): Usage {
  const out = addUsage({}, a);
  for (const [item, quantity] of Object.entries(b) as [PriceItem, number][]) out[item] = (out[item] ?? 0) - quantity;
  return out;
}

/** The service line a price item is reported under. */
const SERVICE_OF: Record<PriceItem, string> = {
  apiGatewayMessage: 'API Gateway messages',
  apiGatewayConnectionMinute: 'API Gateway connection minutes',
  lambdaRequest: 'Lambda requests',
  lambdaArmGbSecond: 'Lambda duration',
  dynamodbWriteUnit: 'DynamoDB writes',
  dynamodbReadUnit: 'DynamoDB reads',
  dynamodbStorageGbMonth: 'DynamoDB storage + PITR',
  dynamodbPitrGbMonth: 'DynamoDB storage + PITR',
  iotConnectionMinute: 'IoT connection minutes',
  iotMessage: 'IoT messages',
  iotRuleTriggered: 'IoT rules + actions',
  iotRuleAction: 'IoT rules + actions',
  sqsRequest: 'SQS requests',
  logsIngestedGb: 'CloudWatch Logs',
  logsStoredGbMonth: 'CloudWatch Logs',
  alarmMonth: 'CloudWatch alarms',
  dashboardMonth: 'CloudWatch dashboard',
};

/** Service lines in the order tables show them. */
export const SERVICES = [
  'API Gateway messages',
  'API Gateway connection minutes',
  'IoT messages',
  'IoT rules + actions',
  'IoT connection minutes',
  'Lambda requests',
  'Lambda duration',
  'DynamoDB writes',
  'DynamoDB reads',
  'DynamoDB storage + PITR',
  'SQS requests',
  'CloudWatch Logs',
] as const;

/** Dollars by service line. */
function dollarsByService(usage: Usage): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [item, quantity] of Object.entries(usage) as [PriceItem, number][]) {
    const service = SERVICE_OF[item];
    out[service] = (out[service] ?? 0) + cost(item, quantity);
  }
  return out;
}

function totalDollars(usage: Usage): number {
  return Object.values(dollarsByService(usage)).reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------------------------
// The harness.

interface Person {
  sub: string;
  connectionId: string;
  /** MQTT: `{sub}.{deviceId}`. */
  clientId: string;
  caller: Caller;
}

interface Harness {
  aws: FakeAws;
  store: DynamoDbStore;
  iot: IotDelivery;
  delivery: RoutingDelivery;
  queue: SqsFanoutQueue;
  counter: AwsCallCounter;
  meter: DynamoDbCapacityMeter;
  trips: RoundTripTracker;
  /** Bytes of log lines the handlers wrote at `info` (the stack's level). */
  logBytes: { value: number };
  logs: { wsRoutes: Logger; iotIngress: Logger; iotPresence: Logger; worker: Logger; publisher: Logger };
  silent: Logger;
  close(): Promise<void>;
}

function coreDeps(h: Harness, log: Logger): CoreDeps {
  // What ws-routes, iot-ingress, iot-presence, the worker and the publisher all get in the stack with MQTT on.
  return { store: h.store, delivery: h.delivery, clock: Date.now, log, queue: h.queue, topics: h.iot };
}

async function startHarness(): Promise<Harness> {
  const aws = await FakeAws.start({ tableName: TABLE_NAME });
  const dynamo = () =>
    DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: aws.dynamodbEndpoint, region: REGION, credentials: CREDENTIALS }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
  const documentClient = dynamo();
  const shadow = dynamo();
  const store = new DynamoDbStore({ client: documentClient, tableName: TABLE_NAME });
  const silent = createLogger('silent');
  const common = { region: REGION, credentials: CREDENTIALS, log: silent };
  const websocket = new ConnectionsDelivery({ endpoint: aws.connectionsEndpoint, ...common });
  const iot = new IotDelivery({ endpoint: aws.iotEndpoint, ...common });
  const delivery = new RoutingDelivery({ websocket, mqtt: iot, log: silent });
  const queue = new SqsFanoutQueue({ queueUrl: aws.queueUrl, endpoint: aws.sqsEndpoint, ...common });

  // Before any call: the delivery clients cache their middleware stack on the first one.
  const counter = new AwsCallCounter();
  counter.attach(documentClient, 'dynamodb');
  counter.attach(websocket.client, 'apigw');
  counter.attach(iot.client, 'iot');
  counter.attach(queue.client, 'sqs');
  const meter = new DynamoDbCapacityMeter({
    shadow,
    tableName: TABLE_NAME,
    keys: [TABLE.partitionKey, TABLE.sortKey],
    indexes: [[TABLE.indexes.gsi1.partitionKey, TABLE.indexes.gsi1.sortKey]],
    ttlAttribute: TABLE.ttlAttribute,
  });
  meter.attach(documentClient);
  const trips = new RoundTripTracker();
  for (const client of [documentClient, websocket.client, iot.client, queue.client]) trips.attach(client);

  const logBytes = { value: 0 };
  const root = createLogger('info', (line) => {
    logBytes.value += Buffer.byteLength(line) + 1;
  });
  return {
    aws,
    store,
    iot,
    delivery,
    queue,
    counter,
    meter,
    trips,
    logBytes,
    logs: {
      wsRoutes: root.child({ handler: 'ws-routes' }),
      iotIngress: root.child({ handler: 'iot-ingress' }),
      iotPresence: root.child({ handler: 'iot-presence' }),
      worker: root.child({ handler: 'fanout-worker' }),
      publisher: root.child({ handler: 'publisher' }),
    },
    silent,
    async close() {
      store.destroy();
      shadow.destroy();
      websocket.client.destroy();
      iot.client.destroy();
      queue.client.destroy();
      await aws.close();
    },
  };
}

/** One measured unit of work (a message, a step of a reconnect): what it cost. */
export interface Step {
  calls: CallCounts;
  /** DynamoDB capacity (see `DynamoDbCapacityMeter`); empty when measured without the meter. */
  units: UsageCounts;
  roundTrips: number;
  appLogBytes: number;
  cpuMs: number;
  seen: FakeAwsReport;
}

async function measure(h: Harness, run: () => Promise<unknown>): Promise<Step> {
  const calls = h.counter.snapshot();
  const units = h.meter.snapshot();
  const trips = h.trips.roundTrips;
  const logs = h.logBytes.value;
  const watch = cpuStopwatch();
  await run();
  const cpuMs = watch() * 1000;
  return {
    calls: AwsCallCounter.diff(calls, h.counter.snapshot()),
    units: DynamoDbCapacityMeter.diff(units, h.meter.snapshot()),
    roundTrips: h.trips.roundTrips - trips,
    appLogBytes: h.logBytes.value - logs,
    cpuMs,
    seen: await h.aws.report(),
  };
}

/** A deterministic Cognito-like sub (UUID) and API Gateway-like connection id (16 characters). */
function person(scenario: number, i: number, channel: Channel): Person {
  const sub = `${scenario.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
  const clientId = clientIdFor(sub, `d${i.toString(36).padStart(11, '0')}`);
  const connectionId =
    channel === 'mqtt'
      ? mqttConnectionId(clientId)
      : `${scenario.toString(36).padStart(3, 'S')}${i.toString(36).padStart(12, '0')}=`;
  const now = Date.now();
  return {
    sub,
    clientId,
    connectionId,
    caller: {
      connectionId,
      sub,
      username: `user${i}`,
      groups: [],
      tokenExp: Math.floor(now / 1000) + ASSUMPTIONS.connections.tokenLifetimeMinutes * 60,
      connectedAt: now,
    },
  };
}

function withConnection(p: Person, connectionId: string): Person {
  return { ...p, connectionId, caller: { ...p.caller, connectionId, connectedAt: Date.now() } };
}

async function setupAll<T>(items: readonly T[], task: (item: T) => Promise<unknown>): Promise<void> {
  const results = await mapWithConcurrency(items, SETUP_CONCURRENCY, task);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** A client request on the WebSocket channel, as `ws-routes` runs it; the sizes of the frames both ways. */
async function wsRequest(h: Harness, p: Person, frame: Record<string, unknown>) {
  const text = JSON.stringify(frame);
  const log = h.logs.wsRoutes.child({
    routeKey: String(frame.action),
    connectionId: p.connectionId,
    requestId: randomUUID(),
    sub: p.sub,
  });
  const reply = await answer(coreDeps(h, log), p.caller, parseRequest(text), log);
  return { reply, inBytes: Buffer.byteLength(text), outBytes: Buffer.byteLength(JSON.stringify(reply)) };
}

/** A client request on the MQTT channel, as `iot-ingress` runs it: the connection record, `answer`, and the
 * answer published to the user's responses topic. `inBytes`: what IoT meters of the client's PUBLISH. */
async function mqttRequest(h: Harness, p: Person, frame: Record<string, unknown>) {
  const topic = topics.requests(p.sub);
  const payload = JSON.stringify(frame);
  const log = h.logs.iotIngress.child({ clientId: p.clientId, topic });
  const record = await h.store.getConnection(p.connectionId);
  const caller: Caller = {
    connectionId: p.connectionId,
    sub: p.sub,
    username: record?.username ?? p.sub,
    groups: record?.groups ?? [],
    tokenExp: record?.tokenExp ?? Number.POSITIVE_INFINITY,
    connectedAt: record?.connectedAt ?? Date.now(),
  };
  const reply = await answer(coreDeps(h, log), caller, parseRequest(payload), log);
  await h.iot.publish(topics.responses(p.sub), reply);
  return { reply, inBytes: Buffer.byteLength(payload) + Buffer.byteLength(topic) };
}

const units = (bytes: number, unit: number) => Math.max(1, Math.ceil(bytes / unit));
const apigwUnits = (bytes: number) => units(bytes, PRICES.metering.apiGatewayMessageBytes);
const iotUnits = (bytes: number) => units(bytes, PRICES.metering.iotMessageBytes);

function isResponsesTopic(pairKey: string): boolean {
  return pairKey.split('|')[0]?.endsWith('/responses') ?? false;
}

/** Deliveries a Lambda made in a step: posts, and IoT publishes other than request answers. */
function deliveriesOf(step: Step): number {
  let answers = 0;
  for (const [key, count] of step.seen.iot.pairs) if (isResponsesTopic(key)) answers += count;
  return step.seen.connections.posts + step.seen.iot.publishes - answers;
}

/** Billed ms of one invocation (see ASSUMPTIONS.lambda). */
function billedMs(roundTrips: number, deliveries: number, extraMs = 0): number {
  const l = ASSUMPTIONS.lambda;
  return Math.ceil(l.baseMs + roundTrips * l.roundTripMs + deliveries * l.deliveryMs + extraMs);
}

/**
 * What one Lambda invocation that did `step` bills: the invocation and its duration, DynamoDB, its logs,
 * and what it sent (posts, IoT publishes with each subscriber's PUBLISH and PUBACK, SQS requests).
 */
function invocationUsage(
  step: Step | undefined,
  options: { accessLogLines?: number; extraMs?: number; iotSubscribersPerPublish?: number } = {},
): Usage {
  const l = ASSUMPTIONS.lambda;
  const roundTrips = step?.roundTrips ?? 0;
  const deliveries = step ? deliveriesOf(step) : 0;
  const u = step?.units ?? {};
  const storage = u.storageGbMonths ?? 0;
  const subscribers = options.iotSubscribersPerPublish ?? ASSUMPTIONS.chat.mqttConnectionsPerUser;
  const logBytes =
    (step?.appLogBytes ?? 0) +
    ASSUMPTIONS.logs.platformBytesPerInvocation +
    (options.accessLogLines ?? 0) * ASSUMPTIONS.logs.accessLogBytesPerLine;
  return {
    lambdaRequest: 1,
    lambdaArmGbSecond: (billedMs(roundTrips, deliveries, options.extraMs) / 1000) * (l.memoryMb / 1024),
    dynamodbReadUnit: DynamoDbCapacityMeter.total(u, 'read'),
    dynamodbWriteUnit:
      DynamoDbCapacityMeter.total(u, 'write') +
      DynamoDbCapacityMeter.total(u, 'indexWrite') +
      DynamoDbCapacityMeter.total(u, 'failedWrite'),
    dynamodbStorageGbMonth: storage,
    dynamodbPitrGbMonth: storage,
    apiGatewayMessage: step?.seen.connections.units ?? 0,
    iotMessage: step
      ? step.seen.iot.requestUnits + subscribers * (step.seen.iot.deliveryUnits + step.seen.iot.publishes)
      : 0,
    sqsRequest: step?.seen.sqs.units ?? 0,
    logsIngestedGb: logBytes / 2 ** 30,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Chat: per message.

export type Channel = 'websocket' | 'mqtt';

export interface ChatScenario {
  name: string;
  channel: Channel;
  members: number;
  /** Connections (= users) that receive each message: everyone but the sender. */
  recipients: number;
  messages: number;
  /** AWS calls per message by `service:Operation` (the same for every message when `stable`). */
  calls: CallCounts;
  stable: boolean;
  dynamodbCalls: number;
  /** DynamoDB capacity per message by kind and operation. */
  units: UsageCounts;
  posts: number;
  /** IoT publishes to member room topics, and to the sender's responses topic. */
  roomPublishes: number;
  answerPublishes: number;
  sqsCalls: number;
  roundTrips: number;
  appLogBytes: number;
  /** The client's frame (WebSocket) or PUBLISH (MQTT) and, on WebSocket, the ack frame, in bytes. */
  inBytes: number;
  replyBytes: number;
  /** Measured handler CPU per message on this machine (median, without the capacity meter). */
  cpuMsPerMessage: number;
  /** What the model bills for the invocation. */
  billedMs: number;
  lost: number;
  duplicated: number;
  usage: Usage;
  dollarsPerMillion: Record<string, number>;
  totalPerMillion: number;
}

function median(values: number[]): number {
  return percentiles(values).p50;
}

function bodyText(bytes: number): string {
  const words = 'the quick brown fox jumps over the lazy dog and then sends one more chat message ';
  return words.repeat(Math.ceil(bytes / words.length)).slice(0, bytes);
}

const sameCalls = (a: CallCounts, b: CallCounts) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

async function runChat(
  h: Harness,
  scenario: number,
  channel: Channel,
  members: number,
  messages: number,
  bodyBytes: number,
): Promise<ChatScenario> {
  const room = `room-${channel === 'websocket' ? 'ws' : 'mq'}-${String(members).padStart(4, '0')}`;
  const now = Date.now();
  const people = Array.from({ length: members }, (_, i) => person(scenario, i, channel));
  const sender = people[0] as Person;
  const recipients = people.slice(1);
  await h.store.createRoom({ room, visibility: 'public', owner: sender.sub, createdAt: now });
  const expiresAt = Math.floor(now / 1000) + 3600;
  await setupAll(people, (p) =>
    h.store.subscribe({ room, connectionId: p.connectionId, sub: p.sub, subscribedAt: now }, expiresAt),
  );
  if (channel === 'mqtt') {
    await mqttConnected(coreDeps(h, h.silent), {
      clientId: sender.clientId,
      lifecycle: { versionNumber: 1, timestamp: now },
    });
  }
  const body = { text: bodyText(bodyBytes) };
  let sizes = { inBytes: 0, replyBytes: 0 };
  const sendOne = async (id: string): Promise<ServerFrame> => {
    const frame = { action: 'send', room, id, body };
    if (channel === 'websocket') {
      const r = await wsRequest(h, sender, frame);
      sizes = { inBytes: r.inBytes, replyBytes: r.outBytes };
      return r.reply;
    }
    const r = await mqttRequest(h, sender, frame);
    sizes = { inBytes: r.inBytes, replyBytes: 0 };
    return r.reply;
  };

  // Warm-up (not measured): JIT, sockets.
  h.meter.enabled = false;
  for (let i = 0; i < Math.max(2, messages); i++) await sendOne(`warm-up-${i}`);
  await h.aws.report();

  const metered: Step[] = [];
  const timed: Step[] = [];
  let lost = 0;
  let duplicated = 0;
  for (const [pass, steps] of [
    ['metered', metered],
    ['timed', timed],
  ] as const) {
    h.meter.enabled = pass === 'metered';
    for (let i = 0; i < messages; i++) {
      let reply: ServerFrame | undefined;
      const step = await measure(h, async () => {
        reply = await sendOne(`${pass}-${i}`);
      });
      steps.push(step);
      // Exactly once: every recipient connection (WebSocket) or user topic (MQTT), nothing else.
      const id = reply?.type === 'ack' ? reply.id : undefined;
      if (id === undefined) throw new Error(`send was not acknowledged: ${JSON.stringify(reply)}`);
      const expected = new Map<string, 'connections' | 'iot'>();
      if (channel === 'websocket') {
        for (const r of recipients) expected.set(`${r.connectionId}|${id}`, 'connections');
      } else {
        for (const r of recipients) expected.set(`${topics.userRoom(r.sub, room)}|${id}`, 'iot');
        expected.set(`${topics.responses(sender.sub)}|${id}`, 'iot');
      }
      for (const [key, where] of expected) {
        const count = step.seen[where].pairs.get(key) ?? 0;
        if (count === 0) lost += 1;
        else duplicated += count - 1;
      }
      for (const where of ['connections', 'iot'] as const) {
        for (const [key, count] of step.seen[where].pairs) if (!expected.has(key)) duplicated += count;
      }
    }
  }
  h.meter.enabled = true;

  const first = metered[0] as Step;
  const all = [...metered, ...timed];
  const stable = all.every((s) => sameCalls(s.calls, first.calls));
  const answerPublishes = [...first.seen.iot.pairs].filter(([k]) => isResponsesTopic(k)).reduce((a, [, c]) => a + c, 0);
  const roomPublishes = first.seen.iot.publishes - answerPublishes;

  // Billing: the handler's invocation, plus what the client side adds.
  const usage = invocationUsage(first, { accessLogLines: channel === 'websocket' ? 1 : 0 });
  if (channel === 'websocket') {
    // The client's frame in, the ack out (the route response), beside the posts.
    addUsage(usage, { apiGatewayMessage: apigwUnits(sizes.inBytes) + apigwUnits(sizes.replyBytes) });
  } else {
    // The client's PUBLISH in (IoT's PUBACK to it is free); one rule triggered, one Lambda action.
    addUsage(usage, { iotMessage: iotUnits(sizes.inBytes), iotRuleTriggered: 1, iotRuleAction: 1 });
  }
  const perMillion = scaleUsage(usage, MILLION);
  return {
    name: `room ${members.toLocaleString('en-US')} · ${channel === 'websocket' ? 'WebSocket' : 'MQTT'}`,
    channel,
    members,
    recipients: recipients.length,
    messages,
    calls: first.calls,
    stable,
    dynamodbCalls: AwsCallCounter.total(first.calls, 'dynamodb'),
    units: first.units,
    posts: first.seen.connections.posts,
    roomPublishes,
    answerPublishes,
    sqsCalls: AwsCallCounter.total(first.calls, 'sqs'),
    roundTrips: first.roundTrips,
    appLogBytes: first.appLogBytes,
    inBytes: sizes.inBytes,
    replyBytes: sizes.replyBytes,
    cpuMsPerMessage: median(timed.map((s) => s.cpuMs)),
    billedMs: billedMs(first.roundTrips, deliveriesOf(first)),
    lost,
    duplicated,
    usage,
    dollarsPerMillion: dollarsByService(perMillion),
    totalPerMillion: totalDollars(perMillion),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Announcements: the fan-out queue (WebSocket audiences over LIMITS.fanoutInlineMax) and IoT's broadcast.

export interface AnnouncementScenario {
  name: string;
  channel: Channel;
  audience: number;
  /** The publishing invocation (the app's backend Lambda, through the publisher). */
  publisherCalls: CallCounts;
  /** SQS messages (batches) queued, and the worker invocations that ran them. */
  batches: number;
  sqsCalls: number;
  workerInvocations: number;
  /** Over all worker invocations. */
  workerCalls: CallCounts;
  posts: number;
  /** IoT PUBLISHes the broker sends (one per subscribed connection of the broadcast topic). */
  broadcastDeliveries: number;
  lost: number;
  duplicated: number;
  usage: Usage;
  dollarsPerMillion: Record<string, number>;
  totalPerMillion: number;
}

function sumCalls(steps: readonly Step[]): CallCounts {
  const out: CallCounts = {};
  for (const s of steps) for (const [k, v] of Object.entries(s.calls)) out[k] = (out[k] ?? 0) + v;
  return out;
}

async function runAnnouncement(
  h: Harness,
  scenario: number,
  channel: Channel,
  audience: number,
): Promise<AnnouncementScenario> {
  // A Cognito group of its own, so no other scenario's connections are in the audience.
  const group = `cost-${channel === 'websocket' ? 'ws' : 'mq'}-${scenario}`;
  const people = Array.from({ length: audience }, (_, i) => {
    const p = person(scenario, i, channel);
    return { ...p, caller: { ...p.caller, groups: [group] } };
  });
  h.meter.enabled = false;
  if (channel === 'websocket') {
    // $connect of each: the connection record and its audience entries (all, and the group).
    await setupAll(people, (p) => connect(coreDeps(h, h.silent), p.caller));
  }
  await h.aws.report();
  h.meter.enabled = true;
  const body = { text: bodyText(ASSUMPTIONS.chat.bodyBytes) };
  let id = '';
  const publisher = await measure(h, async () => {
    const outcome = await announce(coreDeps(h, h.logs.publisher.child({ requestId: randomUUID() })), {
      body,
      group,
      from: BACKEND_SENDER,
    });
    id = outcome.id;
  });
  const batches = publisher.seen.sqs.bodies.map((b) => JSON.parse(b) as FanoutBatch);
  const workers: Step[] = [];
  for (const batch of batches) {
    // The worker's handler: one SQS message, one batch (batch size 1).
    workers.push(
      await measure(h, () => runFanoutBatch(coreDeps(h, h.logs.worker.child({ batchId: batch.batchId })), batch)),
    );
  }
  let lost = 0;
  let duplicated = 0;
  if (channel === 'websocket') {
    const seen = new Map<string, number>();
    for (const s of [publisher, ...workers]) {
      for (const [k, c] of s.seen.connections.pairs) seen.set(k, (seen.get(k) ?? 0) + c);
    }
    const expected = new Set(people.map((p) => `${p.connectionId}|${id}`));
    for (const key of expected) {
      const c = seen.get(key) ?? 0;
      if (c === 0) lost += 1;
      else duplicated += c - 1;
    }
    for (const [key, c] of seen) if (!expected.has(key)) duplicated += c;
  } else if ((publisher.seen.iot.pairs.get(`${topics.groupAnnouncements(group)}|${id}`) ?? 0) !== 1) {
    lost += 1;
  }

  // The broadcast publish reaches every MQTT subscriber of rt/announcements (the broker's PUBLISH + PUBACK).
  const broadcastDeliveries = channel === 'mqtt' ? audience : 0;
  const usage = invocationUsage(publisher, { iotSubscribersPerPublish: broadcastDeliveries });
  for (const w of workers) addUsage(usage, invocationUsage(w));
  // The event source mapping receives each batch (64 KB chunks of it) and deletes it when the worker is done.
  const receiveUnits = publisher.seen.sqs.bodies.reduce(
    (sum, b) => sum + units(Buffer.byteLength(b), PRICES.metering.sqsRequestBytes),
    0,
  );
  addUsage(usage, { sqsRequest: receiveUnits + batches.length });
  const perMillion = scaleUsage(usage, MILLION);
  return {
    name: `announcement to ${audience.toLocaleString('en-US')} · ${channel === 'websocket' ? 'WebSocket' : 'MQTT'}`,
    channel,
    audience,
    publisherCalls: publisher.calls,
    batches: batches.length,
    sqsCalls: AwsCallCounter.total(publisher.calls, 'sqs'),
    workerInvocations: workers.length,
    workerCalls: sumCalls(workers),
    posts: [publisher, ...workers].reduce((a, s) => a + s.seen.connections.posts, 0),
    broadcastDeliveries,
    lost,
    duplicated,
    usage,
    dollarsPerMillion: dollarsByService(perMillion),
    totalPerMillion: totalDollars(perMillion),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Connections held: a reconnect (token refresh) per channel, a heartbeat, an authorizer refresh.

/** The counted steps of one reconnect, each one Lambda invocation. */
export interface Reconnect {
  channel: Channel;
  roomSize: number;
  steps: Record<string, Step>;
  /** Sizes of the client's request frames and of the answers. */
  requestBytes: number[];
  replyBytes: number[];
  /** Whether a second reconnect made the same calls. */
  stable: boolean;
}

async function runWsReconnect(h: Harness, scenario: number, roomSize: number): Promise<Reconnect> {
  const room = `lobby-ws-${String(roomSize).padStart(4, '0')}`;
  const people = Array.from({ length: roomSize }, (_, i) => person(scenario, i, 'websocket'));
  const user = people[0] as Person;
  h.meter.enabled = false;
  for (const p of people) {
    await connect(coreDeps(h, h.silent), p.caller);
    await wsRequest(h, p, { action: 'join', room, id: 'j0' });
  }
  await h.aws.report();
  h.meter.enabled = true;

  const cycles: Reconnect[] = [];
  let current = user;
  for (let cycle = 1; cycle <= 2; cycle++) {
    const next = withConnection(user, `${current.connectionId.slice(0, 13)}r${cycle}=`);
    const steps: Record<string, Step> = {};
    const requestBytes: number[] = [];
    const replyBytes: number[] = [];
    const log = (routeKey: string, p: Person) =>
      h.logs.wsRoutes.child({ routeKey, connectionId: p.connectionId, requestId: randomUUID(), sub: p.sub });
    // The SDK closes the old connection, then opens the new one: $disconnect usually runs first.
    steps.disconnect = await measure(h, () =>
      disconnect(coreDeps(h, log('$disconnect', current)), current.connectionId, current.sub),
    );
    steps.connect = await measure(h, () => connect(coreDeps(h, log('$connect', next)), next.caller));
    const since = Date.now() - 60_000;
    for (const [name, frame] of [
      ['inbox', { action: 'inbox', id: `i${cycle}`, body: { limit: LIMITS.inboxPageMax } }],
      [
        'announcements',
        { action: 'announcements', id: `a${cycle}`, body: { since, limit: LIMITS.announcementsPageMax } },
      ],
      ['join', { action: 'join', room, id: `j${cycle}` }],
    ] as const) {
      steps[name] = await measure(h, async () => {
        const r = await wsRequest(h, next, frame);
        requestBytes.push(r.inBytes);
        replyBytes.push(r.outBytes);
      });
    }
    cycles.push({ channel: 'websocket', roomSize, steps, requestBytes, replyBytes, stable: true });
    current = next;
  }
  return stableOf(cycles);
}

async function runMqttReconnect(h: Harness, scenario: number, roomSize: number): Promise<Reconnect> {
  const room = `lobby-mq-${String(roomSize).padStart(4, '0')}`;
  const people = Array.from({ length: roomSize }, (_, i) => person(scenario, i, 'mqtt'));
  const user = people[0] as Person;
  h.meter.enabled = false;
  const start = Date.now();
  for (const p of people) {
    await mqttConnected(coreDeps(h, h.silent), {
      clientId: p.clientId,
      lifecycle: { versionNumber: 1, timestamp: start },
    });
    await mqttRequest(h, p, { action: 'join', room, id: 'j0' });
  }
  await h.aws.report();
  h.meter.enabled = true;

  const cycles: Reconnect[] = [];
  for (let cycle = 1; cycle <= 2; cycle++) {
    const steps: Record<string, Step> = {};
    const requestBytes: number[] = [];
    const replyBytes: number[] = [];
    const presenceLog = () => h.logs.iotPresence.child({ clientId: user.clientId });
    // The custom authorizer at CONNECT (and at every refresh): the user's rooms for the policy.
    steps.authorizer = await measure(h, () => h.store.listUserRooms(user.sub));
    // IoT's lifecycle events through the presence rule: the old session's `disconnected`, the new `connected`.
    steps.disconnected = await measure(h, () =>
      mqttDisconnected(coreDeps(h, presenceLog()), {
        clientId: user.clientId,
        lifecycle: { versionNumber: cycle, timestamp: Date.now() },
      }),
    );
    steps.connected = await measure(h, () =>
      mqttConnected(coreDeps(h, presenceLog()), {
        clientId: user.clientId,
        lifecycle: { versionNumber: cycle + 1, timestamp: Date.now() },
      }),
    );
    const since = Date.now() - 60_000;
    for (const [name, frame] of [
      ['inbox', { action: 'inbox', id: `i${cycle}`, body: { limit: LIMITS.inboxPageMax } }],
      [
        'announcements',
        { action: 'announcements', id: `a${cycle}`, body: { since, limit: LIMITS.announcementsPageMax } },
      ],
      ['join', { action: 'join', room, id: `j${cycle}` }],
    ] as const) {
      steps[name] = await measure(h, async () => {
        const r = await mqttRequest(h, user, frame);
        requestBytes.push(r.inBytes);
      });
    }
    cycles.push({ channel: 'mqtt', roomSize, steps, requestBytes, replyBytes, stable: true });
  }
  return stableOf(cycles);
}

function stableOf(cycles: Reconnect[]): Reconnect {
  const [a, b] = cycles as [Reconnect, Reconnect];
  const stable = Object.keys(a.steps).every((k) => sameCalls(a.steps[k]?.calls ?? {}, b.steps[k]?.calls ?? {}));
  return { ...b, stable };
}

/** A WebSocket heartbeat: `ping` in, `pong` out, one ws-routes invocation. */
async function runPing(h: Harness, scenario: number) {
  const p = person(scenario, 0, 'websocket');
  let sizes = { inBytes: 0, outBytes: 0 };
  const step = await measure(h, async () => {
    const r = await wsRequest(h, p, { action: 'ping', id: 'hb' });
    sizes = { inBytes: r.inBytes, outBytes: r.outBytes };
  });
  return { step, ...sizes };
}

/** Usage of one WebSocket reconnect (everything the SDK's token refresh causes). */
function wsReconnectUsage(r: Reconnect): Usage {
  const c = ASSUMPTIONS.connections;
  const usage: Usage = {};
  // ws-authorizer: verifies the token, no AWS call (keys cached).
  addUsage(usage, invocationUsage(undefined, { extraMs: ASSUMPTIONS.lambda.authorizerVerifyMs }));
  for (const step of Object.values(r.steps)) addUsage(usage, invocationUsage(step, { accessLogLines: 1 }));
  const frames =
    r.requestBytes.reduce((a, b) => a + apigwUnits(b), 0) +
    r.replyBytes.reduce((a, b) => a + apigwUnits(b), 0) +
    (c.apiGatewayConnectEventsBilled ? 2 : 0);
  return addUsage(usage, { apiGatewayMessage: frames });
}

/** Usage of one MQTT reconnect, without the authorizer (priced with its refreshes). */
function mqttReconnectUsage(r: Reconnect): Usage {
  const c = ASSUMPTIONS.connections;
  const usage: Usage = {};
  for (const [name, step] of Object.entries(r.steps)) if (name !== 'authorizer') addUsage(usage, invocationUsage(step));
  const requests = r.requestBytes.length;
  const lifecycle = 2;
  return addUsage(usage, {
    // CONNECT and one SUBSCRIBE (4 small filters), the requests' PUBLISHes, the lifecycle events.
    iotMessage: 2 + r.requestBytes.reduce((a, b) => a + iotUnits(b), 0) + (c.iotLifecycleEventsBilled ? lifecycle : 0),
    iotRuleTriggered: requests + lifecycle,
    iotRuleAction: requests + lifecycle,
  });
}

/** The knobs of the connection model, so variants can be priced from the same counts. */
export interface ConnectionParams {
  tokenLifetimeMinutes: number;
  heartbeatMinutes: number;
  /** Price the presence fan-out of a shared room (else: every user alone). */
  sharedRoom: boolean;
}

/** One line of a connection-month table. */
export interface ConnectionLine {
  activity: string;
  service: string;
  perConnectionHour: number;
  month: number;
  unit: string;
  dollars: number;
}

export interface ConnectionMonth {
  channel: Channel;
  params: ConnectionParams;
  /** Reconnects, heartbeats and authorizer invocations per connection-hour. */
  rates: { reconnects: number; pings: number; authorizer: number };
  lines: ConnectionLine[];
  total: number;
  perConnectionMonth: number;
}

interface ConnectionCounts {
  wsAlone: Reconnect;
  wsRoom: Reconnect;
  mqttAlone: Reconnect;
  mqttRoom: Reconnect;
  ping: Awaited<ReturnType<typeof runPing>>;
}

/** Minutes a connection lives: until the token's refresh margin, or API Gateway's 2-hour cut. */
function connectionMinutes(channel: Channel, p: ConnectionParams): number {
  const c = ASSUMPTIONS.connections;
  const token = p.tokenLifetimeMinutes - c.refreshMarginMinutes;
  if (channel === 'mqtt') return token;
  return Math.min(token, APIGW_LIMITS.maxConnectionMs / 60_000 - c.refreshMarginMinutes);
}

function priceConnections(channel: Channel, counts: ConnectionCounts, p: ConnectionParams): ConnectionMonth {
  const c = ASSUMPTIONS.connections;
  const lifetime = connectionMinutes(channel, p);
  const reconnects = 60 / lifetime;
  // The SDK pings after heartbeatMinutes without sending; a fresh connection sends at once (its requests).
  const pings =
    channel === 'websocket' ? (Math.floor((lifetime * 60 - 1) / (p.heartbeatMinutes * 60)) * 60) / lifetime : 0;
  const authorizer =
    channel === 'mqtt' ? (Math.ceil((lifetime * 60) / c.iotAuthorizerRefreshSeconds) * 60) / lifetime : 0;
  const connectionHours = c.connections * c.hoursPerMonth;

  const activities: [string, Usage][] = [];
  if (channel === 'websocket') {
    const ping = counts.ping;
    const pingUsage = addUsage(invocationUsage(ping.step, { accessLogLines: 1 }), {
      apiGatewayMessage: apigwUnits(ping.inBytes) + apigwUnits(ping.outBytes),
    });
    const alone = wsReconnectUsage(counts.wsAlone);
    const presence = subtractUsage(wsReconnectUsage(counts.wsRoom), alone);
    activities.push(
      ['connection', { apiGatewayConnectionMinute: 60 }],
      ['heartbeat', scaleUsage(pingUsage, pings)],
      ['reconnect', scaleUsage(alone, reconnects)],
    );
    if (p.sharedRoom)
      activities.push([`presence (room of ${counts.wsRoom.roomSize})`, scaleUsage(presence, reconnects)]);
  } else {
    const auth = counts.mqttRoom.steps.authorizer;
    const authUsage = invocationUsage(auth, { extraMs: ASSUMPTIONS.lambda.authorizerVerifyMs });
    const alone = mqttReconnectUsage(counts.mqttAlone);
    const presence = subtractUsage(mqttReconnectUsage(counts.mqttRoom), alone);
    activities.push(
      ['connection', { iotConnectionMinute: 60 }],
      ['authorizer', scaleUsage(authUsage, authorizer)],
      ['reconnect', scaleUsage(alone, reconnects)],
    );
    if (p.sharedRoom)
      activities.push([`presence (room of ${counts.mqttRoom.roomSize})`, scaleUsage(presence, reconnects)]);
  }

  const lines: ConnectionLine[] = [];
  for (const [activity, usage] of activities) {
    const byService = new Map<string, { quantity: number; dollars: number; unit: string }>();
    for (const [item, perHour] of Object.entries(usage) as [PriceItem, number][]) {
      // The items of a held connection live about an hour and are deleted at its end: no storage to speak of.
      if (Math.abs(perHour) < 1e-15 || item === 'dynamodbStorageGbMonth' || item === 'dynamodbPitrGbMonth') continue;
      const service = SERVICE_OF[item];
      const line = byService.get(service) ?? { quantity: 0, dollars: 0, unit: unitLabel(item) };
      // A line's quantity is its first item's (rules, not rules + actions); the dollars are the line's.
      line.quantity += item === 'iotRuleAction' || item === 'logsStoredGbMonth' ? 0 : perHour;
      line.dollars += cost(item, perHour * connectionHours);
      byService.set(service, line);
    }
    for (const [service, line] of byService) {
      if (Math.abs(line.dollars) < 1e-9) continue;
      lines.push({
        activity,
        service,
        perConnectionHour: line.quantity,
        month: line.quantity * connectionHours,
        unit: line.unit,
        dollars: line.dollars,
      });
    }
  }
  const total = lines.reduce((a, l) => a + l.dollars, 0);
  return {
    channel,
    params: p,
    rates: { reconnects, pings, authorizer },
    lines,
    total,
    perConnectionMonth: total / c.connections,
  };
}

function unitLabel(item: PriceItem): string {
  const labels: Partial<Record<PriceItem, string>> = {
    apiGatewayMessage: 'messages',
    apiGatewayConnectionMinute: 'minutes',
    lambdaRequest: 'invocations',
    lambdaArmGbSecond: 'GB-s',
    dynamodbWriteUnit: 'write units',
    dynamodbReadUnit: 'read units',
    dynamodbStorageGbMonth: 'GB-months',
    iotConnectionMinute: 'minutes',
    iotMessage: 'messages',
    iotRuleTriggered: 'rules (+ as many actions)',
    sqsRequest: 'requests',
    logsIngestedGb: 'GB',
  };
  return labels[item] ?? item;
}

// ---------------------------------------------------------------------------------------------------------
// The run.

export interface CostOptions {
  /** Short run: rooms of 10 and 100, one message each, an announcement to 501. @default false */
  quick?: boolean;
  /** Room sizes (members, sender included). @default [10, 1000]; quick [10, 100] */
  rooms?: number[];
  /** Messages measured per scenario and pass. @default 5; quick 1 */
  messages?: number;
  /** Characters of message text. @default ASSUMPTIONS.chat.bodyBytes */
  bodyBytes?: number;
  /** Connections an announcement goes to (over fanoutInlineMax: the queue). @default 1000; quick 501 */
  audience?: number;
}

export interface CostResult {
  options: Required<CostOptions>;
  prices: { asOf: string; region: string };
  assumptions: typeof ASSUMPTIONS;
  chat: ChatScenario[];
  announcements: AnnouncementScenario[];
  connections: { websocket: ConnectionMonth; mqtt: ConnectionMonth };
  variants: { name: string; websocket: number; mqtt: number | undefined }[];
  reconnects: Record<
    string,
    { calls: Record<string, CallCounts>; units: Record<string, UsageCounts>; stable: boolean }
  >;
  /** Measured CPU per delivery (slope between the room sizes), per channel, this machine. */
  cpuMsPerDelivery: Record<Channel, number>;
  /** $ per million messages as a fixed part plus a part per delivery (line through the two room sizes). */
  perMillion: Record<Channel, { fixed: number; perDelivery: number }>;
  checks: Record<string, boolean>;
}

export async function runCost(options: CostOptions = {}): Promise<CostResult> {
  const quick = options.quick ?? false;
  const resolved: Required<CostOptions> = {
    quick,
    rooms: options.rooms ?? (quick ? [10, 100] : [10, 1000]),
    messages: options.messages ?? (quick ? 1 : 5),
    bodyBytes: options.bodyBytes ?? ASSUMPTIONS.chat.bodyBytes,
    audience: options.audience ?? (quick ? LIMITS.fanoutInlineMax + 1 : 1000),
  };
  const h = await startHarness();
  try {
    let scenario = 1;
    const chat: ChatScenario[] = [];
    for (const members of resolved.rooms) {
      for (const channel of ['websocket', 'mqtt'] as const) {
        chat.push(await runChat(h, scenario++, channel, members, resolved.messages, resolved.bodyBytes));
      }
    }
    const announcements: AnnouncementScenario[] = [];
    for (const channel of ['websocket', 'mqtt'] as const) {
      announcements.push(await runAnnouncement(h, scenario++, channel, resolved.audience));
    }
    const roomSize = ASSUMPTIONS.connections.roomSize;
    const counts: ConnectionCounts = {
      wsAlone: await runWsReconnect(h, scenario++, 1),
      wsRoom: await runWsReconnect(h, scenario++, roomSize),
      mqttAlone: await runMqttReconnect(h, scenario++, 1),
      mqttRoom: await runMqttReconnect(h, scenario++, roomSize),
      ping: await runPing(h, scenario++),
    };
    const c = ASSUMPTIONS.connections;
    const base: ConnectionParams = {
      tokenLifetimeMinutes: c.tokenLifetimeMinutes,
      heartbeatMinutes: c.heartbeatMinutes,
      sharedRoom: true,
    };
    const connections = {
      websocket: priceConnections('websocket', counts, base),
      mqtt: priceConnections('mqtt', counts, base),
    };
    const variant = (name: string, p: ConnectionParams, mqtt = true) => ({
      name,
      websocket: priceConnections('websocket', counts, p).total,
      mqtt: mqtt ? priceConnections('mqtt', counts, p).total : undefined,
    });
    const variants = [
      variant('as above', base),
      variant('no shared rooms (no presence fan-out on reconnect)', { ...base, sharedRoom: false }),
      variant('Cognito tokens valid 1 day (WebSocket still cut at 2 h)', { ...base, tokenLifetimeMinutes: 24 * 60 }),
      variant('WebSocket heartbeatIntervalMs 480000 (8 min)', { ...base, heartbeatMinutes: 8 }, false),
    ];

    const line = (channel: Channel) => {
      const rows = chat.filter((s) => s.channel === channel).sort((a, b) => a.members - b.members);
      const small = rows[0];
      const large = rows[rows.length - 1];
      if (!small || !large || large.recipients === small.recipients)
        return { fixed: Number.NaN, perDelivery: Number.NaN };
      const perDelivery = (large.totalPerMillion - small.totalPerMillion) / (large.recipients - small.recipients);
      return { fixed: small.totalPerMillion - perDelivery * small.recipients, perDelivery };
    };
    const slope = (channel: Channel) => {
      const rows = chat.filter((s) => s.channel === channel).sort((a, b) => a.members - b.members);
      const small = rows[0];
      const large = rows[rows.length - 1];
      if (!small || !large || large.recipients === small.recipients) return Number.NaN;
      return (large.cpuMsPerMessage - small.cpuMsPerMessage) / (large.recipients - small.recipients);
    };

    const byChannel = (channel: Channel) => chat.filter((s) => s.channel === channel);
    const dynamodbOnly = (calls: CallCounts) =>
      Object.fromEntries(Object.entries(calls).filter(([k]) => k.startsWith('dynamodb:')));
    const ws = announcements.find((a) => a.channel === 'websocket');
    const checks: Record<string, boolean> = {
      exactlyOnce:
        chat.every((s) => s.lost === 0 && s.duplicated === 0) &&
        announcements.every((a) => a.lost === 0 && a.duplicated === 0),
      postsPerMessageEqualRecipients: byChannel('websocket').every(
        (s) => s.posts === s.recipients && s.roomPublishes === 0,
      ),
      iotPublishesPerMessageEqualMemberUsers: byChannel('mqtt').every(
        (s) => s.roomPublishes === s.recipients && s.answerPublishes === 1 && s.posts === 0,
      ),
      callsStablePerMessage: chat.every((s) => s.stable),
      dynamodbCallsIndependentOfRoomSize: (['websocket', 'mqtt'] as const).every((channel) => {
        const rows = byChannel(channel);
        return rows.every((s) => sameCalls(dynamodbOnly(s.calls), dynamodbOnly(rows[0]?.calls ?? {})));
      }),
      chatUsesNoQueue: chat.every((s) => s.sqsCalls === 0),
      announcementBatches:
        ws !== undefined &&
        ws.batches === Math.ceil(ws.audience / LIMITS.fanoutBatchSize) &&
        ws.workerInvocations === ws.batches &&
        ws.posts === ws.audience,
      reconnectsStable: [counts.wsAlone, counts.wsRoom, counts.mqttAlone, counts.mqttRoom].every((r) => r.stable),
    };

    const reconnects: CostResult['reconnects'] = {};
    for (const [name, r] of [
      ['websocket alone', counts.wsAlone],
      [`websocket room of ${roomSize}`, counts.wsRoom],
      ['mqtt alone', counts.mqttAlone],
      [`mqtt room of ${roomSize}`, counts.mqttRoom],
    ] as const) {
      reconnects[name] = {
        calls: Object.fromEntries(Object.entries(r.steps).map(([k, s]) => [k, s.calls])),
        units: Object.fromEntries(Object.entries(r.steps).map(([k, s]) => [k, s.units])),
        stable: r.stable,
      };
    }
    return {
      options: resolved,
      prices: { asOf: PRICES.asOf, region: PRICES.region },
      assumptions: ASSUMPTIONS,
      chat,
      announcements,
      connections,
      variants,
      reconnects,
      cpuMsPerDelivery: { websocket: slope('websocket'), mqtt: slope('mqtt') },
      perMillion: { websocket: line('websocket'), mqtt: line('mqtt') },
      checks,
    };
  } finally {
    await h.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Output.

function callList(calls: CallCounts, service: string): string {
  return Object.entries(calls)
    .filter(([k]) => k.startsWith(`${service}:`))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k.slice(service.length + 1)} ${v}`)
    .join(', ');
}

const money = (value: number) =>
  (Math.abs(value) < 0.005 ? 0 : value).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function countRows(result: CostResult): TableRow[] {
  return result.chat.map((s) => ({
    scenario: s.name,
    'DynamoDB calls': `${s.dynamodbCalls} (${callList(s.calls, 'dynamodb')})`,
    'read units': DynamoDbCapacityMeter.total(s.units, 'read'),
    'write units': DynamoDbCapacityMeter.total(s.units, 'write') + DynamoDbCapacityMeter.total(s.units, 'indexWrite'),
    '@connections posts': s.posts,
    'IoT publishes': s.roomPublishes + s.answerPublishes,
    SQS: s.sqsCalls,
    'billed messages': (s.usage.apiGatewayMessage ?? 0) + (s.usage.iotMessage ?? 0),
    'round trips': s.roundTrips,
    'billed ms (assumed)': s.billedMs,
    'CPU ms (measured)': s.cpuMsPerMessage,
  }));
}

function dollarRows(result: CostResult): TableRow[] {
  const used = SERVICES.filter((service) =>
    result.chat.some((s) => Math.abs(s.dollarsPerMillion[service] ?? 0) > 0.0005),
  );
  const rows: TableRow[] = used.map((service) => ({
    service,
    ...Object.fromEntries(result.chat.map((s) => [s.name, money(s.dollarsPerMillion[service] ?? 0)])),
  }));
  rows.push({ service: 'total', ...Object.fromEntries(result.chat.map((s) => [s.name, money(s.totalPerMillion)])) });
  return rows;
}

function announcementRows(result: CostResult): TableRow[] {
  return result.announcements.map((a) => ({
    scenario: a.name,
    'publisher calls': `${callList(a.publisherCalls, 'dynamodb')}; ${callList(a.publisherCalls, 'iot') || 'no IoT'}; ${callList(a.publisherCalls, 'sqs') || 'no SQS'}`,
    'SQS messages': a.batches,
    'worker invocations': a.workerInvocations,
    'worker calls': `${callList(a.workerCalls, 'dynamodb') || '-'}; posts ${a.posts}`,
    'MQTT PUBLISHes': a.broadcastDeliveries,
    '$ per million': money(a.totalPerMillion),
  }));
}

function connectionRows(month: ConnectionMonth): TableRow[] {
  const rows: TableRow[] = month.lines.map((l) => ({
    line: `${l.activity}: ${l.service}`,
    'per connection-hour':
      l.unit === 'GB' ? `${formatNumber(l.perConnectionHour * 2 ** 20)} KB` : formatNumber(l.perConnectionHour),
    month: `${formatNumber(l.month)} ${l.unit}`,
    $: money(l.dollars),
  }));
  rows.push({ line: 'total', 'per connection-hour': undefined, month: '', $: money(month.total) });
  return rows;
}

function markdown(rows: readonly TableRow[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: TableRow[string]) =>
    v === undefined || v === null ? '' : typeof v === 'number' ? formatNumber(v) : String(v);
  return [
    `| ${cols.join(' | ')} |`,
    `|${cols.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n');
}

function reconnectRows(result: CostResult): TableRow[] {
  const rows: TableRow[] = [];
  for (const [name, r] of Object.entries(result.reconnects)) {
    for (const [step, calls] of Object.entries(r.calls)) {
      const u = r.units[step] ?? {};
      rows.push({
        reconnect: name,
        step,
        DynamoDB: callList(calls, 'dynamodb') || '-',
        'read units': DynamoDbCapacityMeter.total(u, 'read'),
        'write units': DynamoDbCapacityMeter.total(u, 'write') + DynamoDbCapacityMeter.total(u, 'indexWrite'),
        '@connections': calls['apigw:PostToConnection'] ?? 0,
        'IoT publishes': calls['iot:Publish'] ?? 0,
      });
    }
  }
  return rows;
}

export function printCost(result: CostResult, options: { markdown?: boolean } = {}): void {
  const p = result.prices;
  const show = (title: string, rows: TableRow[]) => {
    if (options.markdown) console.log(`\n${title}\n\n${markdown(rows)}`);
    else printTable(rows, { title });
  };
  show(`Counted per chat message (body ${result.options.bodyBytes} characters)`, countRows(result));
  show(`$ per million chat messages (prices ${p.region}, ${p.asOf}; bench/prices.ts)`, dollarRows(result));
  const w = result.perMillion.websocket;
  const m = result.perMillion.mqtt;
  console.log(
    `\nPer million messages ≈ fixed + per delivery x recipients: WebSocket $${money(w.fixed)} + $${w.perDelivery.toFixed(3)} x R, MQTT $${money(m.fixed)} + $${m.perDelivery.toFixed(3)} x R`,
  );
  show('Announcements (the fan-out queue)', announcementRows(result));
  show('Calls per reconnect step', reconnectRows(result));
  const c = ASSUMPTIONS.connections;
  for (const channel of ['websocket', 'mqtt'] as const) {
    const m = result.connections[channel];
    show(
      `${c.connections.toLocaleString('en-US')} ${channel === 'websocket' ? 'WebSocket' : 'MQTT'} connections held for a month (${c.hoursPerMonth} h): ${m.rates.reconnects.toFixed(3)} reconnects, ${m.rates.pings.toFixed(2)} pings, ${m.rates.authorizer.toFixed(2)} authorizer calls per connection-hour`,
      connectionRows(m),
    );
  }
  for (const channel of ['websocket', 'mqtt'] as const) {
    const month = result.connections[channel];
    const hours = c.connections * c.hoursPerMonth;
    const sum = (activities: string[]) =>
      month.lines.filter((l) => activities.includes(l.activity)).reduce((a, l) => a + l.dollars, 0);
    const holding = sum(['connection', 'heartbeat', 'authorizer']);
    console.log(
      `${channel}: holding (connection minutes, heartbeats, authorizer refreshes) $${((holding / hours) * 1000).toFixed(4)} per 1,000 connection-hours, ` +
        `${((sum(['heartbeat', 'authorizer']) / holding) * 100).toFixed(0)}% of it heartbeats / authorizer; ` +
        `$${month.perConnectionMonth.toFixed(4)} per connection-month in all`,
    );
  }
  show(
    'What moves the connection totals ($ per month, 10,000 connections)',
    result.variants.map((v) => ({
      variant: v.name,
      WebSocket: money(v.websocket),
      MQTT: v.mqtt === undefined ? '-' : money(v.mqtt),
    })),
  );
  const l = ASSUMPTIONS.lambda;
  console.log(
    `\nLambda: ${l.memoryMb} MB arm64 (${l.memorySource}); billed ms = ${l.baseMs} + ${l.roundTripMs} x round trips + ${l.deliveryMs} x deliveries (assumed). ` +
      `Measured CPU per delivery on this machine: WebSocket ${formatNumber(result.cpuMsPerDelivery.websocket)} ms, MQTT ${formatNumber(result.cpuMsPerDelivery.mqtt)} ms ` +
      `(x ${formatNumber(FULL_VCPU_MB / l.memoryMb)} at ${l.memoryMb} MB's share of a vCPU: ${formatNumber((result.cpuMsPerDelivery.websocket * FULL_VCPU_MB) / l.memoryMb)} / ${formatNumber((result.cpuMsPerDelivery.mqtt * FULL_VCPU_MB) / l.memoryMb)} ms).`,
  );
  console.log(`checks: ${JSON.stringify(result.checks)}`);
}

/** CLI (and `bench/run.ts`): true when the consistency checks pass (exactly-once deliveries, one post per
 * recipient connection, one IoT publish per recipient user, call counts constant). */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runCost({
    quick: args.quick,
    ...(typeof args.flags.rooms === 'string' ? { rooms: args.flags.rooms.split(',').map(Number) } : {}),
    ...(args.flags.messages === undefined ? {} : { messages: intFlag(args, 'messages', 5) }),
    ...(args.flags['body-bytes'] === undefined ? {} : { bodyBytes: intFlag(args, 'body-bytes', 200) }),
    ...(args.flags.audience === undefined ? {} : { audience: intFlag(args, 'audience', 1000) }),
  });
  printCost(result, { markdown: args.flags.markdown === true });
  if (args.write) console.log(`result: ${writeResult('cost', { ...result, priceTable: PRICES })}`);
  return Object.values(result.checks).every(Boolean);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.exitCode = (await main()) ? 0 : 1;
}
