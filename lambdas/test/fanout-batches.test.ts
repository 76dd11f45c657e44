/**
 * Large fan-outs: an announcement to a simulated audience of 10,000 WebSocket connections is split into
 * batches on the queue, and the worker core delivers each connection exactly one copy, through duplicate
 * queue deliveries, failed posts and a worker that dies mid-batch. The store is real (the emulator's
 * DynamoDB-API server); the audience listing, the queue and `@connections` are simulated (10,000 sockets are
 * a load test's business: bench/ and the reliability suite).
 */
import { AUDIENCE_ALL, AUDIENCE_SHARDS, LIMITS, type ServerFrame } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import { announce } from '../src/core/announcements.js';
import { runFanoutBatch, splitIntoBatches } from '../src/core/batches.js';
import type { CoreDeps } from '../src/core/deps.js';
import { announcePresence } from '../src/core/fanout.js';
import {
  type Delivery,
  type DeliveryOutcome,
  type DeliveryTarget,
  type FanoutBatch,
  FanoutEnqueueError,
  type FanoutQueue,
  type Store,
  type SubscriptionRecord,
} from '../src/core/ports.js';
import { sendAsBackend } from '../src/core/send.js';
import { createLogger } from '../src/log.js';
import { localStore } from './support/local-store.js';

const AUDIENCE = 10_000;

/** Records every post; `failFirst` connection ids fail on their first post only. */
class RecordingDelivery implements Delivery {
  readonly copies = new Map<string, number>();
  readonly failFirst = new Set<string>();
  posts = 0;
  async post({ connectionId }: DeliveryTarget, _frame: ServerFrame): Promise<DeliveryOutcome> {
    this.posts += 1;
    if (this.failFirst.delete(connectionId)) return 'failed';
    this.copies.set(connectionId, (this.copies.get(connectionId) ?? 0) + 1);
    return 'delivered';
  }
  async close(): Promise<void> {}
}

class WorkerCrash extends Error {}

/** The queue: what was enqueued, in order. */
class CollectingQueue implements FanoutQueue {
  readonly batches: FanoutBatch[] = [];
  async enqueue(batches: readonly FanoutBatch[]): Promise<void> {
    // As SQS does: the message is a copy (JSON), not the sender's object.
    this.batches.push(...batches.map((b) => JSON.parse(JSON.stringify(b)) as FanoutBatch));
  }
}

let dynamo: LocalDynamoDb;
let now = Date.UTC(2026, 10, 25);
const clock = () => now;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb({ tableName: 'fanout-batches', clock });
});
afterAll(() => dynamo.close());

const audience: DeliveryTarget[] = Array.from({ length: AUDIENCE }, (_, i) => ({
  connectionId: `conn-${i}`,
  sub: `user-${i % 997}`,
}));

function setup() {
  const real = localStore(dynamo, clock);
  // The simulated audience: the directory lists it, split over the shards as the real one is.
  const store: Store = Object.create(real, {
    listAudienceShard: {
      value: async (name: string, shard: number) =>
        name === AUDIENCE_ALL ? audience.filter((_, i) => i % AUDIENCE_SHARDS === shard) : [],
    },
  });
  const delivery = new RecordingDelivery();
  const queue = new CollectingQueue();
  const deps: CoreDeps = { store, delivery, queue, clock, log: createLogger('silent') };
  return { deps, delivery, queue };
}

/** Drains the queue as the worker fleet would, including batches re-queued meanwhile. */
async function drain(deps: CoreDeps, queue: CollectingQueue): Promise<void> {
  for (let i = 0; i < queue.batches.length; i++) await runFanoutBatch(deps, queue.batches[i] as FanoutBatch);
}

describe('an announcement to 10,000 WebSocket connections', () => {
  it('is split into batches of LIMITS.fanoutBatchSize, and every connection gets exactly one copy', async () => {
    const { deps, delivery, queue } = setup();
    const outcome = await announce(deps, { body: { text: 'maintenance at 2 am' }, from: 'backend' });
    expect(outcome).toMatchObject({ connections: AUDIENCE, delivered: 0, batches: AUDIENCE / LIMITS.fanoutBatchSize });
    expect(queue.batches).toHaveLength(20);
    expect(queue.batches.every((b) => b.targets.length === LIMITS.fanoutBatchSize && b.attempt === 1)).toBe(true);
    expect(delivery.posts).toBe(0);

    await drain(deps, queue);
    expect(delivery.copies.size).toBe(AUDIENCE);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
    expect(delivery.posts).toBe(AUDIENCE);
  });

  it('a batch delivered twice by the queue runs once', async () => {
    const { deps, delivery, queue } = setup();
    await announce(deps, { body: { text: 'twice' }, from: 'backend' });
    const first = queue.batches[0] as FanoutBatch;
    expect(await runFanoutBatch(deps, first)).toMatchObject({ state: 'done' });
    expect(await runFanoutBatch(deps, first)).toEqual({ state: 'skipped', reason: 'done' });
    expect(delivery.posts).toBe(LIMITS.fanoutBatchSize);
  });

  it('re-queues only the failed connections, as a smaller batch, and delivers them on the next attempt', async () => {
    const { deps, delivery, queue } = setup();
    await announce(deps, { body: { text: 'flaky' }, from: 'backend' });
    for (const id of ['conn-3', 'conn-4000', 'conn-9999']) delivery.failFirst.add(id);
    await drain(deps, queue);
    const retries = queue.batches.filter((b) => b.attempt === 2);
    expect(retries.flatMap((b) => b.targets.map((t) => t.connectionId)).sort()).toEqual([
      'conn-3',
      'conn-4000',
      'conn-9999',
    ]);
    expect(retries.every((b) => /\/2$/.test(b.batchId))).toBe(true);
    expect(delivery.copies.size).toBe(AUDIENCE);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });

  it('gives up on a connection after LIMITS.fanoutMaxAttempts, without re-queuing it forever', async () => {
    const { deps, delivery, queue } = setup();
    const target = { connectionId: 'always-failing', sub: 'u' };
    const alwaysFails: Delivery = { post: async () => 'failed', close: async () => {} };
    const failing: CoreDeps = { ...deps, delivery: alwaysFails };
    await queue.enqueue([{ batchId: 'give-up.0', frame: { type: 'pong', ts: 1 }, targets: [target], attempt: 1 }]);
    await drain(failing, queue);
    expect(queue.batches.map((b) => b.attempt)).toEqual([1, 2, 3]);
    expect(delivery.posts).toBe(0);
  });

  it('a worker that dies mid-batch is taken over after the claim goes stale, from its checkpoint', async () => {
    const { deps, delivery, queue } = setup();
    await announce(deps, { body: { text: 'crash' }, from: 'backend' });
    const batch = queue.batches[0] as FanoutBatch;
    // The worker dies (here: its 4th checkpoint write fails) after posting its 4th slice. A dead worker cannot
    // give its claim up, so its release never reaches the table either.
    let checkpoints = 0;
    const dying: CoreDeps = {
      ...deps,
      store: Object.create(deps.store, {
        checkpointBatch: {
          value: async (id: string, done: number) => {
            if (++checkpoints === 4) throw new WorkerCrash('the worker died');
            return deps.store.checkpointBatch(id, done);
          },
        },
        releaseBatch: {
          value: async () => {
            throw new WorkerCrash('the worker is dead');
          },
        },
      }),
    };
    await expect(runFanoutBatch(dying, batch)).rejects.toThrow('the worker died');
    expect(delivery.posts).toBe(4 * LIMITS.deliveryConcurrency);
    // Another copy of the message while the first claim is fresh: left to the (presumed live) first worker.
    expect(await runFanoutBatch(deps, batch)).toEqual({ state: 'skipped', reason: 'running' });
    now += LIMITS.fanoutClaimStaleMs + 1;
    const resumed = await runFanoutBatch(deps, batch);
    expect(resumed).toMatchObject({ state: 'done', resumedAt: 3 * LIMITS.deliveryConcurrency });
    expect(delivery.copies.size).toBe(LIMITS.fanoutBatchSize);
    // Only the slice in flight at the crash can have been posted twice.
    const twice = [...delivery.copies.values()].filter((n) => n > 1).length;
    expect(twice).toBe(LIMITS.deliveryConcurrency);
  });

  it('a worker that fails (its checkpoint write refused) gives the batch up with its progress: the retry runs at once, no target twice', async () => {
    const { deps, delivery, queue } = setup();
    await announce(deps, { body: { text: 'failure' }, from: 'backend' });
    const batch = queue.batches[0] as FanoutBatch;
    let checkpoints = 0;
    const failing: CoreDeps = {
      ...deps,
      store: Object.create(deps.store, {
        checkpointBatch: {
          value: async (id: string, done: number) => {
            if (++checkpoints === 4) throw new WorkerCrash('ProvisionedThroughputExceededException');
            return deps.store.checkpointBatch(id, done);
          },
        },
      }),
    };
    await expect(runFanoutBatch(failing, batch)).rejects.toThrow('ProvisionedThroughputExceededException');

    // The queue's retry, without waiting for the claim to go stale.
    const retried = await runFanoutBatch(deps, batch);
    expect(retried).toMatchObject({ state: 'done', resumedAt: 4 * LIMITS.deliveryConcurrency });
    expect(delivery.copies.size).toBe(LIMITS.fanoutBatchSize);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });

  it('a connection whose token expired (its tokenExp travels in the queued batch) is told token_expired and closed, not given the announcement', async () => {
    const { deps } = setup();
    const nowSeconds = Math.floor(now / 1000);
    // Every 10th connection's token expired a second ago; its audience entry carries that expiry.
    const mixed: DeliveryTarget[] = audience.slice(0, 1_000).map((t, i) => ({
      ...t,
      tokenExp: i % 10 === 0 ? nowSeconds - 1 : nowSeconds + 3600,
    }));
    const store: Store = Object.create(deps.store, {
      listAudienceShard: {
        value: async (name: string, shard: number) =>
          name === AUDIENCE_ALL ? mixed.filter((_, i) => i % AUDIENCE_SHARDS === shard) : [],
      },
    });
    const frames = new Map<string, string[]>();
    const closed: string[] = [];
    const delivery: Delivery = {
      post: async ({ connectionId }, frame) => {
        frames.set(connectionId, [
          ...(frames.get(connectionId) ?? []),
          frame.type === 'error' ? frame.code : frame.type,
        ]);
        return 'delivered';
      },
      close: async (connectionId) => {
        closed.push(connectionId);
      },
    };
    const queue = new CollectingQueue();
    const worker: CoreDeps = { ...deps, store, delivery, queue };
    const outcome = await announce(worker, { body: { text: 'valid tokens only' }, from: 'backend' });
    expect(outcome.batches).toBe(2);
    let expired = 0;
    for (const batch of queue.batches) {
      const done = await runFanoutBatch(worker, batch);
      if (done.state === 'done') expired += done.result.expired;
    }
    const stale = mixed.filter((t) => (t.tokenExp ?? 0) <= nowSeconds).map((t) => t.connectionId);
    expect(expired).toBe(100);
    expect(closed.sort()).toEqual([...stale].sort());
    for (const id of stale) expect(frames.get(id)).toEqual(['token_expired']);
    const valid = mixed.filter((t) => !stale.includes(t.connectionId));
    for (const t of valid) expect(frames.get(t.connectionId)).toEqual(['announcement']);
  });
});

describe('an announcement whose batches the queue refuses', () => {
  it('runs them in the announcing invocation, so the audience still gets it live (a retry would be a duplicate)', async () => {
    const { deps, delivery } = setup();
    const refusing: FanoutQueue = {
      enqueue: async () => {
        throw new Error('SQS unavailable');
      },
    };
    const outcome = await announce(
      { ...deps, queue: refusing },
      { body: { text: 'still live' }, from: 'backend', key: 'k1' },
    );
    expect(outcome).toMatchObject({ connections: AUDIENCE, batches: 0, delivered: AUDIENCE });
    expect(delivery.copies.size).toBe(AUDIENCE);
    const again = await announce(deps, { body: { text: 'still live' }, from: 'backend', key: 'k1' });
    expect(again.duplicate).toBe(true);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('a chat message in a room past LIMITS.chatFanoutInlineMax connections', () => {
  const ROOM_SIZE = LIMITS.chatFanoutInlineMax + 1_000;
  /** Every 10th connection is MQTT, two per user (a phone and a laptop), each user's two 10 apart, so some users
   * straddle a multiple of the batch size; the rest WebSocket. */
  const mqttUser = (i: number) => `user-${Math.floor((i + 10) / 20)}`;
  const members: SubscriptionRecord[] = Array.from({ length: ROOM_SIZE }, (_, i) =>
    i % 10 === 0
      ? { room: 'town-hall', connectionId: `mqtt:${mqttUser(i)}.d${((i + 10) / 10) % 2}`, sub: mqttUser(i) }
      : { room: 'town-hall', connectionId: `ws-${i}`, sub: `ws-user-${i}` },
  );
  const mqttUsers = new Set(members.filter((m) => m.connectionId.startsWith('mqtt:')).map((m) => m.sub));

  async function roomSetup(size = ROOM_SIZE) {
    const { deps, delivery, queue } = setup();
    const room = `town-hall-${size}-${Math.random().toString(36).slice(2, 8)}`;
    await deps.store.createRoom({ room, visibility: 'public', owner: 'backend', createdAt: now });
    const store: Store = Object.create(deps.store, {
      listRoomSubscriptions: { value: async () => members.slice(0, size).map((m) => ({ ...m, room })) },
    });
    return { deps: { ...deps, store }, delivery, queue, room };
  }

  it('goes through the queue in batches, and every connection gets exactly one copy', async () => {
    const { deps, delivery, queue, room } = await roomSetup();
    const ack = await sendAsBackend(deps, 'backend', {
      action: 'send',
      id: 'big-1',
      room,
      body: { text: 'all hands' },
    });
    expect(ack).toMatchObject({ type: 'ack', action: 'send', seq: 1 });
    expect(delivery.posts).toBe(0);
    expect(queue.batches.length).toBeGreaterThanOrEqual(Math.ceil(ROOM_SIZE / LIMITS.fanoutBatchSize));
    expect(queue.batches.every((b) => b.frame.type === 'chat' && b.frame.seq === 1)).toBe(true);
    await drain(deps, queue);
    expect(delivery.copies.size).toBe(ROOM_SIZE);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });

  it('keeps each MQTT user in one batch (MQTT is published once per user and frame)', async () => {
    const { deps, queue, room } = await roomSetup();
    await sendAsBackend(deps, 'backend', { action: 'send', id: 'big-2', room, body: { text: 'one publish each' } });
    const batchOf = new Map<string, Set<string>>();
    for (const batch of queue.batches) {
      expect(batch.targets.length).toBeLessThanOrEqual(LIMITS.fanoutBatchSize);
      for (const t of batch.targets.filter((t) => t.connectionId.startsWith('mqtt:'))) {
        batchOf.set(t.sub, (batchOf.get(t.sub) ?? new Set()).add(batch.batchId));
      }
    }
    expect(batchOf.size).toBe(mqttUsers.size);
    expect([...batchOf.values()].every((ids) => ids.size === 1)).toBe(true);
    // A split at the batch size would have put some user's two connections in two batches.
    const naive = Array.from({ length: Math.ceil(ROOM_SIZE / LIMITS.fanoutBatchSize) }, (_, i) =>
      members.slice(i * LIMITS.fanoutBatchSize, (i + 1) * LIMITS.fanoutBatchSize),
    );
    const splitByNaive = new Set(
      naive.flatMap((slice, i) => slice.filter((m) => m.sub.startsWith('user-')).map((m) => `${m.sub}@${i}`)),
    );
    expect(splitByNaive.size).toBeGreaterThan(mqttUsers.size);
  });

  it('is delivered inline when the queue refuses it: the message is stored, so it must reach the room', async () => {
    const { deps, delivery, room } = await roomSetup();
    const refusing: FanoutQueue = {
      enqueue: async () => {
        throw new Error('SQS unavailable');
      },
    };
    const ack = await sendAsBackend({ ...deps, queue: refusing }, 'backend', {
      action: 'send',
      id: 'big-3',
      room,
      body: { text: 'still delivered' },
    });
    expect(ack).toMatchObject({ type: 'ack', seq: 1 });
    expect(delivery.copies.size).toBe(ROOM_SIZE);
  });

  it('a queue that took some batches before failing: each batch runs exactly once, in a worker or here', async () => {
    const { deps, delivery, room } = await roomSetup();
    let workerRuns: unknown[] = [];
    const halfway: FanoutQueue = {
      enqueue: async (batches) => {
        // The first call went through and a fast worker ran its batches at once; then the connection broke.
        workerRuns = [];
        for (const batch of batches.slice(0, 5)) workerRuns.push(await runFanoutBatch(deps, batch));
        throw new Error('socket hang up');
      },
    };
    const ack = await sendAsBackend({ ...deps, queue: halfway }, 'backend', {
      action: 'send',
      id: 'big-4',
      room,
      body: { text: 'half queued' },
    });
    expect(ack).toMatchObject({ type: 'ack', seq: 1 });
    expect(workerRuns).toHaveLength(5);
    // Which batches were taken is unknown, so the send ran all: the five done by the worker were skipped.
    expect(delivery.copies.size).toBe(ROOM_SIZE);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });

  it('a queue that names the batches it refused: only those run here', async () => {
    const { deps, delivery, room } = await roomSetup();
    const taken = new CollectingQueue();
    const partial: FanoutQueue = {
      enqueue: async (batches) => {
        await taken.enqueue(batches.slice(1));
        const first = batches[0] as FanoutBatch;
        throw new FanoutEnqueueError([{ batchId: first.batchId, code: 'InternalError', message: undefined }]);
      },
    };
    await sendAsBackend({ ...deps, queue: partial }, 'backend', {
      action: 'send',
      id: 'big-5',
      room,
      body: { text: 'x' },
    });
    const firstBatch = new Set(
      splitIntoBatches('m', { type: 'pong', ts: 1 }, members)[0]?.targets.map((t) => t.connectionId),
    );
    expect([...delivery.copies.keys()].sort()).toEqual([...firstBatch].sort());
    await drain(deps, taken);
    expect(delivery.copies.size).toBe(ROOM_SIZE);
    expect([...delivery.copies.values()].every((n) => n === 1)).toBe(true);
  });

  it('a room of exactly LIMITS.chatFanoutInlineMax is delivered inline, without the queue', async () => {
    const { deps, delivery, queue, room } = await roomSetup(LIMITS.chatFanoutInlineMax);
    await sendAsBackend(deps, 'backend', { action: 'send', id: 'edge', room, body: { text: 'inline' } });
    expect(queue.batches).toEqual([]);
    expect(delivery.copies.size).toBe(LIMITS.chatFanoutInlineMax);
  });

  it('presence in such a room goes through the queue too: a join does not wait for thousands of posts', async () => {
    const { deps, delivery, queue, room } = await roomSetup();
    const joiner = members[1] as SubscriptionRecord;
    const store: Store = Object.create(deps.store, {
      listRoomSubscriptions: {
        value: async () => members.map((m) => ({ ...m, room, subscribedAt: m === joiner ? 0 : 1 })),
      },
    });
    await announcePresence({ ...deps, store }, room, joiner.sub, 'joined', joiner.connectionId);
    expect(delivery.posts).toBe(0);
    expect(queue.batches.every((b) => b.frame.type === 'presence')).toBe(true);
    await drain(deps, queue);
    expect(delivery.copies.size).toBe(ROOM_SIZE - 1);
    expect(delivery.copies.has(joiner.connectionId)).toBe(false);
  });

  it('splitIntoBatches never splits a user larger than a batch, and keeps WebSocket order', () => {
    const many: DeliveryTarget[] = [
      { connectionId: 'ws-a', sub: 'a' },
      ...Array.from({ length: LIMITS.fanoutBatchSize + 3 }, (_, i) => ({ connectionId: `mqtt:big.d${i}`, sub: 'big' })),
      { connectionId: 'ws-b', sub: 'b' },
    ];
    const batches = splitIntoBatches('m', { type: 'pong', ts: 1 }, many);
    expect(batches.map((b) => b.targets.length)).toEqual([1, LIMITS.fanoutBatchSize + 3, 1]);
    expect(batches.map((b) => b.batchId)).toEqual(['m.0', 'm.1', 'm.2']);
  });
});
