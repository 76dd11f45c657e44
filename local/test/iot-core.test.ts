/**
 * The IoT Core emulation inside the whole emulator, with the real IoT custom authorizer: MQTT.js over TCP and
 * WebSocket, MQTT 3.1.1 and 5, tokens from the dev issuer, policies enforced end to end, the data plane through
 * the real `IoTDataPlaneClient`, and the WebSocket API still serving next to it.
 */
import {
  InvalidRequestException,
  IoTDataPlaneClient,
  PublishCommand,
  RequestEntityTooLargeException,
} from '@aws-sdk/client-iot-data-plane';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor } from '@viba-realtime/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectRefused, connectMqtt } from './support/mqtt.js';
import { closed, nextMessage, openSocket } from './support/stub-gateway.js';

let emulator: Emulator;
const clients: MqttClient[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, mqttPort: 0, iot: true, logLevel: 'silent' });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

afterAll(async () => {
  await emulator.close();
});

function urls(): { tcp: string; ws: string; data: string } {
  const { mqttUrl, mqttWsUrl, iotDataEndpoint } = emulator;
  if (!mqttUrl || !mqttWsUrl || !iotDataEndpoint) throw new Error('IoT emulation is off');
  return { tcp: mqttUrl, ws: mqttWsUrl, data: iotDataEndpoint };
}

const token = (sub: string) => emulator.issuer.mintPair({ sub }).idToken;

type Transport = 'tcp' | 'ws';
const MATRIX: [Transport, 4 | 5][] = [
  ['tcp', 4],
  ['tcp', 5],
  ['ws', 4],
  ['ws', 5],
];

describe.each(MATRIX)('CONNECT over %s, MQTT version %i', (transport, protocolVersion) => {
  const url = () => urls()[transport];
  const refusedCode = protocolVersion === 5 ? 0x87 : 5;

  it('accepts a dev token in the password and a client id of the user', async () => {
    const client = await connectMqtt(
      url(),
      { protocolVersion, clientId: clientIdFor('alice', 't1'), username: 'any', password: token('alice') },
      clients,
    );
    expect(client.connected).toBe(true);
    expect(emulator.iot?.session(clientIdFor('alice', 't1'))).toMatchObject({ principalId: 'alice' });
  });

  it('refuses without a token as not authorized', async () => {
    await expect(
      connectMqtt(url(), { protocolVersion, clientId: clientIdFor('alice', 't2') }, clients),
    ).rejects.toEqual(new ConnectRefused(refusedCode));
  });

  it('refuses a bad token as not authorized', async () => {
    const bad = `${token('alice').slice(0, -4)}AAAA`;
    await expect(
      connectMqtt(
        url(),
        { protocolVersion, clientId: clientIdFor('alice', 't3'), username: 'x', password: bad },
        clients,
      ),
    ).rejects.toEqual(new ConnectRefused(refusedCode));
  });

  it("refuses another user's client id", async () => {
    await expect(
      connectMqtt(
        url(),
        { protocolVersion, clientId: clientIdFor('bob', 't4'), username: 'x', password: token('alice') },
        clients,
      ),
    ).rejects.toEqual(new ConnectRefused(refusedCode));
  });
});

describe('MQTT over WebSocket', () => {
  it.each([4, 5] as const)('accepts the token in the query string (browsers), MQTT %i', async (protocolVersion) => {
    const client = await connectMqtt(
      `${urls().ws}?token=${encodeURIComponent(token('alice'))}`,
      { protocolVersion, clientId: clientIdFor('alice', `q${protocolVersion}`) },
      clients,
    );
    expect(client.connected).toBe(true);
  });
});

describe('policies', () => {
  it.each([
    [4, /Unspecified error/],
    [5, /Not authorized/],
  ] as const)(
    "refuses a subscription to another user's inbox and grants the own one, MQTT %i",
    async (protocolVersion, refusal) => {
      // SUBACK 0x80 (3.1.1) / 0x87 (5): MQTT.js turns either into a rejected subscribe.
      const client = await connectMqtt(
        urls().ws,
        {
          protocolVersion,
          clientId: clientIdFor('alice', `s${protocolVersion}`),
          username: 'x',
          password: token('alice'),
        },
        clients,
      );
      await expect(client.subscribeAsync('rt/users/bob/inbox', { qos: 1 })).rejects.toThrow(refusal);
      await expect(client.subscribeAsync('rt/users/alice/inbox', { qos: 1 })).resolves.toMatchObject([{ qos: 1 }]);
      expect(client.connected).toBe(true);
    },
  );

  it('refuses a publish to announcements: PUBACK 0x87 on MQTT 5, connection closed on 3.1.1', async () => {
    const v5 = await connectMqtt(
      urls().tcp,
      { protocolVersion: 5, clientId: clientIdFor('alice', 'p2'), username: 'x', password: token('alice') },
      clients,
    );
    await expect(v5.publishAsync('rt/announcements', 'hi', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    expect(v5.connected).toBe(true);

    const v4 = await connectMqtt(
      urls().tcp,
      { protocolVersion: 4, clientId: clientIdFor('alice', 'p3'), username: 'x', password: token('alice') },
      clients,
    );
    const gone = closedMqtt(v4);
    v4.publish('rt/announcements', 'hi', { qos: 1 });
    await gone;
  });

  it('refuses client publishes to the reserved $aws/ topics', async () => {
    const client = await connectMqtt(
      urls().tcp,
      { protocolVersion: 5, clientId: clientIdFor('alice', 'p4'), username: 'x', password: token('alice') },
      clients,
    );
    await expect(client.publishAsync('$aws/events/presence/connected/alice', '{}', { qos: 1 })).rejects.toMatchObject({
      code: 0x87,
    });
  });
});

describe('IoT data plane', () => {
  const dataPlane = () =>
    new IoTDataPlaneClient({
      endpoint: urls().data,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });

  it('delivers a PublishCommand to an MQTT subscriber allowed to receive it', async () => {
    const client = await connectMqtt(
      urls().ws,
      { protocolVersion: 5, clientId: clientIdFor('alice', 'd1'), username: 'x', password: token('alice') },
      clients,
    );
    await client.subscribeAsync('rt/users/alice/inbox', { qos: 1 });
    const received = nextMessageOn(client, 'rt/users/alice/inbox');
    const iot = dataPlane();
    await iot.send(
      new PublishCommand({ topic: 'rt/users/alice/inbox', qos: 1, payload: Buffer.from('{"text":"hello"}') }),
    );
    expect(await received).toBe('{"text":"hello"}');
    iot.destroy();
  });

  it('answers 400 InvalidRequestException for a bad topic and 413 for a payload over 128 KB', async () => {
    const iot = dataPlane();
    await expect(iot.send(new PublishCommand({ topic: 'rt/+/x', payload: Buffer.from('x') }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );
    await expect(
      iot.send(new PublishCommand({ topic: 'rt/users/alice/inbox', payload: Buffer.alloc(128 * 1024 + 1) })),
    ).rejects.toBeInstanceOf(RequestEntityTooLargeException);
    iot.destroy();
  });

  it('refuses an unsigned request with 403', async () => {
    const response = await fetch(`${urls().data}/topics/rt%2Fannouncements`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
  });
});

describe('next to the WebSocket API', () => {
  it('keeps serving WebSocket clients while MQTT clients come and go', async () => {
    const mqttClient = await connectMqtt(
      urls().ws,
      { protocolVersion: 4, clientId: clientIdFor('alice', 'w1'), username: 'x', password: token('alice') },
      clients,
    );
    const ws = await openSocket(`${emulator.url}?token=${token('alice')}`);
    const answer = nextMessage(ws);
    ws.send(JSON.stringify({ action: 'ping', id: 'p1' }));
    expect(await answer).toMatchObject({ type: 'pong', ref: 'p1' });
    await mqttClient.endAsync();
    const bye = closed(ws);
    ws.close(1000);
    await bye;
  });
});

// ----- MQTT.js helpers of this file (shared ones: ./support/mqtt.ts) -----

/** Resolves with the next message on `topic` (exact name) as text. */
function nextMessageOn(client: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve(payload.toString());
    };
    client.on('message', onMessage);
  });
}

/** Resolves when the client's connection closes. */
function closedMqtt(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}
