/**
 * One room, two channels, over the real wire: MQTT.js clients (3.1.1 and 5, over TCP and over WebSocket) on
 * the emulated IoT Core and `ws` clients on the emulated API Gateway, both served by the same handlers and the same store. Requests
 * over MQTT go through the IoT rules (emulator rules engine -> `iot-ingress`), deliveries through the real
 * `IoTDataPlaneClient` against the emulator's data plane, presence through the lifecycle events.
 */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { createDynamoDbStore } from '@viba-realtime/lambdas';
import { createIotIngressHandler } from '@viba-realtime/lambdas/handlers/iot-ingress';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { type ServerFrame, topics } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttPeer } from './support/mqtt-peer.js';
import { TestClient } from './support/ws-client.js';

let emulator: Emulator;
const openWs: TestClient[] = [];
const openMqtt: MqttPeer[] = [];
let roomCounter = 0;

const nextRoom = () => `xc-${++roomCounter}`;

function token(sub: string): string {
  return emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 3600 });
}

async function ws(sub: string): Promise<TestClient> {
  const client = await TestClient.connect(emulator.url, token(sub), { name: sub });
  openWs.push(client);
  return client;
}

async function mqttAs(sub: string, suffix: string, protocolVersion: 4 | 5 = 5, subscribe = true): Promise<MqttPeer> {
  if (!emulator.mqttUrl) throw new Error('the emulator runs no MQTT');
  const peer = await MqttPeer.connect(emulator.mqttUrl, { sub, suffix, token: token(sub), protocolVersion, subscribe });
  openMqtt.push(peer);
  return peer;
}

/** An MQTT.js client over WebSocket (`emulator.mqttWsUrl`), the token in the URL's query or as the password. */
async function mqttWsAs(
  sub: string,
  suffix: string,
  protocolVersion: 4 | 5,
  tokenIn: 'password' | 'query',
): Promise<MqttPeer> {
  if (!emulator.mqttWsUrl) throw new Error('the emulator runs no MQTT over WebSocket');
  const peer = await MqttPeer.connect(emulator.mqttWsUrl, { sub, suffix, token: token(sub), protocolVersion, tokenIn });
  openMqtt.push(peer);
  return peer;
}

function store() {
  return createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

type Chat = Extract<ServerFrame, { type: 'chat' }>;
type Ack = Extract<ServerFrame, { type: 'ack' }>;

beforeAll(async () => {
  // The default emulator: IoT Core on, as `npm start` runs it.
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
});

afterAll(async () => {
  await Promise.all(openWs.map((c) => c.close()));
  await Promise.all(openMqtt.map((c) => c.close()));
  await emulator.close();
});

describe('MQTT requests', () => {
  it('joins over the requests topic and gets the ack on the responses topic', async () => {
    const room = nextRoom();
    const mia = await mqttAs('mia', 't1');
    const ack = await mia.request({ action: 'join', room, id: 'j1' });
    expect(ack).toMatchObject({ type: 'ack', action: 'join', ref: 'j1', room, seq: 0, visibility: 'public' });
    expect(await store().listRoomSubscriptions(room)).toEqual([
      expect.objectContaining({ connectionId: 'mqtt:mia.t1', sub: 'mia' }),
    ]);
  });

  it('answers a frame that is not JSON, an unknown action and a send before join with error frames', async () => {
    const mia = await mqttAs('mia', 'bad');
    const responses = topics.responses('mia');
    const notJson = mia.next((m) => m.topic === responses && m.frame.type === 'error' && !('ref' in m.frame));
    await mia.client.publishAsync(topics.requests('mia'), 'not json', { qos: 1 });
    expect((await notJson).frame).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(await mia.request({ action: 'nope', id: 'b2' } as never)).toMatchObject({
      type: 'error',
      code: 'unknown_action',
      ref: 'b2',
    });
    expect(await mia.request({ action: 'send', room: nextRoom(), id: 'b3', body: { text: 'x' } })).toMatchObject({
      type: 'error',
      code: 'not_joined',
      ref: 'b3',
    });
  });

  it('answers ping and reads history', async () => {
    const room = nextRoom();
    const wes = await ws('wes');
    await wes.request({ action: 'join', room });
    const sent = (await wes.request({ action: 'send', room, body: { text: 'before' } })) as Ack;
    const mia = await mqttAs('mia', 'h1');
    expect(await mia.request({ action: 'ping', id: 'p1' })).toMatchObject({ type: 'pong', ref: 'p1' });
    const page = await mia.request({ action: 'history', room, id: 'h1' });
    expect(page).toMatchObject({ type: 'history', ref: 'h1', room });
    expect((page as Extract<ServerFrame, { type: 'history' }>).messages).toEqual([
      expect.objectContaining({ seq: sent.seq, from: 'wes', body: { text: 'before' } }),
    ]);
  });
});

describe('the ingress rule Lambda', () => {
  const payload = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

  it("refuses a request on another user's topic and answers it on the caller's responses topic", async () => {
    // The IoT policy never lets this publish through; the Lambda checks anyway, called as the rule would.
    const eve = await mqttAs('eve', 'spy');
    const answered = eve.response('x1');
    const ingress = createIotIngressHandler(emulator.env);
    const frame = await ingress({
      topic: topics.requests('mia'),
      clientId: 'eve.spy',
      payload: payload({ action: 'join', room: nextRoom(), id: 'x1' }),
    });
    expect(frame).toMatchObject({ type: 'error', code: 'forbidden', ref: 'x1' });
    expect(await answered).toEqual(frame);
    expect(await store().listConnectionRooms('mqtt:eve.spy')).toEqual([]);
  });

  it('drops events without a user client id or on a topic of no rule, answering nobody', async () => {
    const ingress = createIotIngressHandler(emulator.env);
    const join = payload({ action: 'join', room: nextRoom(), id: 'x2' });
    expect(await ingress({ topic: topics.requests('mia'), clientId: '', payload: join })).toBeUndefined();
    expect(await ingress({ topic: topics.inbox('mia'), clientId: 'mia.t1', payload: join })).toBeUndefined();
  });
});

describe('chat across channels', () => {
  it('delivers a WebSocket chat to an MQTT v5 member with the same seq, and presence both ways', async () => {
    const room = nextRoom();
    const mia = await mqttAs('mia', 'c1');
    await mia.request({ action: 'join', room, id: 'j' });
    const wes = await ws('wes');
    const wesJoined = mia.nextOnRoom(room, (f) => f.type === 'presence');
    await wes.request({ action: 'join', room });
    expect(await wesJoined).toMatchObject({ type: 'presence', room, user: 'wes', state: 'joined' });

    const chat = mia.nextOnRoom(room, (f) => f.type === 'chat');
    const ack = (await wes.request({ action: 'send', room, id: 'w1', body: { text: 'hi mqtt' } })) as Ack;
    expect(ack).toMatchObject({ type: 'ack', action: 'send', ref: 'w1' });
    expect(await chat).toMatchObject({
      type: 'chat',
      room,
      from: 'wes',
      seq: ack.seq,
      ref: 'w1',
      body: { text: 'hi mqtt' },
    });
  });

  it('delivers an MQTT chat (requests topic and room send topic) to a WebSocket member with the ack seq', async () => {
    const room = nextRoom();
    const wes = await ws('wes');
    await wes.request({ action: 'join', room });
    const mia = await mqttAs('mia', 'c2');
    const miaJoined = wes.next((f) => f.type === 'presence' && f.room === room);
    await mia.request({ action: 'join', room, id: 'j' });
    expect(await miaJoined).toMatchObject({ type: 'presence', room, user: 'mia', state: 'joined' });

    const viaRequests = wes.nextChat(room);
    const ack = (await mia.request({ action: 'send', room, id: 'm1', body: { text: 'hi ws' } })) as Ack;
    expect(ack).toMatchObject({ type: 'ack', action: 'send', ref: 'm1', room });
    expect(await viaRequests).toMatchObject({ from: 'mia', seq: ack.seq, ref: 'm1', body: { text: 'hi ws' } });

    // The policy grants publishing to a room's send topic for the rooms the user was a member of at
    // CONNECT, so this client connects after the join made mia a member, then joins itself.
    const device = await mqttAs('mia', 'c3');
    await device.request({ action: 'join', room, id: 'j' });
    const viaRoomTopic = wes.nextChat(room);
    const answer = device.response('m2');
    await device.client.publishAsync(topics.roomSend(room), JSON.stringify({ id: 'm2', body: { text: 'direct' } }), {
      qos: 1,
    });
    const roomAck = (await answer) as Ack;
    expect(roomAck).toMatchObject({ type: 'ack', action: 'send', ref: 'm2', room });
    expect(roomAck.seq).toBe((ack.seq ?? 0) + 1);
    expect(await viaRoomTopic).toMatchObject({ from: 'mia', seq: roomAck.seq, ref: 'm2', body: { text: 'direct' } });
  });

  it('serves MQTT 3.1.1 clients the same way', async () => {
    const room = nextRoom();
    const wes = await ws('wes');
    await wes.request({ action: 'join', room });
    const old = await mqttAs('olaf', 'v4', 4);
    expect(await old.request({ action: 'join', room, id: 'j' })).toMatchObject({ type: 'ack', action: 'join' });

    const inbound = old.nextOnRoom(room, (f) => f.type === 'chat');
    const wesAck = (await wes.request({ action: 'send', room, body: { text: 'to v4' } })) as Ack;
    expect(((await inbound) as Chat).seq).toBe(wesAck.seq);

    const outbound = wes.nextChat(room);
    const oldAck = (await old.request({ action: 'send', room, id: 'o1', body: { text: 'from v4' } })) as Ack;
    expect(await outbound).toMatchObject({ from: 'olaf', seq: oldAck.seq, body: { text: 'from v4' } });
  });

  it('publishes once per MQTT user, however many of their connections joined', async () => {
    const room = nextRoom();
    const a = await mqttAs('nina', 'a');
    const b = await mqttAs('nina', 'b');
    await a.request({ action: 'join', room, id: 'j' });
    await b.request({ action: 'join', room, id: 'j' });
    const wes = await ws('wes');
    await wes.request({ action: 'join', room });
    const first = a.nextOnRoom(room, (f) => f.type === 'chat');
    const ack = (await wes.request({ action: 'send', room, body: { n: 1 } })) as Ack;
    expect(((await first) as Chat).seq).toBe(ack.seq);
    // A marker published after the fan-out finished (the ack came after it) arrives after any duplicate.
    const marker = a.nextOnRoom(room, (f) => f.type === 'chat' && f.id === 'marker');
    await publishDirect(topics.userRoom('nina', room), { ...((await first) as Chat), id: 'marker' });
    await marker;
    const chats = a.received.filter((m) => m.topic === topics.userRoom('nina', room) && m.frame.type === 'chat');
    expect(chats.map((m) => (m.frame as Chat).id)).toEqual([ack.id, 'marker']);
  });
});

/** Publishes a frame through the emulator's data plane, as a backend would. */
async function publishDirect(topic: string, frame: ServerFrame): Promise<void> {
  const client = new IoTDataPlaneClient({
    endpoint: emulator.iotDataEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await client.send(new PublishCommand({ topic, qos: 1, payload: new TextEncoder().encode(JSON.stringify(frame)) }));
  } finally {
    client.destroy();
  }
}

describe('MQTT disconnect', () => {
  it('removes the subscriptions, announces left, and later sends publish nothing to the user', async () => {
    const room = nextRoom();
    const quinn = await mqttAs('quinn', 'gone');
    await quinn.request({ action: 'join', room, id: 'j' });
    // Another connection of the same user that never joins: it sees whatever is published to the topic.
    const observer = await mqttAs('quinn', 'observer');
    const wes = await ws('wes');
    const wesJoined = observer.nextOnRoom(room, (f) => f.type === 'presence' && f.user === 'wes');
    await wes.request({ action: 'join', room });
    // Published to quinn's topic while quinn.gone was joined: the observer sees it, as it should.
    await wesJoined;
    const seenBefore = observer.received.length;

    const left = wes.next((f) => f.type === 'presence' && f.room === room && f.state === 'left');
    await quinn.close();
    expect(await left).toMatchObject({ user: 'quinn', state: 'left' });
    const subscriptions = await store().listRoomSubscriptions(room);
    expect(subscriptions.map((s) => s.connectionId)).not.toContain('mqtt:quinn.gone');
    expect(await store().getConnection('mqtt:quinn.gone')).toBeUndefined();

    const ack = (await wes.request({ action: 'send', room, body: { text: 'anyone?' } })) as Ack;
    expect(ack.type).toBe('ack');
    const marker = observer.nextOnRoom(room, (f) => f.type === 'presence' && f.user === 'marker');
    await publishDirect(topics.userRoom('quinn', room), {
      type: 'presence',
      room,
      user: 'marker',
      state: 'joined',
      ts: 0,
    });
    expect(await marker).toMatchObject({ user: 'marker' });
    // The marker was published after the send's fan-out finished: a chat for quinn would have come first.
    expect(observer.received.slice(seenBefore).map((m) => m.frame)).toEqual([
      expect.objectContaining({ user: 'marker' }),
    ]);
  });

  it('records a connected MQTT client as an mqtt connection of its user', async () => {
    const peer = await mqttAs('rosa', 'rec', 5, false);
    // The lifecycle rule runs beside the client's requests; a ping's answer does not wait for it.
    await expect
      .poll(() => store().getConnection('mqtt:rosa.rec'), { interval: 20 })
      .toMatchObject({
        connectionId: 'mqtt:rosa.rec',
        sub: 'rosa',
        channel: 'mqtt',
        lifecycle: { versionNumber: expect.any(Number) },
      });
    expect(peer.clientId).toBe('rosa.rec');
  });
});

describe.each([
  { protocolVersion: 4, tokenIn: 'query', refused: 5 },
  { protocolVersion: 5, tokenIn: 'query', refused: 0x87 },
  { protocolVersion: 4, tokenIn: 'password', refused: 5 },
  { protocolVersion: 5, tokenIn: 'password', refused: 0x87 },
] as const)(
  'MQTT over WebSocket, version $protocolVersion, token in the $tokenIn',
  ({ protocolVersion, tokenIn, refused }) => {
    const user = (name: string) => `${name}-ws${protocolVersion}${tokenIn}`;

    it('delivers a WebSocket chat to an MQTT-over-WebSocket member with the same seq, and presence both ways', async () => {
      const room = nextRoom();
      const mia = await mqttWsAs(user('mia'), 'w1', protocolVersion, tokenIn);
      await mia.request({ action: 'join', room, id: 'j' });
      const wes = await ws(user('wes'));
      const wesJoined = mia.nextOnRoom(room, (f) => f.type === 'presence');
      await wes.request({ action: 'join', room });
      expect(await wesJoined).toMatchObject({ type: 'presence', room, user: user('wes'), state: 'joined' });

      const chat = mia.nextOnRoom(room, (f) => f.type === 'chat');
      const ack = (await wes.request({ action: 'send', room, id: 'w1', body: { text: 'hi mqtt/ws' } })) as Ack;
      expect(await chat).toMatchObject({
        type: 'chat',
        room,
        from: user('wes'),
        id: ack.id,
        seq: ack.seq,
        ref: 'w1',
        body: { text: 'hi mqtt/ws' },
      });

      const left = wes.next((f) => f.type === 'presence' && f.room === room && f.state === 'left');
      await mia.close();
      expect(await left).toMatchObject({ user: user('mia'), state: 'left' });
    });

    it('delivers a chat published over MQTT-over-WebSocket to a ws member with the ack seq', async () => {
      const room = nextRoom();
      const wes = await ws(user('wes'));
      await wes.request({ action: 'join', room });
      const mia = await mqttWsAs(user('mia'), 'w2', protocolVersion, tokenIn);
      const miaJoined = wes.next((f) => f.type === 'presence' && f.room === room);
      await mia.request({ action: 'join', room, id: 'j' });
      expect(await miaJoined).toMatchObject({ type: 'presence', room, user: user('mia'), state: 'joined' });

      const viaRequests = wes.nextChat(room);
      const ack = (await mia.request({ action: 'send', room, id: 'm1', body: { text: 'hi ws' } })) as Ack;
      expect(ack).toMatchObject({ type: 'ack', action: 'send', ref: 'm1', room });
      expect(await viaRequests).toMatchObject({ from: user('mia'), seq: ack.seq, ref: 'm1', body: { text: 'hi ws' } });

      // The room's send topic, from a tab that connected after the join (the policy grants it at CONNECT).
      const tab = await mqttWsAs(user('mia'), 'w3', protocolVersion, tokenIn);
      await tab.request({ action: 'join', room, id: 'j' });
      const viaRoomTopic = wes.nextChat(room);
      const answer = tab.response('m2');
      await tab.client.publishAsync(topics.roomSend(room), JSON.stringify({ id: 'm2', body: { text: 'direct' } }), {
        qos: 1,
      });
      const roomAck = (await answer) as Ack;
      expect(roomAck).toMatchObject({ type: 'ack', action: 'send', ref: 'm2', room, seq: (ack.seq ?? 0) + 1 });
      expect(await viaRoomTopic).toMatchObject({ from: user('mia'), seq: roomAck.seq, ref: 'm2' });
    });

    it.each([
      ['a malformed', () => 'not-a-jwt'],
      ['an expired', () => emulator.issuer.mint({ sub: user('eve'), tokenUse: 'id', ttlSeconds: -60 })],
    ])(`refuses %s token at CONNECT (CONNACK ${refused})`, async (_what, badToken) => {
      if (!emulator.mqttWsUrl) throw new Error('the emulator runs no MQTT over WebSocket');
      const options = { sub: user('eve'), suffix: 'bad', token: badToken(), protocolVersion, tokenIn };
      expect(await MqttPeer.refusal(emulator.mqttWsUrl, options)).toBe(refused);
      // And it still serves the next client.
      const ok = await mqttWsAs(user('eve'), 'good', protocolVersion, tokenIn);
      expect(await ok.request({ action: 'ping', id: 'p' })).toMatchObject({ type: 'pong', ref: 'p' });
      await ok.close();
    });
  },
);
