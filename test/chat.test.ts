/**
 * End to end over the real wire: `ws` clients -> emulated API Gateway -> the Lambda handlers -> DynamoDB
 * API server and back through `@connections`, all on 127.0.0.1 with ephemeral ports.
 */
import { createDynamoDbStore } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { LIMITS, type ServerFrame } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './support/ws-client.js';

let emulator: Emulator;
let now = Date.now();
const clock = () => now;
const open: TestClient[] = [];

function store() {
  return createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    clock,
  });
}

async function connectAs(sub: string, options: { ttlSeconds?: number; header?: boolean } = {}) {
  const token = emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: options.ttlSeconds ?? 3600 });
  const client = await TestClient.connect(emulator.url, token, { name: sub, header: options.header ?? false });
  open.push(client);
  return client;
}

/** The connection id the gateway gave the newest connection. */
async function connectWithId(sub: string) {
  const before = new Set(emulator.gateway.connectionIds());
  const client = await connectAs(sub);
  const id = emulator.gateway.connectionIds().find((c) => !before.has(c));
  if (!id) throw new Error('no new connection id');
  return { client, id };
}

async function joined(client: TestClient, room: string, visibility?: 'public' | 'private') {
  const answer = await client.request({ action: 'join', room, ...(visibility ? { body: { visibility } } : {}) });
  expect(answer).toMatchObject({ type: 'ack', action: 'join', room });
  return answer;
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, clock, logLevel: 'silent' });
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await emulator.close();
});

describe('connect', () => {
  it('answers 401 without a token and runs no route', async () => {
    const before = emulator.gateway.connectionIds().length;
    expect(await TestClient.refusal(emulator.url)).toBe(401);
    expect(emulator.gateway.connectionIds().length).toBe(before);
  });

  it.each([
    ['garbage', () => 'not-a-jwt'],
    ['expired', () => emulator.issuer.mint({ sub: 'eve', tokenUse: 'id', ttlSeconds: -60 })],
    [
      'another pool',
      () =>
        emulator.issuer.mint({
          sub: 'eve',
          tokenUse: 'id',
          issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other',
        }),
    ],
    ['another client', () => emulator.issuer.mint({ sub: 'eve', tokenUse: 'id', audience: 'someotherclient' })],
  ])('answers 403 for a %s token and writes nothing', async (_name, token) => {
    expect(await TestClient.refusal(`${emulator.url}?token=${encodeURIComponent(token())}`)).toBe(403);
    expect(await store().listUserConnections('eve')).toEqual([]);
  });

  it('accepts an access token in the Authorization header and records the connection', async () => {
    const token = emulator.issuer.mint({ sub: 'henry', tokenUse: 'access' });
    const client = await TestClient.connect(emulator.url, token, { header: true, name: 'henry' });
    open.push(client);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    const connections = await store().listUserConnections('henry');
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({ sub: 'henry', channel: 'ws' });
  });

  it('serves a token from /dev/token that the gateway accepts', async () => {
    const response = await fetch(`${emulator.httpUrl}/dev/token?sub=ivy&groups=admin`);
    expect(response.status).toBe(200);
    const { idToken, accessToken, expiresIn } = (await response.json()) as Record<string, unknown>;
    expect(typeof accessToken).toBe('string');
    expect(expiresIn).toBeGreaterThan(0);
    const client = await TestClient.connect(emulator.url, String(idToken), { name: 'ivy' });
    open.push(client);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });
});

describe('rooms', () => {
  it('lets three clients chat, in seq order, with the sender set from the token', async () => {
    const [alice, bob, carol] = await Promise.all([connectAs('alice'), connectAs('bob'), connectAs('carol')]);
    for (const c of [alice, bob, carol]) await joined(c, 'lobby');

    const ack = await alice.request({
      action: 'send',
      room: 'lobby',
      body: { text: 'hello' },
      from: 'mallory',
    } as never);
    expect(ack).toMatchObject({ type: 'ack', action: 'send', room: 'lobby', seq: 1 });
    const [atBob, atCarol] = await Promise.all([bob.nextChat('lobby'), carol.nextChat('lobby')]);
    for (const chat of [atBob, atCarol]) {
      expect(chat).toMatchObject({ from: 'alice', seq: 1, body: { text: 'hello' }, id: (ack as { id: string }).id });
    }

    const reply = await bob.request({ action: 'send', room: 'lobby', body: { text: 'hi alice', from: 'carol' } });
    expect(reply).toMatchObject({ seq: 2 });
    expect(await alice.nextChat('lobby')).toMatchObject({ from: 'bob', seq: 2 });
    expect(await carol.nextChat('lobby')).toMatchObject({ from: 'bob', seq: 2 });
    // The sender gets the ack, not an echo of its own message.
    expect(alice.received.filter((f) => f.type === 'chat' && f.from === 'alice')).toEqual([]);
  });

  it('tells members who joined', async () => {
    const [dora, ed] = await Promise.all([connectAs('dora'), connectAs('ed')]);
    await joined(dora, 'presence-room');
    await joined(ed, 'presence-room');
    expect(await dora.next((f) => f.type === 'presence')).toMatchObject({
      type: 'presence',
      room: 'presence-room',
      user: 'ed',
      state: 'joined',
    });
  });

  it('announces presence per user, not per connection', async () => {
    const [phone, laptop, watcher] = await Promise.all([connectAs('cleo'), connectAs('cleo'), connectAs('dan')]);
    await joined(watcher, 'devices');
    await joined(phone, 'devices');
    now += 1; // the laptop joins a moment later (same-millisecond joins are ordered by connection id)
    await joined(laptop, 'devices');
    await phone.request({ action: 'leave', room: 'devices' });
    // A barrier: the next presence-or-chat frame dan sees tells whether anything came in between.
    await laptop.request({ action: 'send', room: 'devices', body: { text: 'still here' } });
    const isPresenceOrChat = (f: ServerFrame) => f.type === 'presence' || f.type === 'chat';
    expect(await watcher.next(isPresenceOrChat)).toMatchObject({ type: 'presence', user: 'cleo', state: 'joined' });
    expect(await watcher.next(isPresenceOrChat)).toMatchObject({ type: 'chat', body: { text: 'still here' } });
    await laptop.request({ action: 'leave', room: 'devices' });
    expect(await watcher.next(isPresenceOrChat)).toMatchObject({ type: 'presence', user: 'cleo', state: 'left' });
  });

  it('refuses a non-member of a private room', async () => {
    const [owner, stranger] = await Promise.all([connectAs('olga'), connectAs('sam')]);
    expect(await joined(owner, 'secret', 'private')).toMatchObject({ visibility: 'private' });
    expect(await stranger.request({ action: 'join', room: 'secret' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      room: 'secret',
    });
    expect(await stranger.request({ action: 'history', room: 'secret' })).toMatchObject({ code: 'forbidden' });
    expect(await stranger.request({ action: 'send', room: 'secret', body: { text: 'let me in' } })).toMatchObject({
      code: 'not_joined',
    });
    expect(await owner.request({ action: 'send', room: 'secret', body: { text: 'only me' } })).toMatchObject({
      seq: 1,
    });
  });

  it('pages history backward and forward', async () => {
    const writer = await connectAs('hank');
    await joined(writer, 'archive');
    for (let i = 1; i <= 7; i++) await writer.request({ action: 'send', room: 'archive', body: { n: i } });

    const seqs = (f: ServerFrame) => (f.type === 'history' ? f.messages.map((m) => m.seq) : []);
    const newest = await writer.request({ action: 'history', room: 'archive', body: { limit: 3 } });
    expect(seqs(newest)).toEqual([5, 6, 7]);
    expect(newest).toMatchObject({ next: { before: 5 } });
    const older = await writer.request({ action: 'history', room: 'archive', body: { before: 5, limit: 3 } });
    expect(seqs(older)).toEqual([2, 3, 4]);
    const oldest = await writer.request({ action: 'history', room: 'archive', body: { before: 2, limit: 3 } });
    expect(seqs(oldest)).toEqual([1]);
    const forward = await writer.request({ action: 'history', room: 'archive', body: { after: 5 } });
    expect(seqs(forward)).toEqual([6, 7]);
    if (forward.type === 'history') expect(forward.messages[0]).toMatchObject({ from: 'hank', body: { n: 6 } });
  });

  it('cuts a history page of large messages to fit API Gateway, and the cursor continues it', async () => {
    const writer = await connectAs('gus');
    await joined(writer, 'big');
    const text = 'x'.repeat(LIMITS.maxBodyBytes - 100);
    for (let i = 1; i <= 10; i++) await writer.request({ action: 'send', room: 'big', body: { i, text } });

    const seen: number[] = [];
    let body: { before?: number; limit: number } = { limit: 20 };
    for (let pages = 0; pages < 10; pages++) {
      const page = await writer.request({ action: 'history', room: 'big', body });
      if (page.type !== 'history') throw new Error(`unexpected ${page.type}`);
      expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThan(128 * 1024);
      seen.unshift(...page.messages.map((m) => m.seq));
      if (!page.next || !('before' in page.next)) break;
      body = { before: page.next.before, limit: 20 };
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const forward = await writer.request({ action: 'history', room: 'big', body: { after: 0, limit: 20 } });
    if (forward.type !== 'history') throw new Error(`unexpected ${forward.type}`);
    expect(forward.messages[0]?.seq).toBe(1);
    expect(forward.next).toEqual({ after: forward.messages.at(-1)?.seq });
  });

  it('lets a member who is not the owner into a private room', async () => {
    const [owner, member] = await Promise.all([connectAs('mona'), connectAs('ned')]);
    await joined(owner, 'club', 'private');
    await owner.request({ action: 'send', room: 'club', body: { text: 'welcome' } });
    // Granting membership is the backend's job (backend publisher); here the store does it directly.
    await store().addMember('club', 'ned');
    expect(await joined(member, 'club')).toMatchObject({ visibility: 'private', seq: 1 });
    expect(await member.request({ action: 'history', room: 'club' })).toMatchObject({
      messages: [{ seq: 1, from: 'mona' }],
    });
  });

  it('answers a repeated client id with the same ack and delivers it once', async () => {
    const [sender, receiver] = await Promise.all([connectAs('ida'), connectAs('jon')]);
    await joined(sender, 'dedupe');
    await joined(receiver, 'dedupe');
    const first = await sender.request({ action: 'send', room: 'dedupe', id: 'msg-1', body: { text: 'once' } });
    const again = await sender.request({ action: 'send', room: 'dedupe', id: 'msg-1', body: { text: 'once' } });
    expect(again).toMatchObject({
      type: 'ack',
      duplicate: true,
      seq: (first as { seq: number }).seq,
      id: (first as { id: string }).id,
    });
    await sender.request({ action: 'send', room: 'dedupe', id: 'msg-2', body: { text: 'barrier' } });
    expect(await receiver.nextChat('dedupe')).toMatchObject({ ref: 'msg-1' });
    // The next chat is the barrier: the duplicate was never delivered.
    expect(await receiver.nextChat('dedupe')).toMatchObject({ ref: 'msg-2', seq: 2 });
  });

  it('stores a send once when the same client id arrives twice at the same time', async () => {
    const [sender, receiver] = await Promise.all([connectAs('una'), connectAs('vic')]);
    await joined(sender, 'race');
    await joined(receiver, 'race');
    const answers: ServerFrame[] = [];
    const both = new Promise<void>((resolve) => {
      sender.socket.on('message', (data) => {
        const frame = JSON.parse(String(data)) as ServerFrame;
        if ('ref' in frame && frame.ref === 'twin') answers.push(frame);
        if (answers.length === 2) resolve();
      });
    });
    const frame = JSON.stringify({ action: 'send', room: 'race', id: 'twin', body: { text: 'twice?' } });
    sender.sendRaw(frame);
    sender.sendRaw(frame);
    await both;
    // One stores the message; the other waits for it and answers the same ack (or, if the first takes
    // unusually long, `conflict`, which tells the client to retry) — never a second message.
    const acks = answers.filter((a) => a.type === 'ack');
    expect(acks.filter((a) => a.duplicate !== true)).toHaveLength(1);
    expect(acks.map((a) => a.seq)).toEqual(acks.map(() => 1));
    for (const other of answers.filter((a) => a.type !== 'ack')) expect(other).toMatchObject({ code: 'conflict' });
    await sender.request({ action: 'send', room: 'race', id: 'after', body: {} });
    expect(await receiver.nextChat('race')).toMatchObject({ ref: 'twin', seq: 1 });
    expect(await receiver.nextChat('race')).toMatchObject({ ref: 'after', seq: 2 });
  });

  it('acks the sender and keeps the receiver when every retry of a post fails', async () => {
    const sender = await connectAs('wes');
    const { client: receiver, id } = await connectWithId('xia');
    await joined(sender, 'outage');
    await joined(receiver, 'outage');
    emulator.gateway.injectPostFaults(id, Array(LIMITS.deliveryMaxAttempts).fill(500));
    expect(await sender.request({ action: 'send', room: 'outage', body: { text: 'lost' } })).toMatchObject({
      type: 'ack',
      seq: 1,
    });
    expect(await store().getConnection(id)).toBeDefined();
    await sender.request({ action: 'send', room: 'outage', body: { text: 'recovered' } });
    // The failed post is not redelivered (history has it), and the next one gets through.
    expect(await receiver.nextChat('outage')).toMatchObject({ seq: 2, body: { text: 'recovered' } });
  });

  it('tells members who left, by leave or by disconnect', async () => {
    const [stays, leaves, drops] = await Promise.all([connectAs('yan'), connectAs('zed'), connectAs('abe')]);
    for (const c of [stays, leaves, drops]) await joined(c, 'comings');
    expect(await leaves.request({ action: 'leave', room: 'comings' })).toMatchObject({ type: 'ack', action: 'leave' });
    expect(await stays.next((f) => f.type === 'presence' && f.state === 'left')).toMatchObject({ user: 'zed' });
    await drops.close();
    expect(await stays.next((f) => f.type === 'presence' && f.state === 'left')).toMatchObject({ user: 'abe' });
    // After leaving, zed no longer receives the room.
    await stays.request({ action: 'send', room: 'comings', body: { text: 'bye' } });
    expect(await leaves.request({ action: 'send', room: 'comings', body: {} })).toMatchObject({ code: 'not_joined' });
  });

  it('removes a client that vanished without a close frame at the next fan-out', async () => {
    const sender = await connectAs('kim');
    const { client: ghost, id: ghostId } = await connectWithId('leo');
    await joined(sender, 'ghosts');
    await joined(ghost, 'ghosts');
    emulator.gateway.vanish(ghostId);
    expect(await store().getConnection(ghostId)).toBeDefined();

    expect(await sender.request({ action: 'send', room: 'ghosts', body: { text: 'anyone?' } })).toMatchObject({
      type: 'ack',
    });
    expect(await store().getConnection(ghostId)).toBeUndefined();
    expect((await store().listRoomSubscriptions('ghosts')).map((s) => s.connectionId)).not.toContain(ghostId);
    // API Gateway's $disconnect never came for it, so the cleanup tells the room instead.
    expect(await sender.next((f) => f.type === 'presence' && f.state === 'left')).toMatchObject({ user: 'leo' });
  });

  it('retries a post that API Gateway throttles or fails', async () => {
    const sender = await connectAs('max');
    const { client: receiver, id } = await connectWithId('nia');
    await joined(sender, 'flaky');
    await joined(receiver, 'flaky');
    emulator.gateway.injectPostFaults(id, [429, 500]);
    await sender.request({ action: 'send', room: 'flaky', body: { text: 'eventually' } });
    expect(await receiver.nextChat('flaky')).toMatchObject({ body: { text: 'eventually' } });
  });
});

describe('bad input', () => {
  it('answers each bad frame with a typed error and keeps the connection working', async () => {
    const client = await connectAs('pat');
    await joined(client, 'bad-input');
    const tooBig = { text: 'x'.repeat(LIMITS.maxBodyBytes + 1) };
    expect(await client.request({ action: 'send', room: 'bad-input', body: tooBig })).toMatchObject({
      type: 'error',
      code: 'body_too_large',
      details: { limit: LIMITS.maxBodyBytes },
    });
    client.sendRaw('this is not json');
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'bad_request' });
    expect(await client.request({ action: 'dance' } as never)).toMatchObject({
      code: 'unknown_action',
      action: 'dance',
    });
    expect(await client.request({ action: 'join', room: 'no spaces allowed' })).toMatchObject({ code: 'invalid_room' });
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    const history = await client.request({ action: 'history', room: 'bad-input' });
    expect(history).toMatchObject({ type: 'history', messages: [] });
  });

  it('refuses a join past the rooms-per-connection limit', async () => {
    const client = await connectAs('ben');
    await Promise.all(Array.from({ length: LIMITS.maxRoomsPerConnection }, (_, i) => joined(client, `many-${i}`)));
    expect(await client.request({ action: 'join', room: 'one-too-many' })).toMatchObject({
      code: 'too_many_rooms',
      details: { limit: LIMITS.maxRoomsPerConnection },
    });
    // Re-joining a room already joined is not a new room.
    expect(await client.request({ action: 'join', room: 'many-0' })).toMatchObject({ type: 'ack' });
  });

  it('refuses a body nested too deep with bad_request, however deep', async () => {
    const client = await connectAs('tess');
    await joined(client, 'deep');
    let nested: unknown = 'leaf';
    for (let i = 0; i < LIMITS.maxBodyDepth; i++) nested = [nested];
    expect(await client.request({ action: 'send', room: 'deep', body: { nested } })).toMatchObject({
      code: 'bad_request',
      details: { field: 'body', limit: LIMITS.maxBodyDepth },
    });
    // Deep enough to overflow a recursive check, still under API Gateway's 32 KB frame.
    const abyss = `{"action":"send","room":"deep","id":"abyss","body":{"a":${'['.repeat(14000)}${']'.repeat(14000)}}}`;
    client.sendRaw(abyss);
    expect(await client.next((f) => f.type === 'error' && f.ref === 'abyss')).toMatchObject({ code: 'bad_request' });
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('closes with 1009 on a frame past API Gateway limits, as API Gateway does', async () => {
    const client = await connectAs('quinn');
    client.sendRaw('x'.repeat(33 * 1024));
    expect((await client.closed).code).toBe(1009);
  });
});

describe('token expiry', () => {
  it('closes a connection whose token expired the next time it acts', async () => {
    const client = await connectAs('rose', { ttlSeconds: 120 });
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    now += 180_000;
    try {
      client.sendRaw(JSON.stringify({ action: 'ping', id: 'late' }));
      expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'token_expired', ref: 'late' });
      await client.closed;
      // API Gateway runs $disconnect after the socket is closed, as the emulator does: wait for it.
      await emulator.gateway.settled();
      expect(await store().listUserConnections('rose')).toEqual([]);
    } finally {
      now -= 180_000;
    }
  });
});
