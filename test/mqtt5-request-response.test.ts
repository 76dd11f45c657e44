/**
 * MQTT 5 request/response over the emulated IoT Core: a request PUBLISH with a response topic and correlation
 * data is answered with the same correlation data (through the rule's `get_mqtt_property`, the ingress Lambda
 * and the real `IoTDataPlaneClient`), and a response topic other than the user's own is refused before the
 * request runs.
 */
import { createDynamoDbStore } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, type ServerFrame, topics } from '@viba-realtime/protocol';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let emulator: Emulator;
const clients: MqttClient[] = [];

interface Answer {
  frame: ServerFrame;
  packet: IPublishPacket;
}

async function connect(sub: string, suffix: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  if (!emulator.mqttUrl) throw new Error('the emulator runs no MQTT');
  const client = await mqtt.connectAsync(emulator.mqttUrl, {
    clientId: clientIdFor(sub, suffix),
    username: 'any',
    password: emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 3600 }),
    protocolVersion,
    reconnectPeriod: 0,
  });
  clients.push(client);
  const [grant] = await client.subscribeAsync(topics.responses(sub), { qos: 1 });
  expect(grant?.qos).toBe(1);
  return client;
}

/** The next message on `topic` whose packet matches `predicate`. */
function nextAnswer(client: MqttClient, topic: string, predicate: (a: Answer) => boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const onMessage = (received: string, payload: Buffer, packet: IPublishPacket) => {
      if (received !== topic) return;
      const answer = { frame: JSON.parse(payload.toString('utf8')) as ServerFrame, packet };
      if (!predicate(answer)) return;
      client.off('message', onMessage);
      resolve(answer);
    };
    client.on('message', onMessage);
  });
}

const correlated = (value: string) => (a: Answer) => a.packet.properties?.correlationData?.toString() === value;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync()));
  await emulator.close();
});

describe('MQTT 5 request/response', () => {
  it('answers with the request’s correlation data, so a frame needs no id', async () => {
    const client = await connect('rr-ana', 'a', 5);
    const answer = nextAnswer(client, topics.responses('rr-ana'), correlated('ping-1'));
    await client.publishAsync(topics.requests('rr-ana'), JSON.stringify({ action: 'ping' }), {
      qos: 1,
      properties: { responseTopic: topics.responses('rr-ana'), correlationData: Buffer.from('ping-1') },
    });
    const { frame, packet } = await answer;
    expect(frame).toMatchObject({ type: 'pong' });
    expect(frame).not.toHaveProperty('ref');
    expect(packet.properties).toMatchObject({ contentType: 'application/json', payloadFormatIndicator: true });
  });

  it('correlates a send’s ack, while the frame’s own id still comes back as ref', async () => {
    const client = await connect('rr-ben', 'a', 5);
    const join = nextAnswer(client, topics.responses('rr-ben'), correlated('j'));
    await client.publishAsync(topics.requests('rr-ben'), JSON.stringify({ action: 'join', room: 'rr-room' }), {
      qos: 1,
      properties: { correlationData: Buffer.from('j') },
    });
    expect((await join).frame).toMatchObject({ type: 'ack', action: 'join', room: 'rr-room' });
    const sent = nextAnswer(client, topics.responses('rr-ben'), correlated('s'));
    // Over the requests topic: the room's send topic is granted only for rooms joined before the connect.
    const frame = { action: 'send', room: 'rr-room', id: 'm1', body: { text: 'hi' } };
    await client.publishAsync(topics.requests('rr-ben'), JSON.stringify(frame), {
      qos: 1,
      properties: { responseTopic: topics.responses('rr-ben'), correlationData: Buffer.from('s') },
    });
    expect((await sent).frame).toMatchObject({ type: 'ack', action: 'send', ref: 'm1', seq: 1 });
  });

  it('refuses a response topic other than the user’s own, before the request runs', async () => {
    const client = await connect('rr-cat', 'a', 5);
    const refused = nextAnswer(client, topics.responses('rr-cat'), correlated('x'));
    await client.publishAsync(
      topics.requests('rr-cat'),
      JSON.stringify({ action: 'join', room: 'rr-private', id: 'j1' }),
      { qos: 1, properties: { responseTopic: topics.responses('rr-dan'), correlationData: Buffer.from('x') } },
    );
    const { frame } = await refused;
    expect(frame).toMatchObject({ type: 'error', code: 'bad_request', ref: 'j1' });
    expect(frame.type === 'error' && frame.message).toContain(topics.responses('rr-cat'));
    const store = createDynamoDbStore({
      tableName: emulator.tableName,
      region: 'us-east-1',
      endpoint: emulator.dynamodbEndpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    expect(await store.listRoomSubscriptions('rr-private')).toEqual([]);
  });

  it('answers an MQTT 3.1.1 client without any MQTT 5 property', async () => {
    const client = await connect('rr-eve', 'a', 4);
    const answer = nextAnswer(client, topics.responses('rr-eve'), (a) => a.frame.type === 'pong');
    await client.publishAsync(topics.requests('rr-eve'), JSON.stringify({ action: 'ping', id: 'p' }), { qos: 1 });
    const { frame, packet } = await answer;
    expect(frame).toMatchObject({ type: 'pong', ref: 'p' });
    expect(packet.properties).toBeUndefined();
  });
});
