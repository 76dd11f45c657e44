/**
 * The IoT data plane's connection operations against the real `IoTDataPlaneClient`: `DeleteConnection`
 * disconnects an MQTT.js client (MQTT 5: DISCONNECT 0x98; 3.1.1: the socket closes) and IoT's `disconnected`
 * lifecycle event follows with `API_INITIATED_DISCONNECT`; `GetConnection` describes a connected client; an
 * unknown client is `ResourceNotFoundException`. Also the lambdas' `IotDelivery.close`, which the backend
 * publisher's `disconnectUser` uses. The authorizer is a stub with a wide policy, so a watcher may subscribe to
 * the lifecycle topics.
 */
import {
  DeleteConnectionCommand,
  GetConnectionCommand,
  InvalidRequestException,
  IoTDataPlaneClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-iot-data-plane';
import { createLogger, IotDelivery } from '@viba-realtime/lambdas';
import { type Emulator, type IotAuthorizerFunction, startEmulator } from '@viba-realtime/local';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt } from './support/mqtt.js';

const NOW = Date.UTC(2026, 0, 1);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let emulator: Emulator;
let client: IoTDataPlaneClient;
const clients: MqttClient[] = [];

const stub: IotAuthorizerFunction = async () => ({
  isAuthenticated: true,
  principalId: 'stubprincipal',
  refreshAfterInSeconds: 3600,
  disconnectAfterInSeconds: 86400,
  policyDocuments: [
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }),
  ],
});

beforeAll(async () => {
  emulator = await startEmulator({
    port: 0,
    mqttPort: 0,
    logLevel: 'silent',
    clock: () => NOW,
    iotAuthorizer: stub,
  });
  if (!emulator.iotDataEndpoint) throw new Error('IoT emulation is off');
  client = new IoTDataPlaneClient({ region: 'us-east-1', endpoint: emulator.iotDataEndpoint, credentials });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

afterAll(async () => {
  client.destroy();
  await emulator.close();
});

function mqttUrl(): string {
  if (!emulator.mqttUrl) throw new Error('IoT emulation is off');
  return emulator.mqttUrl;
}

/** Resolves with the next lifecycle event of `eventType` for `clientId` the watcher receives. */
function lifecycle(watcher: MqttClient, eventType: string, clientId: string): Promise<Record<string, unknown>> {
  const topic = `$aws/events/presence/${eventType}/${clientId}`;
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      watcher.off('message', onMessage);
      resolve(JSON.parse(payload.toString()) as Record<string, unknown>);
    };
    watcher.on('message', onMessage);
  });
}

async function watcher(id: string): Promise<MqttClient> {
  const w = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: id }, clients);
  await w.subscribeAsync('$aws/events/presence/+/+', { qos: 1 });
  return w;
}

describe('DeleteConnection', () => {
  it('disconnects an MQTT 5 client with 0x98 and IoT reports API_INITIATED_DISCONNECT', async () => {
    const watching = await watcher('watch-1');
    const device = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev-5' }, clients);
    const disconnectPacket = new Promise<number | undefined>((resolve) =>
      device.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const event = lifecycle(watching, 'disconnected', 'dev-5');

    await client.send(new DeleteConnectionCommand({ clientId: 'dev-5', cleanSession: true, preventWillMessage: true }));

    expect(await disconnectPacket).toBe(0x98);
    await closed;
    expect(await event).toMatchObject({
      clientId: 'dev-5',
      eventType: 'disconnected',
      clientInitiatedDisconnect: false,
      disconnectReason: 'API_INITIATED_DISCONNECT',
      principalIdentifier: 'stubprincipal',
    });
    expect(emulator.broker?.client('dev-5')).toBeUndefined();
  });

  it('closes an MQTT 3.1.1 client (no DISCONNECT packet in 3.1.1)', async () => {
    const device = await connectMqtt(mqttUrl(), { protocolVersion: 4, clientId: 'dev-4' }, clients);
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    await client.send(new DeleteConnectionCommand({ clientId: 'dev-4' }));
    await closed;
  });

  it('answers ResourceNotFoundException for a client that is not connected, 400 for a $ client id', async () => {
    const missing = await client.send(new DeleteConnectionCommand({ clientId: 'nobody' })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
    expect(missing).toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await expect(client.send(new DeleteConnectionCommand({ clientId: '$reserved' }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );
  });

  it('is what IotDelivery.close sends, for mqtt:{clientId} connection ids, quiet when already gone', async () => {
    const device = await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'alice.x1' }, clients);
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const delivery = new IotDelivery({
      endpoint: emulator.iotDataEndpoint as string,
      region: 'us-east-1',
      credentials,
      log: createLogger('silent'),
    });
    try {
      await delivery.close('mqtt:alice.x1');
      await closed;
      await expect(delivery.close('mqtt:alice.x1')).resolves.toBeUndefined();
    } finally {
      delivery.client.destroy();
    }
  });
});

describe('GetConnection', () => {
  it('describes a connected client, and answers ResourceNotFoundException for others', async () => {
    await connectMqtt(mqttUrl(), { protocolVersion: 5, clientId: 'dev-g' }, clients);
    const found = await client.send(new GetConnectionCommand({ clientId: 'dev-g', includeSocketInformation: true }));
    expect(found).toMatchObject({
      connected: true,
      clientId: 'dev-g',
      cleanSession: true,
      connectedSince: NOW,
      sourceIp: '127.0.0.1',
    });
    await expect(client.send(new GetConnectionCommand({ clientId: 'nobody' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });
});
