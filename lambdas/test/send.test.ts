/**
 * The send path's crash safety, on the real store (the emulator's DynamoDB-API server). A request is made
 * to stall or crash at each step by wrapping one store method; a retry with the same client id then
 * runs. Whatever happens, the room ends with exactly one message for the client id, and every ack names it.
 */
import type { ServerFrame } from '@viba-realtime/protocol';
import { ConflictError, LIMITS } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import type { Caller, CoreDeps } from '../src/core/deps.js';
import type { Delivery, DeliveryOutcome, DeliveryTarget, Store } from '../src/core/ports.js';
import { send } from '../src/core/send.js';
import { createLogger } from '../src/log.js';
import { localStore } from './support/local-store.js';

/** Records what would be posted; the send path's delivery itself is tested end to end in test/chat.test.ts. */
class RecordingDelivery implements Delivery {
  readonly posts: { connectionId: string; frame: ServerFrame }[] = [];
  async post({ connectionId }: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    this.posts.push({ connectionId, frame });
    return 'delivered';
  }
  async close(): Promise<void> {}
}

class Crash extends Error {}

let dynamo: LocalDynamoDb;
let now = Date.UTC(2026, 10, 25);
const clock = () => now;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb({ tableName: 'send-crash', clock });
});
afterAll(() => dynamo.close());

let roomCounter = 0;
async function setup() {
  const store = localStore(dynamo, clock);
  const room = `crash-${++roomCounter}`;
  await store.createRoom({ room, visibility: 'public', owner: 'alice', createdAt: now });
  const expiresAt = Math.floor(now / 1000) + 7200;
  await store.subscribe({ room, connectionId: 'sender', sub: 'alice' }, expiresAt);
  await store.subscribe({ room, connectionId: 'receiver', sub: 'bob' }, expiresAt);
  const delivery = new RecordingDelivery();
  const deps = (s: Store): CoreDeps => ({ store: s, delivery, clock, log: createLogger('silent') });
  const caller: Caller = {
    connectionId: 'sender',
    sub: 'alice',
    username: 'alice',
    groups: [],
    tokenExp: Math.floor(now / 1000) + 3600,
    connectedAt: now,
  };
  const frame = { action: 'send' as const, room, id: 'same', body: { text: 'once' } };
  return { store, delivery, deps, caller, frame, room };
}

/** A store whose `method` runs `behaviour` instead, once. */
function withFault<K extends keyof Store>(store: Store, method: K, behaviour: (original: Store[K]) => Store[K]): Store {
  let used = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const original = value.bind(target) as Store[K];
      if (prop !== method || used) return original;
      used = true;
      return behaviour(original);
    },
  });
}

describe('send survives a crash or stall at each step', () => {
  it('a stalled original that resumes after a takeover stores nothing', async () => {
    const { store, deps, caller, frame, room, delivery } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stalled!: () => void;
    const reachedSeq = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const stalling = withFault(store, 'nextSeq', (original) => async (r: string) => {
      stalled();
      await gate;
      return original(r);
    });
    const original = send(deps(stalling), caller, frame);
    await reachedSeq;
    now += LIMITS.dedupeClaimStaleMs + 1;

    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', seq: 1 });
    release();
    await expect(original).rejects.toBeInstanceOf(ConflictError);

    const again = await send(deps(store), caller, frame);
    expect(again).toMatchObject({ duplicate: true, seq: 1, id: retry.id });
    const history = await store.listMessages(room, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.id])).toEqual([[1, retry.id]]);
    expect(delivery.posts.filter((p) => p.frame.type === 'chat')).toHaveLength(1);
  });

  it('a crash before the message is stored is finished by the retry under a fresh seq', async () => {
    const { store, deps, caller, frame, room } = await setup();
    const crashing = withFault(store, 'putMessage', () => async () => {
      throw new Crash('crash at putMessage');
    });
    await expect(send(deps(crashing), caller, frame)).rejects.toBeInstanceOf(Crash);
    // Meanwhile someone else's message takes seq 2, and clients read past the gap at 1.
    await send(deps(store), { ...caller, sub: 'bob' }, { ...frame, id: 'other' });
    now += LIMITS.dedupeClaimStaleMs + 1;

    const retry = await send(deps(store), caller, frame);
    // Not seq 1: a client that resumed after seq 2 would never see it there.
    expect(retry).toMatchObject({ type: 'ack', seq: 3 });
    const again = await send(deps(store), caller, frame);
    expect(again).toMatchObject({ duplicate: true, seq: 3, id: retry.id });
    const history = await store.listMessages(room, { after: 2, limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.id, m.body])).toEqual([[3, retry.id, { text: 'once' }]]);
    expect((await store.listMessages(room, { limit: 10 })).messages.map((m) => m.seq)).toEqual([2, 3]);
  });

  it('a crash after the message is stored is finished by the retry with the stored message', async () => {
    const { store, deps, caller, frame, room } = await setup();
    const crashing = withFault(store, 'markStored', () => async () => {
      throw new Crash('crash at markStored');
    });
    await expect(send(deps(crashing), caller, frame)).rejects.toBeInstanceOf(Crash);
    now += LIMITS.dedupeClaimStaleMs + 1;

    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', seq: 1 });
    const again = await send(deps(store), caller, frame);
    expect(again).toMatchObject({ duplicate: true, seq: 1, id: retry.id });
    const history = await store.listMessages(room, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.id, m.body])).toEqual([[1, retry.id, { text: 'once' }]]);
  });

  it('a stalled original that wakes after its seq was abandoned cannot fill it', async () => {
    const { store, deps, caller, frame, room } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stalled!: () => void;
    const reachedPut = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const stalling = withFault(store, 'putMessage', (original) => async (m) => {
      stalled();
      await gate;
      return original(m);
    });
    const original = send(deps(stalling), caller, frame);
    await reachedPut;
    now += LIMITS.dedupeClaimStaleMs + 1;
    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', seq: 2 });
    release();
    await expect(original).rejects.toThrow();
    const history = await store.listMessages(room, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.id])).toEqual([[2, retry.id]]);
  });

  it('a failure before the message is stored releases the claim: the resend finishes at once, under a fresh seq', async () => {
    const { store, deps, caller, frame, room, delivery } = await setup();
    const failing = withFault(store, 'putMessage', () => async () => {
      throw new Crash('ProvisionedThroughputExceededException');
    });
    await expect(send(deps(failing), caller, frame)).rejects.toBeInstanceOf(Crash);

    // No time passes: the claim was given up, not left to go stale.
    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', seq: 2 });
    expect(retry.duplicate).toBeUndefined();
    const history = await store.listMessages(room, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.id])).toEqual([[2, retry.id]]);
    expect(delivery.posts.filter((p) => p.frame.type === 'chat')).toHaveLength(1);
  });

  it('a failure to read the subscriptions after storing: the resend delivers the stored message once, same id and seq', async () => {
    const { store, deps, caller, frame, room, delivery } = await setup();
    const failing = withFault(store, 'listRoomSubscriptions', () => async () => {
      throw new Crash('InternalServerError');
    });
    await expect(send(deps(failing), caller, frame)).rejects.toBeInstanceOf(Crash);
    const [kept] = (await store.listMessages(room, { limit: 10 })).messages;
    expect(delivery.posts).toHaveLength(0);

    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', id: kept?.id, seq: kept?.seq });
    expect(retry.duplicate).toBeUndefined();
    expect(delivery.posts.map((p) => p.connectionId)).toEqual(['receiver']);
    const again = await send(deps(store), caller, frame);
    expect(again).toMatchObject({ duplicate: true, id: kept?.id });
    expect(delivery.posts).toHaveLength(1);
  });

  it('a request that lost its claim to a takeover cannot release its successor', async () => {
    const { store, deps, caller, frame, room } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stalled!: () => void;
    const reachedPut = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const stalling = withFault(store, 'putMessage', (original) => async (m) => {
      stalled();
      await gate;
      return original(m);
    });
    const original = send(deps(stalling), caller, frame);
    await reachedPut;
    now += LIMITS.dedupeClaimStaleMs + 1;
    const retry = await send(deps(store), caller, frame);
    release();
    // Its put finds its seq abandoned and fails; its release must leave the retry's stored claim alone.
    await expect(original).rejects.toThrow();
    const again = await send(deps(store), caller, frame);
    expect(again).toMatchObject({ duplicate: true, id: retry.id, seq: retry.seq });
    expect((await store.listMessages(room, { limit: 10 })).messages.map((m) => m.id)).toEqual([retry.id]);
  });

  it('a crash between taking a seq and reserving it leaves a gap, not a duplicate', async () => {
    const { store, deps, caller, frame, room } = await setup();
    const crashing = withFault(store, 'reserveSeq', () => async () => {
      throw new Crash('crash at reserveSeq');
    });
    await expect(send(deps(crashing), caller, frame)).rejects.toBeInstanceOf(Crash);
    now += LIMITS.dedupeClaimStaleMs + 1;
    const retry = await send(deps(store), caller, frame);
    expect(retry).toMatchObject({ type: 'ack', seq: 2 });
    const history = await store.listMessages(room, { limit: 10 });
    expect(history.messages.map((m) => m.seq)).toEqual([2]);
  });
});
