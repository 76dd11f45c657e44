import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import {
  isMqttConnectionId,
  MQTT_PENDING_SUBSCRIPTION_SECONDS,
  mqttConnected,
  mqttConnectionId,
  mqttDisconnected,
  subOfClientId,
} from '../src/core/connections.js';
import type { Caller, CoreDeps } from '../src/core/deps.js';
import { join } from '../src/core/rooms.js';
import { createLogger } from '../src/log.js';
import { localStore } from './support/local-store.js';
import { RecordingDelivery } from './support/recording-delivery.js';

let dynamo: LocalDynamoDb;
const now = Date.UTC(2026, 10, 25);
const clock = () => now;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb({ tableName: 'mqtt-lifecycle', clock });
});
afterAll(() => dynamo.close());

let counter = 0;
function setup() {
  const store = localStore(dynamo, clock);
  const delivery = new RecordingDelivery();
  const deps: CoreDeps = { store, delivery, clock, log: createLogger('silent') };
  const clientId = `user${++counter}.dev`;
  const event = (versionNumber: number) => ({ clientId, lifecycle: { versionNumber, timestamp: now + versionNumber } });
  const connectionId = mqttConnectionId(clientId);
  const room = `room-${counter}`;
  return { store, delivery, deps, clientId, connectionId, event, room, sub: subOfClientId(clientId) };
}

describe('MQTT connection ids', () => {
  it('are the client id behind mqtt:, and the user is the part before the separator', () => {
    expect(mqttConnectionId('alice.phone')).toBe('mqtt:alice.phone');
    expect(isMqttConnectionId('mqtt:alice.phone')).toBe(true);
    expect(isMqttConnectionId('Zx1abcDEFghi12=')).toBe(false);
    expect(subOfClientId('alice.phone.2')).toBe('alice');
    expect(subOfClientId('alice')).toBe('alice');
  });
});

describe('lifecycle events', () => {
  it('records a connected session once, as an mqtt connection of the client id user', async () => {
    const { deps, store, event, connectionId, sub } = setup();
    expect(await mqttConnected(deps, event(3))).toBe(true);
    expect(await mqttConnected(deps, event(3))).toBe(false);
    expect(await mqttConnected(deps, event(2))).toBe(false);
    const record = await store.getConnection(connectionId);
    expect(record).toMatchObject({ connectionId, sub, channel: 'mqtt', lifecycle: { versionNumber: 3 } });
    expect((await store.listUserConnections(sub)).map((c) => c.connectionId)).toEqual([connectionId]);
  });

  it('disconnects the session: subscriptions gone, the room told the user left', async () => {
    const { deps, store, delivery, event, connectionId, sub, room } = setup();
    await mqttConnected(deps, event(1));
    await store.subscribe({ room, connectionId, sub, subscribedAt: now }, Math.floor(now / 1000) + 3600);
    await store.subscribe(
      { room, connectionId: 'ws-other', sub: 'other', subscribedAt: now },
      Math.floor(now / 1000) + 3600,
    );
    expect(await mqttDisconnected(deps, event(1))).toBe(true);
    expect((await store.listRoomSubscriptions(room)).map((s) => s.connectionId)).toEqual(['ws-other']);
    expect(await store.getConnection(connectionId)).toBeUndefined();
    expect(await store.listUserConnections(sub)).toEqual([]);
    expect(delivery.posts).toEqual([
      { connectionId: 'ws-other', frame: expect.objectContaining({ type: 'presence', user: sub, state: 'left' }) },
    ]);
    // Repeated, the event finds the session already gone: nothing more is announced.
    expect(await mqttDisconnected(deps, event(1))).toBe(true);
    expect(delivery.posts).toHaveLength(1);
  });

  it('ignores a connected event arriving after its own disconnected', async () => {
    const { deps, store, event, connectionId } = setup();
    expect(await mqttDisconnected(deps, event(4))).toBe(true);
    expect(await mqttConnected(deps, event(4))).toBe(false);
    expect(await store.getConnection(connectionId)).toBeUndefined();
    expect(await mqttConnected(deps, event(5))).toBe(true);
    expect(await store.getConnection(connectionId)).toMatchObject({ lifecycle: { versionNumber: 5 } });
  });

  it('ignores a late disconnected of an older session: the newer one keeps its record and subscriptions', async () => {
    const { deps, store, event, connectionId, sub, room } = setup();
    await mqttConnected(deps, event(1));
    await mqttConnected(deps, event(2));
    await store.subscribe({ room, connectionId, sub, subscribedAt: now }, Math.floor(now / 1000) + 3600);
    expect(await mqttDisconnected(deps, event(1))).toBe(false);
    expect(await store.getConnection(connectionId)).toMatchObject({ lifecycle: { versionNumber: 2 } });
    expect((await store.listRoomSubscriptions(room)).map((s) => s.connectionId)).toEqual([connectionId]);
  });
});

/**
 * IoT's rules run a client's requests and its lifecycle events in no set order, and no request says which
 * session sent it. A subscription no recorded `connected` vouches for is pending: it ends after
 * MQTT_PENDING_SUBSCRIPTION_SECONDS unless its session's `connected` arrives.
 */
describe('subscriptions of MQTT sessions that lifecycle events have not confirmed', () => {
  function timed() {
    let t = now;
    const base = setup();
    const store = localStore(dynamo, () => t);
    const deps: CoreDeps = { ...base.deps, store, clock: () => t };
    const caller: Caller = {
      connectionId: base.connectionId,
      sub: base.sub,
      username: base.sub,
      groups: [],
      tokenExp: Math.floor(now / 1000) + 86_400,
      connectedAt: now,
    };
    const members = async () => (await store.listRoomSubscriptions(base.room)).map((s) => s.connectionId);
    const at = (ms: number) => {
      t = ms;
      return { clientId: base.clientId, lifecycle: { versionNumber: 0, timestamp: ms } };
    };
    const later = (seconds: number) => {
      t += seconds * 1000;
    };
    return { ...base, store, deps, caller, members, at, later, now: () => t };
  }
  const pendingMs = MQTT_PENDING_SUBSCRIPTION_SECONDS * 1000;

  it('a join run after its session ended lasts only the pending time (a client that joins and disconnects at once)', async () => {
    const { deps, caller, room, members, at, later } = timed();
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    await mqttDisconnected(deps, { ...at(now + 10), lifecycle: { versionNumber: 1, timestamp: now + 10 } });
    at(now + 20);
    await join(deps, caller, { action: 'join', room });
    expect(await members()).toEqual([caller.connectionId]);
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 1);
    expect(await members()).toEqual([]);
  });

  it('a join of a new session before its connected is recorded survives the old session’s late disconnected', async () => {
    const { deps, caller, room, members, at, later } = timed();
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    // Session 2 connects at now+50 and joins; IoT's events for session 1's end (now+40) and session 2's
    // start arrive after the join.
    at(now + 60);
    await join(deps, caller, { action: 'join', room });
    expect(
      await mqttDisconnected(deps, { ...at(now + 70), lifecycle: { versionNumber: 1, timestamp: now + 40 } }),
    ).toBe(true);
    expect(await members()).toEqual([caller.connectionId]);
    expect(await mqttConnected(deps, { ...at(now + 80), lifecycle: { versionNumber: 2, timestamp: now + 50 } })).toBe(
      true,
    );
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 60);
    expect(await members()).toEqual([caller.connectionId]);
  });

  it('a rejoin of a new session, under the client id its old session joined with, survives the old session’s late disconnected', async () => {
    const { deps, caller, room, members, at, later } = timed();
    // Session 1 joined the room; the SDK reconnects with the same client id and joins again at once.
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    await join(deps, caller, { action: 'join', room });
    at(now + 60);
    await join(deps, caller, { action: 'join', room });
    // IoT's events for session 1's end (now+40) and session 2's start (now+50) arrive after the rejoin.
    expect(
      await mqttDisconnected(deps, { ...at(now + 70), lifecycle: { versionNumber: 1, timestamp: now + 40 } }),
    ).toBe(true);
    expect(await members()).toEqual([caller.connectionId]);
    await mqttConnected(deps, { ...at(now + 80), lifecycle: { versionNumber: 2, timestamp: now + 50 } });
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 60);
    expect(await members()).toEqual([caller.connectionId]);
  });

  /** The store, with `hook` run once just before (or after) the first call of `method`, its own calls included. */
  function interleaved(
    store: CoreDeps['store'],
    method: string,
    when: 'before' | 'after',
    hook: () => Promise<void>,
  ): CoreDeps['store'] {
    let done = false;
    return new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== method || done || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          done = true;
          if (when === 'before') await hook();
          const result = await value.apply(receiver, args);
          if (when === 'after') await hook();
          return result;
        };
      },
    });
  }

  // Found by bench/soak.ts in reconnect storms: the delete was a batch by key, after the query.
  it('a rejoin that rewrites the subscription while the old session’s disconnected is removing it survives', async () => {
    const { deps, store, caller, clientId, room, members, at, later } = timed();
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    await join(deps, caller, { action: 'join', room });
    // Session 1 ended at now+40; session 2's rejoin (now+60) lands between the event's read and its delete.
    const racing = interleaved(store, 'connectionSubscriptions', 'after', async () => {
      at(now + 60);
      await join(deps, caller, { action: 'join', room });
      at(now + 70);
    });
    const ended = { clientId, lifecycle: { versionNumber: 1, timestamp: now + 40 } };
    expect(await mqttDisconnected({ ...deps, store: racing }, ended)).toBe(true);
    expect(await members()).toEqual([caller.connectionId]);
    await mqttConnected(deps, { ...at(now + 80), lifecycle: { versionNumber: 2, timestamp: now + 50 } });
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 60);
    expect(await members()).toEqual([caller.connectionId]);
  });

  // Seen while tracing the soak's lost subscriptions: the old session's disconnected made them pending after the
  // new session's connected had extended them, so they lapsed 5 minutes later on a live connection.
  it('a newer session’s connected applied while the old session’s disconnected runs leaves its subscriptions permanent', async () => {
    const { deps, store, caller, clientId, room, members, at, later } = timed();
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    at(now + 60);
    await join(deps, caller, { action: 'join', room });
    const racing = interleaved(store, 'setSubscriptionsExpiry', 'before', async () => {
      await mqttConnected(deps, { ...at(now + 70), lifecycle: { versionNumber: 2, timestamp: now + 50 } });
    });
    const ended = { clientId, lifecycle: { versionNumber: 1, timestamp: now + 40 } };
    expect(await mqttDisconnected({ ...deps, store: racing }, ended)).toBe(true);
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 60);
    expect(await members()).toEqual([caller.connectionId]);
  });

  it('a join run before its session’s connected becomes permanent once connected arrives', async () => {
    const { deps, caller, room, members, at, later, now: current } = timed();
    at(now + 5);
    await join(deps, caller, { action: 'join', room });
    await mqttConnected(deps, { ...at(now + 6), lifecycle: { versionNumber: 1, timestamp: now } });
    later(pendingMs / 1000 + 3600);
    expect(await members()).toEqual([caller.connectionId]);
    expect(current()).toBeGreaterThan(now + pendingMs);
  });

  it('a join on a recorded session is permanent at once', async () => {
    const { deps, caller, room, members, at, later } = timed();
    await mqttConnected(deps, { ...at(now), lifecycle: { versionNumber: 1, timestamp: now } });
    await join(deps, caller, { action: 'join', room });
    later(MQTT_PENDING_SUBSCRIPTION_SECONDS + 3600);
    expect(await members()).toEqual([caller.connectionId]);
  });
});
