/**
 * Faults injected in the emulator at the AWS API boundary (issue 8 item 4): DynamoDB throttling and 5xx,
 * `@connections` 429/500/410, IoT publish failures, Lambda invocations that fail or time out, calls that hang
 * until their Lambda times out, and the emulator killed with SIGKILL and restarted on its data. Real servers on
 * port 0, real `ws` and MQTT.js clients (and the client SDK for the restart), the real AWS SDK in the handlers.
 *
 * Every scenario asserts the same contract: a message acknowledged to its sender is stored once and delivered once
 * to every connected member on both channels (counted by id per receiver, after a ping barrier: a connection's
 * frames arrive in order, so a late duplicate would arrive before the pong); work that is refused is reported to
 * the sender with an error frame and leaves nothing half-done, so the resend with the same client id succeeds once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createRealtimeClient, type RealtimeClient } from '@viba-realtime/client';
import { createLogger, SqsFanoutQueue } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { type AnnouncementFrame, keys, LIMITS, type ServerFrame, TABLE, topics } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MqttPeer } from '../support/mqtt-peer.js';
import { TestClient } from '../support/ws-client.js';

type Chat = Extract<ServerFrame, { type: 'chat' }>;
type Ack = Extract<ServerFrame, { type: 'ack' }>;
/** API Gateway's own answer when the integration fails: no `type`. */
type GatewayError = { message: string; connectionId: string; requestId: string };

const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** Moved forward by the tests that need a claim to go stale; read by the emulators' handlers and tokens. */
let skewMs = 0;
const clock = () => Date.now() + skewMs;

let emulator: Emulator;
/** Short function timeouts, for calls that hang until their Lambda times out. */
let hung: Emulator;
const closers: (() => Promise<unknown>)[] = [];
let counter = 0;

beforeAll(async () => {
  [emulator, hung] = await Promise.all([
    startEmulator({
      port: 0,
      logLevel: 'silent',
      clock,
      faults: { seed: 8 },
      fanoutQueue: { visibilityTimeoutMs: 50 },
    }),
    startEmulator({
      port: 0,
      logLevel: 'silent',
      clock,
      // Long enough for any normal request of a loaded machine, short enough to wait for in a test.
      faults: { seed: 8, functionTimeoutsMs: { 'ws-routes': 1_000, 'fanout-worker': 1_000 } },
      fanoutQueue: { visibilityTimeoutMs: 50 },
    }),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(closers.map((close) => close()));
  await Promise.all([emulator?.close(), hung?.close()]);
});

function faults(e: Emulator) {
  if (!e.faults) throw new Error('started without fault injection');
  return e.faults;
}

async function ws(e: Emulator, sub: string): Promise<TestClient> {
  const client = await TestClient.connect(e.url, e.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 3600 }), {
    name: sub,
  });
  closers.push(() => client.close());
  return client;
}

async function mqtt(e: Emulator, sub: string): Promise<MqttPeer> {
  const token = e.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 3600 });
  const peer = await MqttPeer.connect(e.mqttUrl as string, { sub, suffix: 't', token, protocolVersion: 5 });
  closers.push(() => peer.close());
  return peer;
}

/** A fresh room with alice and bob on WebSocket and carol on MQTT, all joined. */
async function scene(e = emulator) {
  const n = ++counter;
  // Ends in a letter: a rule's `ROOM#room-1x` prefix must not also match room-10x.
  const room = `room-${n}x`;
  const [alice, bob, carol] = await Promise.all([ws(e, `alice-${n}`), ws(e, `bob-${n}`), mqtt(e, `carol-${n}`)]);
  for (const member of [alice, bob, carol]) {
    expect(await member.request({ action: 'join', room })).toMatchObject({ type: 'ack', action: 'join' });
  }
  return { e, room, alice, bob, carol };
}
type Scene = Awaited<ReturnType<typeof scene>>;

/** After a pong, every frame sent to that connection before it has arrived. */
async function barrier(...clients: (TestClient | MqttPeer)[]): Promise<void> {
  await Promise.all(clients.map((c) => c.request({ action: 'ping' })));
}

function wsChats(client: TestClient, room: string): string[] {
  return client.received.filter((f): f is Chat => f.type === 'chat' && f.room === room).map((f) => f.id);
}

function mqttChats(peer: MqttPeer, room: string): string[] {
  const topic = topics.userRoom(peer.sub, room);
  return peer.received.filter((m) => m.topic === topic && m.frame.type === 'chat').map((m) => (m.frame as Chat).id);
}

/** How many attempts the handlers' DynamoDB client makes (the SDK's default for DynamoDB, which the store keeps). */
async function dynamoDbAttempts(): Promise<number> {
  const client = new DynamoDBClient({ region: 'us-east-1', credentials: CREDENTIALS });
  const attempts = await client.config.maxAttempts();
  client.destroy();
  return attempts;
}

/** Where a table is: an emulator, or what a child emulator's `/dev/config` tells. */
type TableAt = Pick<Emulator, 'dynamodbEndpoint' | 'tableName'>;

function table(e: TableAt) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: e.dynamodbEndpoint, region: 'us-east-1', credentials: CREDENTIALS }),
  );
  closers.push(async () => client.destroy());
  return client;
}

/** The room's stored messages (tombstones of abandoned seqs left out), read with the SDK. */
async function stored(e: TableAt, room: string): Promise<{ id: string; seq: number; ref: string }[]> {
  const { pk, skPrefix } = keys.messagesPrefix(room);
  const { Items = [] } = await table(e).send(
    new QueryCommand({
      TableName: e.tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
      ExpressionAttributeValues: { ':pk': pk, ':prefix': skPrefix },
      ConsistentRead: true,
    }),
  );
  return Items.filter((item) => item.type === 'message').map((item) => ({
    id: item.id as string,
    seq: item.seq as number,
    ref: item.ref as string,
  }));
}

/** The contract: `ack` stored once under its id and seq, delivered once to bob (WebSocket) and carol (MQTT). */
async function expectOnce(s: Scene, acks: Ack[]): Promise<void> {
  await barrier(s.alice, s.bob, s.carol);
  const ids = acks.map((a) => a.id);
  expect(wsChats(s.bob, s.room)).toEqual(ids);
  expect(mqttChats(s.carol, s.room)).toEqual(ids);
  // The sender has the ack, never an echo.
  expect(wsChats(s.alice, s.room)).toEqual([]);
  const messages = await stored(s.e, s.room);
  expect(messages.map((m) => [m.id, m.seq, m.ref])).toEqual(acks.map((a) => [a.id, a.seq, a.ref]));
}

function send(client: TestClient | MqttPeer, room: string, id: string, text = id) {
  return client.request({ action: 'send', room, id, body: { text } });
}

/** Queues one batch to alice and bob, as a large announcement's fan-out does, and returns its frame. */
async function queueBatch(e: Emulator, s: Scene, batchId: string): Promise<AnnouncementFrame> {
  const queue = new SqsFanoutQueue({
    queueUrl: e.fanoutQueueUrl as string,
    endpoint: e.sqsEndpoint,
    region: 'us-east-1',
    credentials: CREDENTIALS,
    log: createLogger('silent'),
  });
  closers.push(async () => queue.client.destroy());
  const frame: AnnouncementFrame = { type: 'announcement', id: `a-${batchId}`, ts: clock(), from: 'backend', body: {} };
  const targets = [s.alice, s.bob].map((client) => ({ connectionId: connectionOf(e, client), sub: client.name }));
  await queue.enqueue([{ batchId, frame, targets, attempt: 1 }]);
  return frame;
}

/** How many times a client got the announcement. */
function announcements(client: TestClient, id: string): number {
  return client.received.filter((f) => f.type === 'announcement' && f.id === id).length;
}

/** The gateway's id of a test client's connection. */
function connectionOf(e: Emulator, client: TestClient): string {
  const id = e.gateway.connectionIds().find((c) => e.gateway.userOf(c) === client.name);
  if (id === undefined) throw new Error(`${client.name} is not connected`);
  return id;
}

describe('DynamoDB faults', () => {
  it('throttled and failing calls are retried by the SDK: stored once, delivered once on both channels', async () => {
    const s = await scene();
    const f = faults(emulator);
    // The sender's subscription check fails once with a 500, the message write is throttled once.
    const check = f.add({
      target: 'dynamodb',
      match: { operation: 'GetItem', partitionKeyPrefix: `ROOM#${s.room}`, sortKeyPrefix: 'SUB#' },
      fault: 'server-error',
      times: 1,
    });
    const write = f.add({
      target: 'dynamodb',
      match: { operation: 'PutItem', partitionKeyPrefix: `MSGS#${s.room}`, sortKeyPrefix: 'SEQ#' },
      fault: 'throttle',
      times: 1,
    });

    const ack = (await send(s.alice, s.room, 'm1')) as Ack;

    expect(ack).toMatchObject({ type: 'ack', ref: 'm1', seq: 1 });
    expect(ack.duplicate).toBeUndefined();
    expect(f.get(check.id)).toMatchObject({ fired: 1, active: false });
    expect(f.get(write.id)).toMatchObject({ fired: 1, active: false });
    await expectOnce(s, [ack]);
  });

  it('persistent throttling of the message write: the sender gets `internal`, nothing is stored or delivered; the resend succeeds once', async () => {
    const s = await scene();
    const f = faults(emulator);
    const rule = f.add({
      target: 'dynamodb',
      match: { operation: 'PutItem', partitionKeyPrefix: `MSGS#${s.room}`, sortKeyPrefix: 'SEQ#' },
      fault: 'throttle',
    });

    const refused = await send(s.alice, s.room, 'm1');

    expect(refused).toMatchObject({ type: 'error', code: 'internal', ref: 'm1', action: 'send' });
    // Every attempt of the handler's DynamoDB client, then the handler's answer.
    expect(f.get(rule.id)?.fired).toBe(await dynamoDbAttempts());
    await barrier(s.bob, s.carol);
    expect(wsChats(s.bob, s.room)).toEqual([]);
    expect(mqttChats(s.carol, s.room)).toEqual([]);
    expect(await stored(s.e, s.room)).toEqual([]);

    f.remove(rule.id);
    // At once: the failed request released its claim (no `conflict`, no waiting for it to go stale).
    const ack = (await send(s.alice, s.room, 'm1')) as Ack;
    expect(ack).toMatchObject({ type: 'ack', ref: 'm1' });
    expect(ack.duplicate).toBeUndefined();
    const again = (await send(s.alice, s.room, 'm1')) as Ack;
    expect(again).toMatchObject({ type: 'ack', id: ack.id, seq: ack.seq, duplicate: true });
    await expectOnce(s, [ack]);
  });

  it('a 500 on every read of the subscriptions after the message is stored: `internal`; the resend delivers it once, same id and seq', async () => {
    const s = await scene();
    const f = faults(emulator);
    const rule = f.add({
      target: 'dynamodb',
      match: { operation: 'Query', partitionKeyPrefix: `ROOM#${s.room}`, sortKeyPrefix: 'SUB#' },
      fault: 'server-error',
    });

    expect(await send(s.alice, s.room, 'm1')).toMatchObject({ type: 'error', code: 'internal', ref: 'm1' });
    expect(f.get(rule.id)?.fired).toBe(await dynamoDbAttempts());
    const [kept] = await stored(s.e, s.room);
    await barrier(s.bob, s.carol);
    expect(wsChats(s.bob, s.room)).toEqual([]);

    f.remove(rule.id);
    const ack = (await send(s.alice, s.room, 'm1')) as Ack;
    // The stored message is the one acknowledged, not a second copy under a new seq.
    expect(ack).toMatchObject({ type: 'ack', ref: 'm1', id: kept?.id, seq: kept?.seq });
    await expectOnce(s, [ack]);
  });
});

describe('@connections faults', () => {
  it('429, 429 then 500 for one member: retried with backoff, delivered once; the others unaffected', async () => {
    const s = await scene();
    const f = faults(emulator);
    const bobId = connectionOf(s.e, s.bob);
    const throttled = f.add({ target: 'connections', match: { connectionId: bobId }, fault: '429', times: 2 });
    const failing = f.add({ target: 'connections', match: { connectionId: bobId }, fault: '500', times: 1 });

    const ack = (await send(s.alice, s.room, 'm1')) as Ack;

    expect(f.get(throttled.id)?.fired).toBe(2);
    expect(f.get(failing.id)?.fired).toBe(1);
    await expectOnce(s, [ack]);
  });

  it('410 for one member: its stale connection is removed, the others still get every message once', async () => {
    const s = await scene();
    const dave = await ws(s.e, `dave-${counter}`);
    await dave.request({ action: 'join', room: s.room });
    const f = faults(emulator);
    const bobId = connectionOf(s.e, s.bob);
    const gone = f.add({
      target: 'connections',
      match: { operation: 'PostToConnection', connectionId: bobId },
      fault: '410',
    });

    const first = (await send(s.alice, s.room, 'm1')) as Ack;
    const second = (await send(s.alice, s.room, 'm2')) as Ack;

    // Only the first post was answered 410: the connection and its subscription went with it.
    expect(f.get(gone.id)?.fired).toBe(1);
    const record = await table(s.e).send(new GetCommand({ TableName: s.e.tableName, Key: keys.connection(bobId) }));
    expect(record.Item).toBeUndefined();
    await barrier(s.alice, dave, s.carol);
    expect(wsChats(dave, s.room)).toEqual([first.id, second.id]);
    expect(mqttChats(s.carol, s.room)).toEqual([first.id, second.id]);
    expect((await stored(s.e, s.room)).map((m) => m.id)).toEqual([first.id, second.id]);
  });

  it('a member whose posts fail every attempt misses the live frame, never gets it twice, and finds it once in history', async () => {
    const s = await scene();
    const f = faults(emulator);
    const bobId = connectionOf(s.e, s.bob);
    const rule = f.add({ target: 'connections', match: { connectionId: bobId }, fault: '500' });

    const ack = (await send(s.alice, s.room, 'm1')) as Ack;

    // The sender's request never fails for a delivery: acked after the delivery's four attempts.
    expect(f.get(rule.id)?.fired).toBe(LIMITS.deliveryMaxAttempts);
    f.remove(rule.id);
    await barrier(s.bob, s.carol);
    expect(wsChats(s.bob, s.room)).toEqual([]);
    expect(mqttChats(s.carol, s.room)).toEqual([ack.id]);
    const page = await s.bob.request({ action: 'history', room: s.room });
    expect((page as Extract<ServerFrame, { type: 'history' }>).messages.map((m) => m.id)).toEqual([ack.id]);
  });
});

describe('IoT publish faults', () => {
  it('503, 429 and 500 on an MQTT member topic: retried, delivered once', async () => {
    const s = await scene();
    const f = faults(emulator);
    const topic = topics.userRoom(s.carol.sub, s.room);
    const rules = (['503', '429', '500'] as const).map((fault) =>
      f.add({ target: 'iot-publish', match: { topic }, fault, times: 1 }),
    );

    const ack = (await send(s.alice, s.room, 'm1')) as Ack;

    expect(rules.map((r) => f.get(r.id)?.fired)).toEqual([1, 1, 1]);
    await expectOnce(s, [ack]);
  });

  it("the MQTT sender's answer cannot be published: it resends, and the message is stored and delivered once", async () => {
    const s = await scene();
    const f = faults(emulator);
    const lost = f.add({
      target: 'iot-publish',
      match: { topic: topics.responses(s.carol.sub) },
      fault: '500',
      times: LIMITS.deliveryMaxAttempts,
    });

    await s.carol.client.publishAsync(
      topics.requests(s.carol.sub),
      JSON.stringify({ action: 'send', room: s.room, id: 'c1', body: { text: 'c1' } }),
      { qos: 1 },
    );
    await f.whenFired(lost.id, LIMITS.deliveryMaxAttempts);
    const resent = (await send(s.carol, s.room, 'c1')) as Ack;

    expect(resent).toMatchObject({ type: 'ack', ref: 'c1', duplicate: true });
    await barrier(s.alice, s.bob, s.carol);
    const responses = topics.responses(s.carol.sub);
    const acks = s.carol.received.filter(
      (m) => m.topic === responses && m.frame.type === 'ack' && m.frame.ref === 'c1',
    );
    expect(acks).toHaveLength(1);
    expect(wsChats(s.alice, s.room)).toEqual([resent.id]);
    expect(wsChats(s.bob, s.room)).toEqual([resent.id]);
    expect((await stored(s.e, s.room)).map((m) => [m.id, m.seq])).toEqual([[resent.id, resent.seq]]);
  });
});

describe('Lambda faults', () => {
  it("ws-routes fails: API Gateway's Internal server error frame, nothing stored; the resend stores and delivers once", async () => {
    const s = await scene();
    const f = faults(emulator);
    f.add({ target: 'handler', match: { handler: 'ws-routes', route: 'send' }, fault: 'error', times: 1 });

    const answer = s.alice.next((frame) => !('type' in frame));
    s.alice.sendRaw(JSON.stringify({ action: 'send', room: s.room, id: 'm1', body: { text: 'm1' } }));

    expect((await answer) as unknown as GatewayError).toMatchObject({ message: 'Internal server error' });
    expect(await stored(s.e, s.room)).toEqual([]);
    const ack = (await send(s.alice, s.room, 'm1')) as Ack;
    expect(ack.duplicate).toBeUndefined();
    await expectOnce(s, [ack]);
  });

  it('ws-routes times out after doing its work: Endpoint request timed out; the resend gets the same ack and delivers nothing again', async () => {
    const s = await scene();
    const f = faults(emulator);
    f.add({ target: 'handler', match: { handler: 'ws-routes', route: 'send' }, fault: 'timeout', times: 1 });

    const answer = s.alice.next((frame) => !('type' in frame));
    s.alice.sendRaw(JSON.stringify({ action: 'send', room: s.room, id: 'm1', body: { text: 'm1' } }));

    expect((await answer) as unknown as GatewayError).toMatchObject({ message: 'Endpoint request timed out' });
    const ack = (await send(s.alice, s.room, 'm1')) as Ack;
    expect(ack).toMatchObject({ type: 'ack', ref: 'm1', duplicate: true });
    await expectOnce(s, [ack]);
  });

  it("iot-ingress fails once: Lambda's asynchronous retry runs the request, acked, stored and delivered once", async () => {
    const s = await scene();
    const f = faults(emulator);
    const rule = f.add({ target: 'handler', match: { handler: 'iot-ingress' }, fault: 'error', times: 1 });

    const ack = (await send(s.carol, s.room, 'c1')) as Ack;

    expect(f.get(rule.id)?.fired).toBe(1);
    expect(ack).toMatchObject({ type: 'ack', ref: 'c1' });
    await barrier(s.alice, s.bob, s.carol);
    expect(wsChats(s.alice, s.room)).toEqual([ack.id]);
    expect(wsChats(s.bob, s.room)).toEqual([ack.id]);
    expect((await stored(s.e, s.room)).map((m) => m.id)).toEqual([ack.id]);
  });

  it("iot-ingress times out after its work: Lambda's retry answers a duplicate ack and delivers nothing again", async () => {
    const s = await scene();
    const f = faults(emulator);
    f.add({ target: 'handler', match: { handler: 'iot-ingress' }, fault: 'timeout', times: 1 });

    const first = (await send(s.carol, s.room, 'c1')) as Ack;
    const retried = (await s.carol.response('c1')) as Ack;

    expect(first.duplicate).toBeUndefined();
    expect(retried).toMatchObject({ type: 'ack', id: first.id, seq: first.seq, duplicate: true });
    await barrier(s.alice, s.bob, s.carol);
    expect(wsChats(s.alice, s.room)).toEqual([first.id]);
    expect(wsChats(s.bob, s.room)).toEqual([first.id]);
    expect((await stored(s.e, s.room)).map((m) => m.id)).toEqual([first.id]);
  });
});

describe('fan-out worker faults (SQS redelivery)', () => {
  async function expectEachOnce(e: Emulator, s: Scene, frame: AnnouncementFrame): Promise<void> {
    await e.fanoutQueue?.idle();
    await barrier(s.alice, s.bob);
    expect([announcements(s.alice, frame.id), announcements(s.bob, frame.id)]).toEqual([1, 1]);
  }

  it('the worker fails, then times out after delivering: each batch is redelivered by the queue and reaches each target once', async () => {
    const s = await scene();
    const f = faults(emulator);
    const queue = emulator.fanoutQueue;
    const before = { ...queue?.stats };
    const failed = f.add({ target: 'handler', match: { handler: 'fanout-worker' }, fault: 'error', times: 1 });
    await expectEachOnce(emulator, s, await queueBatch(emulator, s, `b${counter}-error`));
    const late = f.add({ target: 'handler', match: { handler: 'fanout-worker' }, fault: 'timeout', times: 1 });
    await expectEachOnce(emulator, s, await queueBatch(emulator, s, `b${counter}-timeout`));

    expect([f.get(failed.id)?.fired, f.get(late.id)?.fired]).toEqual([1, 1]);
    // Two messages, each received twice: failed once, then processed (the late one found its batch done).
    expect(queue?.stats.received).toBe((before.received ?? 0) + 4);
    expect(queue?.stats.failed).toBe((before.failed ?? 0) + 2);
    expect(queue?.stats.deadLettered).toBe(before.deadLettered);
  });

  it('a target whose posts fail every attempt is re-queued alone and reached once; the other target is not posted again', async () => {
    const s = await scene();
    const f = faults(emulator);
    const bobId = connectionOf(emulator, s.bob);
    const rule = f.add({
      target: 'connections',
      match: { connectionId: bobId },
      fault: '500',
      times: LIMITS.deliveryMaxAttempts,
    });

    await expectEachOnce(emulator, s, await queueBatch(emulator, s, `b${counter}-requeue`));
    expect(f.get(rule.id)?.fired).toBe(LIMITS.deliveryMaxAttempts);
  });
});

describe('calls that never answer (the Lambda runs into its timeout)', () => {
  it('DynamoDB hangs on the message write: Endpoint request timed out; once the claim is stale the resend stores and delivers once', async () => {
    const s = await scene(hung);
    const f = faults(hung);
    f.add({
      target: 'dynamodb',
      match: { operation: 'PutItem', partitionKeyPrefix: `MSGS#${s.room}`, sortKeyPrefix: 'SEQ#' },
      fault: 'timeout',
      times: 1,
    });

    const answer = s.alice.next((frame) => !('type' in frame));
    s.alice.sendRaw(JSON.stringify({ action: 'send', room: s.room, id: 'm1', body: { text: 'm1' } }));
    expect((await answer) as unknown as GatewayError).toMatchObject({ message: 'Endpoint request timed out' });
    // The frozen invocation holds the claim; a resend takes it over once it is older than any request can live.
    skewMs += LIMITS.dedupeClaimStaleMs + 1_000;

    const ack = (await send(s.alice, s.room, 'm1')) as Ack;
    expect(ack).toMatchObject({ type: 'ack', ref: 'm1' });
    expect(ack.duplicate).toBeUndefined();
    await expectOnce(s, [ack]);
  });

  it('DynamoDB hangs on the batch claim: the worker times out, the queue redelivers, each target gets the batch once', async () => {
    const s = await scene(hung);
    const f = faults(hung);
    const queue = hung.fanoutQueue;
    const failedBefore = queue?.stats.failed ?? 0;
    const rule = f.add({
      target: 'dynamodb',
      match: { operation: 'PutItem', partitionKeyPrefix: 'BATCH#' },
      fault: 'timeout',
      times: 1,
    });
    const frame = await queueBatch(hung, s, `hung-${counter}`);
    await queue?.idle();
    await barrier(s.alice, s.bob);

    expect(f.get(rule.id)?.fired).toBe(1);
    expect(queue?.stats.failed).toBe(failedBefore + 1);
    expect([announcements(s.alice, frame.id), announcements(s.bob, frame.id)]).toEqual([1, 1]);
  });
});

describe('the emulator is killed (SIGKILL) and restarted on the same data', () => {
  const root = new URL('../../', import.meta.url).pathname;

  function freePort(): Promise<number> {
    const server = createServer();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
  }

  /** `npm start` in a child process; resolves once its banner says it runs. */
  async function start(port: number, dataDir: string): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [
        // tsx as a loader of this very process: its CLI would run the emulator in a grandchild SIGKILL misses.
        '--import',
        'tsx',
        '--conditions=viba-source',
        'local/src/cli.ts',
        'start',
        '--port',
        String(port),
        '--mqtt-port',
        '0',
        '--data',
        dataDir,
        '--log-level',
        'error',
      ],
      { cwd: root, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
    );
    closers.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('emulator is running')) resolve();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.once('exit', (code) => reject(new Error(`the emulator exited (${code}) before it ran:\n${output}`)));
    });
    return child;
  }

  it('keeps every acknowledged message once, continues the seq, and the SDK clients get every message once', async () => {
    const port = await freePort();
    const dataDir = await mkdtemp(join(tmpdir(), 'viba-faults-'));
    closers.push(() => rm(dataDir, { recursive: true, force: true }));
    const base = `http://127.0.0.1:${port}`;
    const first = await start(port, dataDir);
    const config = await (await fetch(`${base}/dev/client-config`)).json();
    const client = (sub: string, transport: 'websocket' | 'mqtt'): RealtimeClient => {
      const c = createRealtimeClient({
        config,
        transport,
        getToken: async () =>
          ((await (await fetch(`${base}/dev/token?sub=${sub}`)).json()) as { idToken: string }).idToken,
        WebSocket,
        reconnect: { initialDelayMs: 50, maxDelayMs: 250 },
      });
      closers.push(async () => c.close());
      return c;
    };
    const alice = client('alice', 'websocket');
    const bob = client('bob', 'mqtt');
    const aliceRoom = alice.join('crash');
    const bobRoom = bob.join('crash');
    const heard: string[] = [];
    let heardAll: (() => void) | undefined;
    bobRoom.on('message', (m) => {
      heard.push(m.id);
      if (heard.length === 5) heardAll?.();
    });
    await Promise.all([aliceRoom.ready(), bobRoom.ready()]);

    const before = [];
    for (const text of ['one', 'two', 'three']) before.push(await aliceRoom.send({ text }));
    const dropped = Promise.all(
      [alice, bob].map(
        (c) =>
          new Promise<void>((resolve) => {
            const off = c.on('reconnecting', () => {
              off();
              resolve();
            });
          }),
      ),
    );
    first.kill('SIGKILL');
    await once(first, 'exit');
    // Both saw their connection die, so the sends below wait for the new emulator instead of going nowhere.
    await dropped;

    const second = await start(port, dataDir);
    const after = [];
    for (const text of ['four', 'five']) after.push(await aliceRoom.send({ text }));
    if (heard.length < 5) await new Promise<void>((resolve) => (heardAll = resolve));

    const sent = [...before, ...after];
    expect(sent.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(sent.every((m) => !m.duplicate)).toBe(true);
    expect(heard).toEqual(sent.map((m) => m.id));
    const { dynamodbEndpoint, tableName } = (await (await fetch(`${base}/dev/config`)).json()) as {
      dynamodbEndpoint: string;
      tableName: string;
    };
    const messages = await stored({ dynamodbEndpoint, tableName }, 'crash');
    expect(messages.map((m) => [m.id, m.seq])).toEqual(sent.map((m) => [m.id, m.seq]));

    alice.close();
    bob.close();
    second.kill('SIGTERM');
    await once(second, 'exit');
  });
});
