/**
 * Issue 8, point 3: what a signed-in user may not do, on both channels where it applies, each refused and
 * logged with who tried what.
 *
 * Channels: `ws` clients on the emulated API Gateway; MQTT.js clients on the emulated IoT Core (3.1.1 over TCP,
 * 5 over WebSocket, so both protocol versions and both transports meet the policy). Refusals come from the core
 * (`forbidden`, `not_joined`, answered as error frames on the WebSocket or on the user's MQTT responses topic)
 * or from the user's IoT policy (SUBACK 0x80 / 0x87; a refused publish closes a 3.1.1 connection and gets PUBACK
 * 0x87 on MQTT 5; a foreign client id gets CONNACK 5 / 0x87).
 *
 * "Logged": the emulator runs at `logLevel: 'debug'` so the handlers' info-level refusal lines are written;
 * `support/auth-logs.ts` collects them (JSON on stdout, as in Lambda) and the emulator's own lines (IoT's
 * `IOTDENY` / `IOTAUTH`, the gateway's `CONNECT`). Each case asserts a line that names the user (for MQTT the
 * client id, which is `{sub}.{suffix}`; for the WebSocket the connection id, which the gateway's CONNECT line
 * ties to the user: the handler's own line does not name the sub, see the issue 8 report) and the action or topic.
 *
 * Existing coverage gathered here: `test/chat.test.ts` and `test/notifications.test.ts` (private rooms,
 * `from` ignored, non-admin announce on the WebSocket), `test/iot-device-sdk.test.ts` (policy refusals with
 * the AWS device SDK), `test/cross-channel.test.ts` (a request on another user's topic, at the Lambda).
 */
import { createDynamoDbStore } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, type ServerFrame, topics } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttPeer } from '../support/mqtt-peer.js';
import { TestClient } from '../support/ws-client.js';
import { knockMqtt, NOT_AUTHORIZED } from './support/auth-channels.js';
import { LogCapture } from './support/auth-logs.js';

type Ack = Extract<ServerFrame, { type: 'ack' }>;

let emulator: Emulator;
const logs = new LogCapture();
const openWs: TestClient[] = [];
const openMqtt: MqttPeer[] = [];
let counter = 0;
const next = (prefix: string) => `${prefix}-${++counter}`;

/** The two MQTT setups every MQTT case runs on. */
const MQTT_KINDS = [
  { name: 'MQTT 3.1.1 / TCP', version: 4, transport: 'tcp', subackRefused: 0x80 },
  { name: 'MQTT 5 / WebSocket', version: 5, transport: 'ws', subackRefused: 0x87 },
] as const;
type MqttKind = (typeof MQTT_KINDS)[number];

function token(sub: string, groups: string[] = []): string {
  return emulator.issuer.mint({ sub, tokenUse: 'id', groups });
}

function store() {
  return createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** A WebSocket client and the connection id the gateway gave it. */
async function ws(sub: string, groups: string[] = []): Promise<{ client: TestClient; connectionId: string }> {
  const before = new Set(emulator.gateway.connectionIds());
  const client = await TestClient.connect(emulator.url, token(sub, groups), { name: sub });
  openWs.push(client);
  const connectionId = emulator.gateway.connectionIds().find((id) => !before.has(id));
  if (!connectionId) throw new Error('no new connection id');
  return { client, connectionId };
}

async function mqttAs(sub: string, kind: MqttKind = MQTT_KINDS[1]): Promise<MqttPeer> {
  const url = kind.transport === 'tcp' ? emulator.mqttUrl : emulator.mqttWsUrl;
  if (!url) throw new Error('the emulator runs no MQTT');
  const peer = await MqttPeer.connect(url, {
    sub,
    suffix: next('c'),
    token: token(sub),
    protocolVersion: kind.version,
  });
  openMqtt.push(peer);
  // The `connected` lifecycle event makes it a connection of its user (a join needs it to last).
  await expect.poll(() => store().getConnection(`mqtt:${peer.clientId}`), { interval: 20 }).toBeDefined();
  return peer;
}

/** The WebSocket handler logged the refusal on this connection, and the gateway's log ties it to `sub`. */
async function expectWsRefusalLogged(sub: string, connectionId: string, fields: Record<string, unknown>) {
  await expect
    .poll(() => logs.handlerLines({ handler: 'ws-routes', message: 'request refused', connectionId, ...fields }))
    .not.toEqual([]);
  expect(logs.gatewayUserOf(connectionId)).toBe(sub);
}

/** The MQTT ingress Lambda logged the refusal under the caller's client id (`{sub}.{suffix}`). */
async function expectMqttRefusalLogged(peer: MqttPeer, fields: Record<string, unknown>) {
  expect(peer.clientId.startsWith(`${peer.sub}.`)).toBe(true);
  await expect
    .poll(() =>
      logs.handlerLines({ handler: 'iot-ingress', message: 'request refused', clientId: peer.clientId, ...fields }),
    )
    .not.toEqual([]);
}

/** IoT logged the policy denial: client id, action and resource. */
async function expectIotDenyLogged(peer: MqttPeer, action: string, resource: string) {
  await expect.poll(() => logs.emulatorLines('IOTDENY', ` ${peer.clientId} `, ` ${action} `, resource)).not.toEqual([]);
}

/** A publish the policy refuses: MQTT 5 gets PUBACK 0x87 and stays; 3.1.1 is disconnected. */
async function expectPublishRefused(peer: MqttPeer, topic: string, payload: string) {
  if (peer.client.options.protocolVersion === 5) {
    await expect(peer.client.publishAsync(topic, payload, { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    expect(await peer.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  } else {
    const closed = new Promise<void>((resolve) => peer.client.once('close', () => resolve()));
    peer.client.publish(topic, payload, { qos: 1 });
    await closed;
  }
}

/** The SUBACK's codes: MQTT.js rejects a SUBACK with any failure, the codes are on the error's packet. */
async function subackCodes(pending: Promise<Array<{ qos: number }>>): Promise<number[]> {
  try {
    return (await pending).map((g) => g.qos);
  } catch (error) {
    const granted = (error as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw error;
    return granted;
  }
}

async function history(room: string) {
  return (await store().listMessages(room, { limit: 50 })).messages.map((m) => ({
    from: m.from,
    ref: m.ref,
    body: m.body,
  }));
}

beforeAll(async () => {
  logs.start();
  emulator = await startEmulator({ port: 0, logLevel: 'debug', log: logs.sink });
});

afterAll(async () => {
  await Promise.all(openWs.map((c) => c.close()));
  await Promise.all(openMqtt.map((p) => p.client.endAsync(true)));
  await emulator?.close();
  logs.stop();
});

describe('joining a private room', () => {
  it('WebSocket: forbidden, not subscribed, logged', async () => {
    const room = next('private');
    const { client: owner } = await ws('az-owner');
    expect(await owner.request({ action: 'join', room, body: { visibility: 'private' } })).toMatchObject({
      type: 'ack',
      visibility: 'private',
    });
    const { client: eve, connectionId } = await ws('az-eve');
    expect(await eve.request({ action: 'join', room, id: 'j1' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      ref: 'j1',
    });
    expect(await store().isSubscribed(room, connectionId)).toBe(false);
    expect(await store().isMember(room, 'az-eve')).toBe(false);
    await expectWsRefusalLogged('az-eve', connectionId, { code: 'forbidden', action: 'join', room });
  });

  it.each(MQTT_KINDS)('$name (requests topic): forbidden on the responses topic, logged', async (kind) => {
    const room = next('private');
    const { client: owner } = await ws('az-owner');
    await owner.request({ action: 'join', room, body: { visibility: 'private' } });
    const eve = await mqttAs(`az-eve${kind.version}`, kind);
    expect(await eve.request({ action: 'join', room, id: 'j1' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      ref: 'j1',
    });
    expect(await store().isSubscribed(room, `mqtt:${eve.clientId}`)).toBe(false);
    await expectMqttRefusalLogged(eve, { code: 'forbidden', action: 'join', room });
  });
});

describe('sending to a room you left', () => {
  it('WebSocket: not_joined, nothing stored, logged', async () => {
    const room = next('left');
    const { client: bob, connectionId } = await ws('az-bob');
    await bob.request({ action: 'join', room });
    await bob.request({ action: 'leave', room });
    expect(await bob.request({ action: 'send', room, id: 's1', body: { text: 'ghost' } })).toMatchObject({
      type: 'error',
      code: 'not_joined',
      ref: 's1',
    });
    expect(await history(room)).toEqual([]);
    await expectWsRefusalLogged('az-bob', connectionId, { code: 'not_joined', action: 'send', room });
  });

  it.each(MQTT_KINDS)('$name: not_joined on the requests topic and on the room send topic, logged', async (kind) => {
    const room = next('left');
    const sub = `az-bob${kind.version}`;
    // A member before the CONNECT, so the policy grants the room's send topic (membership outlives a leave).
    const first = await ws(sub);
    await first.client.request({ action: 'join', room });
    const bob = await mqttAs(sub, kind);
    expect(await bob.request({ action: 'join', room })).toMatchObject({ type: 'ack' });
    expect(await bob.request({ action: 'leave', room })).toMatchObject({ type: 'ack' });

    expect(await bob.request({ action: 'send', room, id: 's1', body: { text: 'ghost' } })).toMatchObject({
      code: 'not_joined',
      ref: 's1',
    });
    const viaRoomTopic = bob.response('s2');
    await bob.client.publishAsync(topics.roomSend(room), JSON.stringify({ id: 's2', body: { text: 'ghost' } }), {
      qos: 1,
    });
    expect(await viaRoomTopic).toMatchObject({ code: 'not_joined', ref: 's2' });
    expect(await history(room)).toEqual([]);
    await expectMqttRefusalLogged(bob, { code: 'not_joined', action: 'send', room, ref: 's1' });
    await expectMqttRefusalLogged(bob, { code: 'not_joined', action: 'send', room, ref: 's2' });
  });
});

describe.each(MQTT_KINDS)("subscribing to another user's topics: $name", (kind) => {
  it('refused per filter in the SUBACK, nothing delivered, logged', async () => {
    const room = next('theirs');
    const victim = await mqttAs(`az-vic${kind.version}`, kind);
    await victim.request({ action: 'join', room });
    const eve = await mqttAs(`az-spy${kind.version}`, kind);
    const theirs = [
      topics.inbox(victim.sub),
      topics.userRoomsFilter(victim.sub),
      topics.userRoom(victim.sub, room),
      topics.responses(victim.sub),
      'rt/users/+/inbox',
      'rt/#',
    ];
    const codes = await subackCodes(eve.client.subscribeAsync([...theirs, topics.inbox(eve.sub)], { qos: 1 }));
    expect(codes).toEqual([...theirs.map(() => kind.subackRefused), 1]);

    // The victim's traffic reaches the victim only.
    const { client: talker } = await ws(`az-talk${kind.version}`);
    await talker.request({ action: 'join', room });
    const delivered = victim.nextOnRoom(room, (f) => f.type === 'chat');
    await talker.request({ action: 'send', room, body: { text: 'for members' } });
    await delivered;
    expect(eve.received.filter((m) => m.topic.includes(victim.sub))).toEqual([]);
    for (const filter of theirs) await expectIotDenyLogged(eve, 'iot:Subscribe', `topicfilter/${filter}`);
  });
});

describe.each(MQTT_KINDS)('publishing where the policy does not allow: $name', (kind) => {
  it('to rt/announcements: refused, delivered to nobody, logged', async () => {
    const listener = await mqttAs(`az-lis${kind.version}`, kind);
    expect((await listener.client.subscribeAsync(topics.announcements, { qos: 1 }))[0]?.qos).toBe(1);
    const eve = await mqttAs(`az-ann${kind.version}`, kind);
    await expectPublishRefused(eve, topics.announcements, JSON.stringify({ type: 'announcement', body: { x: 1 } }));
    // A real announcement, sent after the refusal, is the only one the listener gets.
    const seen = listener.next((m) => m.topic === topics.announcements);
    const { client: admin } = await ws(`az-admin${kind.version}`, ['admin']);
    expect(await admin.request({ action: 'announce', id: 'real', body: { text: 'real' } })).toMatchObject({
      type: 'ack',
    });
    expect((await seen).frame).toMatchObject({ type: 'announcement', body: { text: 'real' } });
    expect(listener.received.filter((m) => m.topic === topics.announcements)).toHaveLength(1);
    await expectIotDenyLogged(eve, 'iot:Publish', `topic/${topics.announcements}`);
  });

  it("to another user's requests topic: refused, nothing runs as them, logged", async () => {
    const room = next('asvictim');
    const victim = await mqttAs(`az-req${kind.version}`, kind);
    const eve = await mqttAs(`az-imp${kind.version}`, kind);
    await expectPublishRefused(eve, topics.requests(victim.sub), JSON.stringify({ action: 'join', room, id: 'imp' }));
    expect(await store().listUserRooms(victim.sub)).toEqual([]);
    expect(await store().getRoom(room)).toBeUndefined();
    expect(victim.received.filter((m) => 'ref' in m.frame && m.frame.ref === 'imp')).toEqual([]);
    await expectIotDenyLogged(eve, 'iot:Publish', `topic/${topics.requests(victim.sub)}`);
  });

  it("to the send topic of a room it is not in, and to a member's delivery topic: refused, nothing stored, logged", async () => {
    const room = next('notin');
    const { client: member } = await ws(`az-mem${kind.version}`);
    await member.request({ action: 'join', room });
    const eve = await mqttAs(`az-out${kind.version}`, kind);
    await expectPublishRefused(eve, topics.roomSend(room), JSON.stringify({ id: 'x1', body: { text: 'intruding' } }));
    await expectIotDenyLogged(eve, 'iot:Publish', `topic/${topics.roomSend(room)}`);

    const eve2 = await mqttAs(`az-out${kind.version}`, kind);
    const forged = { type: 'chat', id: 'm', room, from: member.name, seq: 99, ts: 0, body: { text: 'forged' } };
    await expectPublishRefused(eve2, topics.userRoom(member.name, room), JSON.stringify(forged));
    await expectIotDenyLogged(eve2, 'iot:Publish', `topic/${topics.userRoom(member.name, room)}`);
    expect(await history(room)).toEqual([]);
  });
});

describe('an announce from a user who is not an admin', () => {
  it('WebSocket: forbidden, logged with the sub', async () => {
    const { client: eve, connectionId } = await ws('az-notadmin');
    expect(await eve.request({ action: 'announce', id: 'a1', body: { text: 'hi all' } })).toMatchObject({
      code: 'forbidden',
      ref: 'a1',
    });
    expect(logs.handlerLines({ message: 'announce refused: not an admin', sub: 'az-notadmin' })).not.toEqual([]);
    await expectWsRefusalLogged('az-notadmin', connectionId, { code: 'forbidden', action: 'announce' });
  });

  it('MQTT (requests topic): forbidden, logged', async () => {
    const eve = await mqttAs('az-notadmin5');
    expect(await eve.request({ action: 'announce', id: 'a1', body: { text: 'hi all' } })).toMatchObject({
      code: 'forbidden',
    });
    expect(logs.handlerLines({ message: 'announce refused: not an admin', sub: 'az-notadmin5' })).not.toEqual([]);
    await expectMqttRefusalLogged(eve, { code: 'forbidden', action: 'announce' });
  });
});

describe('spoofing `from`', () => {
  /** A send carrying `from` is either refused as a bad request or stored as the token's user: never as `victim`. */
  async function expectNotSpoofed(answer: ServerFrame, room: string, sender: string, victim: string) {
    const stored = await history(room);
    if (answer.type === 'error') {
      expect(answer).toMatchObject({ code: 'bad_request' });
      expect(stored).toEqual([]);
    } else {
      expect(answer).toMatchObject({ type: 'ack', action: 'send' });
      expect(stored.map((m) => m.from)).toEqual([sender]);
    }
    expect(stored.map((m) => m.from)).not.toContain(victim);
  }

  it('WebSocket: the message is from the token’s user (the frame’s `from` is ignored)', async () => {
    const room = next('spoof');
    const { client: eve } = await ws('az-spoofer');
    const { client: alice } = await ws('az-alice');
    for (const c of [eve, alice]) await c.request({ action: 'join', room });
    const received = alice.nextChat(room);
    const answer = await eve.request({ action: 'send', room, from: 'az-alice', body: { text: 'it was me' } } as never);
    await expectNotSpoofed(answer, room, 'az-spoofer', 'az-alice');
    if (answer.type === 'ack') expect(await received).toMatchObject({ from: 'az-spoofer' });
  });

  it.each(MQTT_KINDS)('$name: requests topic and room send topic, from the token’s user', async (kind) => {
    const sub = `az-spoof${kind.version}`;
    const room = next('spoof');
    const first = await ws(sub);
    await first.client.request({ action: 'join', room });
    const eve = await mqttAs(sub, kind);
    await eve.request({ action: 'join', room });
    const answer = await eve.request({ action: 'send', room, id: 'f1', from: 'az-alice', body: { t: 1 } } as never);
    await expectNotSpoofed(answer, room, sub, 'az-alice');

    const viaRoomTopic = eve.response('f2');
    await eve.client.publishAsync(
      topics.roomSend(room),
      JSON.stringify({ id: 'f2', from: 'az-alice', room: 'elsewhere', body: { t: 2 } }),
      { qos: 1 },
    );
    expect(await viaRoomTopic).toMatchObject({ type: 'ack', room });
    const stored = await history(room);
    expect(stored.map((m) => m.from)).not.toContain('az-alice');
    expect(stored.find((m) => m.ref === 'f2')).toMatchObject({ from: sub });
  });
});

describe("MQTT CONNECT with another user's client id", () => {
  it.each(MQTT_KINDS)('$name: refused at CONNACK, the owner stays connected, logged', async (kind) => {
    const owner = await mqttAs(`az-own${kind.version}`, kind);
    const eve = `az-thief${kind.version}`;
    const url = (kind.transport === 'tcp' ? emulator.mqttUrl : emulator.mqttWsUrl) ?? '';
    // The owner's exact client id, and one more of theirs (`{sub}.{suffix}`): both take a session over if let in.
    for (const stolen of [owner.clientId, clientIdFor(owner.sub, 'other'), owner.sub]) {
      const answer = await knockMqtt(url, stolen, kind.version, { username: 'any', password: token(eve) });
      expect(answer).toEqual({ accepted: false, connack: NOT_AUTHORIZED[kind.version] });
      await expect
        .poll(() =>
          logs.handlerLines({ handler: 'iot-authorizer', reason: 'foreign_client_id', sub: eve, clientId: stolen }),
        )
        .not.toEqual([]);
      expect(logs.emulatorLines('IOTAUTH', stolen, 'denied')).not.toEqual([]);
    }
    expect(owner.client.connected).toBe(true);
    expect(await owner.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await store().listUserConnections(eve)).toEqual([]);
  });
});

describe("replaying another user's message client id", () => {
  it('is a new message of the replayer (de-duplication is per sender), on both channels', async () => {
    const room = next('replay');
    const { client: alice } = await ws('az-ralice');
    const { client: eve } = await ws('az-reve');
    const mallory = await mqttAs('az-rmal');
    for (const c of [alice, eve]) await c.request({ action: 'join', room });
    await mallory.request({ action: 'join', room });

    const original = (await alice.request({ action: 'send', room, id: 'msg-1', body: { text: 'from alice' } })) as Ack;
    const overWs = (await eve.request({ action: 'send', room, id: 'msg-1', body: { text: 'from alice' } })) as Ack;
    const overMqtt = (await mallory.request({
      action: 'send',
      room,
      id: 'msg-1',
      body: { text: 'from alice' },
    })) as Ack;
    for (const replay of [overWs, overMqtt]) {
      expect(replay).toMatchObject({ type: 'ack', action: 'send' });
      expect(replay.duplicate).toBeUndefined();
      expect(replay.id).not.toBe(original.id);
      expect(replay.seq).not.toBe(original.seq);
    }
    // The owner's own retry is the one that is de-duplicated.
    expect(await alice.request({ action: 'send', room, id: 'msg-1', body: { text: 'from alice' } })).toMatchObject({
      duplicate: true,
      id: original.id,
      seq: original.seq,
    });
    expect(await history(room)).toEqual([
      { from: 'az-ralice', ref: 'msg-1', body: { text: 'from alice' } },
      { from: 'az-reve', ref: 'msg-1', body: { text: 'from alice' } },
      { from: 'az-rmal', ref: 'msg-1', body: { text: 'from alice' } },
    ]);
  });
});
