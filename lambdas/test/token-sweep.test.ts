/**
 * The token sweep's core against the emulator's DynamoDB server: which connections it closes (expired tokens
 * only, a fair share per shard), what it tells them, and what it reports. `@connections` is a recording fake.
 */
import { AUDIENCE_SHARDS, audienceShardOf } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import type { CoreDeps } from '../src/core/deps.js';
import type { ConnectionRecord, Delivery } from '../src/core/ports.js';
import { sweepExpiredTokens } from '../src/core/token-sweep.js';
import { createLogger } from '../src/log.js';
import { localStore } from './support/local-store.js';
import { RecordingDelivery } from './support/recording-delivery.js';

let dynamo: LocalDynamoDb;
const now = Date.UTC(2026, 10, 26, 4, 0, 0);
const nowSeconds = now / 1000;
const clock = () => now;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb({ tableName: 'token-sweep', clock });
});
afterAll(() => dynamo.close());

let run = 0;
async function setup() {
  run += 1;
  const store = localStore(dynamo, clock);
  const delivery = new RecordingDelivery();
  const deps: CoreDeps = { store, delivery, clock, log: createLogger('silent') };
  /** A WebSocket connection in `shard` whose token expires `inSeconds` from now. */
  const connect = async (shard: number, inSeconds: number): Promise<string> => {
    let id = '';
    for (let i = 0; ; i++) {
      id = `r${run}-c${i}-${inSeconds}-${Math.random().toString(36).slice(2, 6)}`;
      if (audienceShardOf(id) === shard) break;
    }
    const record: ConnectionRecord = {
      connectionId: id,
      sub: `u-${id}`,
      username: 'u',
      groups: [],
      channel: 'ws',
      connectedAt: now - 3_600_000,
      tokenExp: nowSeconds + inSeconds,
      expiresAt: nowSeconds + 7200,
    };
    await store.putConnection(record);
    return id;
  };
  return { deps, delivery, connect };
}

describe('sweepExpiredTokens', () => {
  it('tells each connection past its token why, closes it, and leaves the others', async () => {
    const { deps, delivery, connect } = await setup();
    const expired = [await connect(1, -60), await connect(2, 0)];
    await connect(1, 1);
    const outcome = await sweepExpiredTokens(deps);
    expect(outcome).toEqual({ closed: 2, gone: 0, failed: 0, limited: false });
    expect(delivery.closed.sort()).toEqual([...expired].sort());
    for (const { frame } of delivery.posts) {
      expect(frame).toMatchObject({ type: 'error', code: 'token_expired', details: { expiredAt: expect.any(Number) } });
      expect(frame).not.toHaveProperty('ref');
    }
    // The store still lists them until `$disconnect` runs (API Gateway's, after the close); clean up as it would.
    for (const id of expired) await deps.store.deleteConnection(id);
  });

  it('removes a connection that is gone (no $disconnect ran) instead of closing it', async () => {
    const { deps, delivery, connect } = await setup();
    const vanished = await connect(5, -10);
    delivery.gone.add(vanished);
    expect(await sweepExpiredTokens(deps)).toEqual({ closed: 0, gone: 1, failed: 0, limited: false });
    expect(delivery.closed).toEqual([]);
    expect(await deps.store.getConnection(vanished)).toBeUndefined();
    expect(await sweepExpiredTokens(deps)).toMatchObject({ closed: 0, gone: 0 });
  });

  it('takes a fair share from each shard, and says when a shard had more than its share', async () => {
    const { deps, delivery, connect } = await setup();
    const max = AUDIENCE_SHARDS * 2;
    const busy = [await connect(7, -3), await connect(7, -2), await connect(7, -1)];
    const exact = [await connect(8, -2), await connect(8, -1)];
    const outcome = await sweepExpiredTokens(deps, { max });
    expect(outcome).toEqual({ closed: 4, gone: 0, failed: 0, limited: true });
    // Oldest expiry first within a shard.
    expect(delivery.closed.sort()).toEqual([busy[0], busy[1], ...exact].sort());
    for (const id of [...busy.slice(0, 2), ...exact]) await deps.store.deleteConnection(id);
    expect(await sweepExpiredTokens(deps, { max })).toEqual({ closed: 1, gone: 0, failed: 0, limited: false });
    await deps.store.deleteConnection(busy[2] as string);
  });

  it('counts a close that fails and keeps going; the next run finds that connection again', async () => {
    const { deps, delivery, connect } = await setup();
    const stuck = await connect(9, -1);
    const fine = await connect(10, -1);
    const failing: Delivery = {
      post: (target, frame) => delivery.post(target, frame),
      close: async (connectionId) => {
        if (connectionId === stuck) throw new Error('500 from @connections');
        await delivery.close(connectionId);
      },
    };
    expect(await sweepExpiredTokens({ ...deps, delivery: failing })).toEqual({
      closed: 1,
      gone: 0,
      failed: 1,
      limited: false,
    });
    await deps.store.deleteConnection(fine);
    expect(await sweepExpiredTokens(deps)).toEqual({ closed: 1, gone: 0, failed: 0, limited: false });
    expect(delivery.closed).toEqual([fine, stuck]);
    await deps.store.deleteConnection(stuck);
  });
});
