/**
 * Notifications, announcements and the backend publisher against the running emulator, over the real wire:
 * the publisher (the same module a backend uses) through the emulator's DynamoDB, `@connections`, IoT data
 * plane and SQS emulation; `ws` clients on the emulated API Gateway and MQTT.js clients on the emulated IoT
 * Core; large announcements through the real fan-out queue and worker.
 */
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, LIMITS, type ServerFrame, topics } from '@viba-realtime/protocol';
import {
  createPublisher,
  fetchLocalPublisherConfig,
  type Publisher,
  TooManyRecipientsError,
  UnknownRoomError,
  ValidationError,
} from '@viba-realtime/publisher';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './support/ws-client.js';

let emulator: Emulator;
let publisher: Publisher;
const sockets: TestClient[] = [];
const mqttClients: MqttClient[] = [];

function token(sub: string, groups: string[] = []): string {
  return emulator.issuer.mint({ sub, groups, tokenUse: 'id', ttlSeconds: 3600 });
}

async function ws(sub: string, groups: string[] = []): Promise<TestClient> {
  const client = await TestClient.connect(emulator.url, token(sub, groups), { name: sub });
  sockets.push(client);
  return client;
}

/** An MQTT client subscribed to `filters`, collecting every frame by topic. */
async function mqttAs(sub: string, suffix: string, filters: string[], groups: string[] = []) {
  if (!emulator.mqttUrl) throw new Error('IoT emulation is off');
  const client = await mqtt.connectAsync(emulator.mqttUrl, {
    clientId: clientIdFor(sub, suffix),
    username: 'any',
    password: token(sub, groups),
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  mqttClients.push(client);
  const grants = await client.subscribeAsync(filters, { qos: 1 });
  const received: { topic: string; frame: ServerFrame }[] = [];
  const waiters: { match: (t: string, f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  client.on('message', (topic, payload) => {
    const frame = JSON.parse(payload.toString()) as ServerFrame;
    received.push({ topic, frame });
    const waiter = waiters.find((w) => w.match(topic, frame));
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(frame);
    }
  });
  const next = (match: (t: string, f: ServerFrame) => boolean) =>
    new Promise<ServerFrame>((resolve) => {
      const seen = received.find((r) => match(r.topic, r.frame));
      if (seen) resolve(seen.frame);
      else waiters.push({ match, resolve });
    });
  return { client, grants, received, next };
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl));
});

afterAll(async () => {
  publisher?.close();
  await Promise.all(sockets.map((s) => s.close()));
  await Promise.all(mqttClients.map((c) => c.endAsync()));
  await emulator?.close();
});

describe('notifications', () => {
  it('an offline user finds the notification on next connect, unread until marked', async () => {
    const [sent] = await publisher.notify('nt-bob', { title: 'Your order shipped' });
    expect(sent).toMatchObject({ userId: 'nt-bob', duplicate: false, delivery: { delivered: 0 } });

    const bob = await ws('nt-bob');
    const inbox = await bob.request({ action: 'inbox' });
    expect(inbox).toMatchObject({
      type: 'inbox',
      unread: 1,
      notifications: [{ type: 'notification', id: sent?.id, body: { title: 'Your order shipped' }, read: false }],
    });
    // Still unread on a second look, until marked.
    expect(await bob.request({ action: 'inbox' })).toMatchObject({ unread: 1 });
    expect(await bob.request({ action: 'markRead', body: { ids: [sent?.id as string] } })).toMatchObject({
      type: 'ack',
      action: 'markRead',
      unread: 0,
    });
    expect(await bob.request({ action: 'inbox' })).toMatchObject({ unread: 0, notifications: [{ read: true }] });
  });

  it('reaches every device of the user live: two WebSocket connections and an MQTT client, once each', async () => {
    const phone = await ws('nt-alice');
    const laptop = await ws('nt-alice');
    const device = await mqttAs('nt-alice', 'tablet', [topics.inbox('nt-alice')]);
    const onPhone = phone.next((f) => f.type === 'notification');
    const onLaptop = laptop.next((f) => f.type === 'notification');
    const onDevice = device.next((t, f) => t === topics.inbox('nt-alice') && f.type === 'notification');

    const [sent] = await publisher.notify('nt-alice', { title: 'Standup' });
    expect(sent?.delivery).toMatchObject({ delivered: 3, failed: 0 });
    for (const frame of await Promise.all([onPhone, onLaptop, onDevice])) {
      expect(frame).toMatchObject({ type: 'notification', id: sent?.id, body: { title: 'Standup' }, read: false });
    }
    // A notify with the same key stores and delivers nothing new.
    const [again] = await publisher.notify('nt-alice', { title: 'Standup' }, { key: 'standup-1' });
    const [repeat] = await publisher.notify('nt-alice', { title: 'Standup' }, { key: 'standup-1' });
    expect(repeat).toMatchObject({ id: again?.id, duplicate: true, delivery: { delivered: 0 } });
    expect(await phone.request({ action: 'inbox' })).toMatchObject({ unread: 2 });
  });
});

describe('announcements', () => {
  it('a group announcement reaches only that group, on both channels', async () => {
    const betaWs = await ws('an-beta', ['beta']);
    const otherWs = await ws('an-other', ['gamma']);
    const betaMqtt = await mqttAs('an-beta', 'm', [topics.groupAnnouncements('beta'), topics.announcements], ['beta']);
    const otherMqtt = await mqttAs('an-other', 'm', [topics.announcements]);
    expect(betaMqtt.grants.map((g) => g.qos)).toEqual([1, 1]);
    // The policy refuses a group the user is not in (SUBACK failure), as IoT Core does.
    await expect(otherMqtt.client.subscribeAsync(topics.groupAnnouncements('beta'), { qos: 1 })).rejects.toThrow(
      /Not authorized/,
    );

    const toBeta = betaWs.next((f) => f.type === 'announcement');
    const toBetaMqtt = betaMqtt.next((t, f) => t === topics.groupAnnouncements('beta') && f.type === 'announcement');
    const beta = await publisher.announce({ text: 'beta feature' }, { group: 'beta' });
    expect(beta).toMatchObject({ duplicate: false, mqtt: 'delivered', batches: 0 });
    expect(await toBeta).toMatchObject({ type: 'announcement', id: beta.id, group: 'beta', from: 'backend' });
    expect(await toBetaMqtt).toMatchObject({ id: beta.id, group: 'beta' });

    // An announcement to everyone after it: once it has arrived, the group one would have arrived before it.
    const everyoneWs = otherWs.next((f) => f.type === 'announcement');
    const everyoneMqtt = otherMqtt.next((t) => t === topics.announcements);
    const all = await publisher.announce({ text: 'for all' });
    expect(await everyoneWs).toMatchObject({ id: all.id, body: { text: 'for all' } });
    expect(await everyoneMqtt).toMatchObject({ id: all.id });
    expect(otherMqtt.received.map((r) => r.frame)).not.toContainEqual(expect.objectContaining({ id: beta.id }));
    expect(await otherWs.request({ action: 'announcements' })).toMatchObject({
      announcements: expect.not.arrayContaining([expect.objectContaining({ id: beta.id })]),
    });
    // Later readers catch up from the store: the beta user sees both, in order.
    const page = await betaWs.request({ action: 'announcements', body: { since: beta.ts } });
    expect(page.type === 'announcements' && page.announcements.map((a) => a.id)).toEqual([beta.id, all.id]);
  });

  it('refuses announce from a user who is not an admin, and takes it from an admin', async () => {
    const user = await ws('an-user');
    expect(await user.request({ action: 'announce', id: 'x1', body: { text: 'hi all' } })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      ref: 'x1',
    });
    const admin = await ws('an-admin', ['admin']);
    const heard = user.next((f) => f.type === 'announcement');
    const ack = await admin.request({ action: 'announce', id: 'x2', body: { text: 'from an admin' } });
    expect(ack).toMatchObject({ type: 'ack', action: 'announce', ref: 'x2' });
    expect(await heard).toMatchObject({ type: 'announcement', from: 'an-admin', body: { text: 'from an admin' } });
  });

  it(`an audience over LIMITS.fanoutInlineMax goes through the queue in batches, one copy each`, async () => {
    const count = LIMITS.fanoutInlineMax + 100;
    const crowd = await Promise.all(Array.from({ length: count }, (_, i) => ws(`crowd-${i}`, ['crowd'])));
    const copies = crowd.map((c) => c.next((f) => f.type === 'announcement' && f.group === 'crowd'));
    const outcome = await publisher.announce({ text: 'to the crowd' }, { group: 'crowd' });
    expect(outcome).toMatchObject({ connections: count, delivered: 0, batches: 2 });
    const frames = await Promise.all(copies);
    expect(new Set(frames.map((f) => f.type === 'announcement' && f.id))).toEqual(new Set([outcome.id]));
    await emulator.fanoutQueue?.idle();
    for (const client of crowd) {
      expect(client.received.filter((f) => f.type === 'announcement' && f.id === outcome.id)).toHaveLength(1);
    }
    await Promise.all(crowd.map((c) => c.close()));
  }, 120_000);
});

describe('publisher input errors are typed', () => {
  it('names the problem and writes nothing', async () => {
    await expect(publisher.notify('not a user!', { a: 1 })).rejects.toMatchObject({
      constructor: ValidationError,
      code: 'invalid_user',
    });
    const many = Array.from({ length: LIMITS.maxNotifyRecipients + 1 }, (_, i) => `u${i}`);
    await expect(publisher.notify(many, { a: 1 })).rejects.toBeInstanceOf(TooManyRecipientsError);
    await expect(publisher.notify('u1', { big: 'x'.repeat(LIMITS.maxBodyBytes) })).rejects.toMatchObject({
      code: 'body_too_large',
    });
    await expect(publisher.sendToRoom('no-such-room', { text: 'hi' })).rejects.toBeInstanceOf(UnknownRoomError);
    await expect(publisher.announce({ text: 'x' }, { group: 'bad/group' })).rejects.toMatchObject({
      code: 'invalid_group',
    });
    await expect(publisher.sendToRoom('bad room', { text: 'hi' })).rejects.toMatchObject({ code: 'invalid_room' });
    const reader = await ws('u1');
    expect(await reader.request({ action: 'inbox' })).toMatchObject({ unread: 0, notifications: [] });
  });

  it('sends to a room it created, and a closed room refuses joins and sends', async () => {
    await publisher.createRoom('pub-room', { members: ['pr-member'] });
    const member = await ws('pr-member');
    expect(await member.request({ action: 'join', room: 'pub-room' })).toMatchObject({ type: 'ack' });
    const outsider = await ws('pr-outsider');
    expect(await outsider.request({ action: 'join', room: 'pub-room' })).toMatchObject({ code: 'forbidden' });

    const chat = member.nextChat('pub-room');
    const sent = await publisher.sendToRoom('pub-room', { text: 'from the backend' });
    expect(await chat).toMatchObject({ from: 'backend', seq: sent.seq, body: { text: 'from the backend' } });

    const closed = member.next((f) => f.type === 'error' && f.code === 'room_closed');
    expect(await publisher.closeRoom('pub-room')).toBe(1);
    expect(await closed).toMatchObject({ room: 'pub-room' });
    expect(await member.request({ action: 'send', room: 'pub-room', id: 's1', body: {} })).toMatchObject({
      code: 'room_closed',
    });
    expect(await member.request({ action: 'join', room: 'pub-room' })).toMatchObject({ code: 'room_closed' });
  });
});
