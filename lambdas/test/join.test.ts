import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import type { Caller, CoreDeps } from '../src/core/deps.js';
import type { Store } from '../src/core/ports.js';
import { join } from '../src/core/rooms.js';
import { send } from '../src/core/send.js';
import { createLogger } from '../src/log.js';
import { localStore } from './support/local-store.js';
import { RecordingDelivery } from './support/recording-delivery.js';

let dynamo: LocalDynamoDb;
const now = Date.UTC(2026, 10, 26);
const clock = () => now;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb({ tableName: 'join-race', clock });
});
afterAll(() => dynamo.close());

function caller(sub: string): Caller {
  return {
    connectionId: `conn-${sub}`,
    sub,
    username: sub,
    groups: [],
    tokenExp: Math.floor(now / 1000) + 3600,
    connectedAt: now,
  };
}

describe('join', () => {
  it('acks a seq that covers a message sent while the join was subscribing, or delivers it', async () => {
    const store = localStore(dynamo, clock);
    const delivery = new RecordingDelivery();
    const deps = (s: Store): CoreDeps => ({ store: s, delivery, clock, log: createLogger('silent') });
    const room = 'race';
    const alice = caller('alice');
    const bob = caller('bob');
    await join(deps(store), alice, { action: 'join', room, id: 'ja' });
    // Bob's join reads the room, then alice's send runs to its end, then bob's subscription is written.
    let sent: number | undefined;
    const racing = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'subscribe' || typeof value !== 'function')
          return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<Store['subscribe']>) => {
          const ack = await send(deps(store), alice, { action: 'send', room, id: 'm1', body: { text: 'meanwhile' } });
          sent = ack.seq;
          return value.apply(target, args);
        };
      },
    });

    const ack = await join(deps(racing), bob, { action: 'join', room, id: 'jb' });

    expect(sent).toBe(1);
    const deliveredToBob = delivery.posts.some(
      (p) => p.connectionId === bob.connectionId && p.frame.type === 'chat' && p.frame.seq === sent,
    );
    expect(deliveredToBob || (ack.seq ?? 0) >= (sent ?? 0)).toBe(true);
    store.destroy();
  });
});
