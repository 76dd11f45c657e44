/**
 * IoT Core emulation behaviour that needs control over the authorizer and the clock: lifecycle events (the
 * watcher needs a policy allowing `$aws/events/presence/...`, which users' policies rightly don't grant), the
 * authorizer event's shape, `refreshAfterInSeconds` / `disconnectAfterInSeconds`, and `close()`.
 * Uses the emulator's `iotAuthorizer` test hook with a stub answering a wide policy.
 */
import { type Emulator, type IotAuthorizerFunction, startEmulator } from '@viba-realtime/local';
import type { IoTCustomAuthorizerEvent } from 'aws-lambda';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClosedError } from '../src/broker/index.js';
import { ConnectRefused, connectMqtt } from './support/mqtt.js';

let now = Date.UTC(2026, 0, 1);
let emulator: Emulator;
const clients: MqttClient[] = [];
const events: IoTCustomAuthorizerEvent[] = [];
/** What the stub answers next: `allow` with a wide policy, `deny`, or a malformed principal id. */
let mode: 'allow' | 'deny' | 'malformed' = 'allow';

const WIDE_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
});

const stub: IotAuthorizerFunction = async (event) => {
  events.push(event);
  return {
    isAuthenticated: mode !== 'deny',
    principalId: mode === 'malformed' ? 'not-alphanumeric' : 'stubprincipal',
    refreshAfterInSeconds: 300,
    disconnectAfterInSeconds: 3600,
    policyDocuments: [WIDE_POLICY],
  };
};

beforeAll(async () => {
  emulator = await startEmulator({
    port: 0,
    mqttPort: 0,
    iot: true,
    logLevel: 'silent',
    clock: () => now,
    iotAuthorizer: stub,
  });
});

afterEach(async () => {
  mode = 'allow';
  events.length = 0;
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

afterAll(async () => {
  await emulator.close();
});

function mqttUrl(): string {
  if (!emulator.mqttUrl) throw new Error('IoT emulation is off');
  return emulator.mqttUrl;
}

describe('the custom authorizer event', () => {
  it('is IoT-shaped for TCP: tls + mqtt, password base64, a UUID connection id', async () => {
    await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev1', username: 'u', password: 'secret' }, clients);
    expect(events[0]).toEqual({
      signatureVerified: false,
      protocols: ['tls', 'mqtt'],
      protocolData: {
        tls: { serverName: '127.0.0.1' },
        mqtt: { clientId: 'dev1', username: 'u', password: Buffer.from('secret').toString('base64') },
      },
      connectionMetadata: { id: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
  });

  it('adds http headers and the raw query string with its "?" over WebSocket', async () => {
    if (!emulator.mqttWsUrl) throw new Error('IoT emulation is off');
    await connectMqtt(`${emulator.mqttWsUrl}?token=abc&x=1`, { protocolVersion: 4, clientId: 'dev2' }, clients);
    expect(events[0]?.protocols).toEqual(['tls', 'http', 'mqtt']);
    expect(events[0]?.protocolData.http).toMatchObject({
      queryString: '?token=abc&x=1',
      headers: expect.objectContaining({ 'sec-websocket-protocol': 'mqtt' }),
    });
  });

  it('refuses (not authorized) an answer IoT would not accept', async () => {
    mode = 'malformed';
    await expect(connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev3' }, clients)).rejects.toEqual(
      new ConnectRefused(0x87),
    );
  });
});

describe('lifecycle events', () => {
  it('publishes connected and disconnected to a subscriber of $aws/events/presence/+/+', async () => {
    const watcher = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'watcher' }, clients);
    await watcher.subscribeAsync('$aws/events/presence/+/+', { qos: 1 });
    const two = messagesUnder(watcher, '$aws/events/presence/', 2);
    const device = await connectMqtt(mqttUrl(), { protocolVersion: 4, clientId: 'device-1' }, clients);
    await device.endAsync();
    const [connected, disconnected] = await two;
    expect(connected).toEqual({
      topic: '$aws/events/presence/connected/device-1',
      clientId: 'device-1',
      timestamp: now,
      eventType: 'connected',
      sessionIdentifier: expect.stringMatching(/^[0-9a-f-]{36}$/),
      principalIdentifier: 'stubprincipal',
      ipAddress: '127.0.0.1',
      versionNumber: 0,
    });
    expect(disconnected).toEqual({
      ...connected,
      topic: '$aws/events/presence/disconnected/device-1',
      eventType: 'disconnected',
      clientInitiatedDisconnect: true,
      disconnectReason: 'CLIENT_INITIATED_DISCONNECT',
    });
  });

  it('numbers the connections of a client id and reports a takeover as DUPLICATE_CLIENTID', async () => {
    const watcher = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'watcher2' }, clients);
    await watcher.subscribeAsync('$aws/events/presence/+/device-2', { qos: 1 });
    const three = messagesUnder(watcher, '$aws/events/presence/', 3);
    const first = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'device-2' }, clients);
    const firstGone = closedMqtt(first);
    await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'device-2' }, clients);
    await firstGone;
    const got = await three;
    const byType = (type: string, version: number) =>
      got.find((e) => e.eventType === type && e.versionNumber === version);
    expect(byType('connected', 0)).toBeDefined();
    expect(byType('connected', 1)).toBeDefined();
    expect(byType('disconnected', 0)).toMatchObject({
      clientInitiatedDisconnect: false,
      disconnectReason: 'DUPLICATE_CLIENTID',
    });
  });

  it('stamps a server-ended connection with the time it was ended, not when its socket finished closing', async () => {
    // The presence handler keeps the subscriptions made after the stamp: a late stamp deleted a reconnected
    // client's rejoins (found by bench/soak.ts under a reconnect storm).
    const watcher = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'watcher3' }, clients);
    await watcher.subscribeAsync('$aws/events/presence/disconnected/device-3', { qos: 1 });
    const one = messagesUnder(watcher, '$aws/events/presence/', 1);
    const device = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'device-3' }, clients);
    const gone = closedMqtt(device);
    const endedAt = now;
    const ended = emulator.broker?.client('device-3')?.disconnect();
    // The socket cannot have closed within this tick: the clock moves on before the hook runs.
    now += 5_000;
    await ended;
    await gone;
    const [disconnected] = await one;
    expect(disconnected).toMatchObject({ timestamp: endedAt, disconnectReason: 'SERVER_INITIATED_DISCONNECT' });
  });
});

describe('authorizer times', () => {
  it('re-invokes the authorizer after refreshAfterInSeconds and disconnects when it refuses', async () => {
    const client = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev-r' }, clients);
    now += 299_000;
    await emulator.iot?.runDueTimers();
    expect(events).toHaveLength(1);
    now += 1_000;
    await emulator.iot?.runDueTimers();
    expect(events).toHaveLength(2);
    expect(events[1]?.connectionMetadata.id).toBe(events[0]?.connectionMetadata.id);
    expect(emulator.iot?.session('dev-r')).toMatchObject({ refreshes: 1, refreshAt: now + 300_000 });

    mode = 'deny';
    const gone = closedMqtt(client);
    now += 300_000;
    await emulator.iot?.runDueTimers();
    await gone;
  });

  it('disconnects after disconnectAfterInSeconds even though refreshes succeed', async () => {
    const client = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev-d' }, clients);
    const gone = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    for (let i = 0; i < 12; i++) {
      now += 300_000;
      await emulator.iot?.runDueTimers();
    }
    // MQTT 5 "Maximum connect time".
    expect(await gone).toBe(0xa0);
  });
});

describe('close()', () => {
  it('closes the broker and its connections with the rest of the emulator', async () => {
    const other = await startEmulator({ port: 0, mqttPort: 0, iot: true, logLevel: 'silent', iotAuthorizer: stub });
    if (!other.mqttUrl || !other.broker) throw new Error('IoT emulation is off');
    const client = await connectMqtt(other.mqttUrl, { protocolVersion: 5, clientId: 'dev-c' }, clients);
    const gone = closedMqtt(client);
    await other.close();
    await gone;
    await expect(other.broker.publish('rt/x', 'y')).rejects.toBeInstanceOf(BrokerClosedError);
  });

  it('runs without IoT when asked', async () => {
    const plain = await startEmulator({ port: 0, iot: false, logLevel: 'silent' });
    expect([plain.mqttUrl, plain.mqttWsUrl, plain.broker]).toEqual([undefined, undefined, undefined]);
    const response = await fetch(`${plain.httpUrl}/topics/x`, { method: 'POST', headers: { authorization: 'x' } });
    expect(response.status).toBe(404);
    await plain.close();
  });
});

// ----- MQTT.js helpers of this file (shared ones: ./support/mqtt.ts) -----

/** Resolves with the next `n` messages whose topic starts with `prefix`, parsed as JSON. */
function messagesUnder(client: MqttClient, prefix: string, n: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve) => {
    const got: Record<string, unknown>[] = [];
    const onMessage = (t: string, payload: Buffer) => {
      if (!t.startsWith(prefix)) return;
      got.push({ topic: t, ...(JSON.parse(payload.toString()) as Record<string, unknown>) });
      if (got.length < n) return;
      client.off('message', onMessage);
      resolve(got);
    };
    client.on('message', onMessage);
  });
}

/** Resolves when the client's connection closes. */
function closedMqtt(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}
