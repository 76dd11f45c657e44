/**
 * The SDK against the real emulator, over both transports: rooms, resume after reconnects and an emulator
 * restart, token expiry, permanent errors, the offline queue, the inbox and announcements catch-up, and
 * listener failures. The transports are the SDK's own, wrapped only to count frames and hold reconnects.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emulator, type EmulatorOptions, startEmulator } from '@viba-realtime/local';
import { createPublisher, fetchLocalPublisherConfig, type Publisher } from '@viba-realtime/publisher';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type ChatMessage,
  ConfigError,
  createRealtimeClient,
  parseClientConfig,
  type RealtimeClient,
  type RealtimeClientError,
  type RealtimeClientOptions,
  type RealtimeSchema,
  type WebSocketConstructor,
  websocketTransport,
} from '../src/index.js';
import { mqttTransport } from '../src/transports/mqtt.js';
import { type ObservedTransport, observe } from './support/observed-transport.js';

interface ChatApp extends RealtimeSchema {
  message: { text: string; n?: number };
  notification: { title: string };
  announcement: { title: string };
}

type Channel = 'websocket' | 'mqtt';

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function emulatorFor(options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await startEmulator({
    port: 0,
    logLevel: 'silent',
    fanoutQueue: { visibilityTimeoutMs: 0 },
    ...options,
  });
  cleanups.push(() => emulator.close());
  return emulator;
}

async function publisherFor(emulator: Emulator): Promise<Publisher> {
  const publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl));
  cleanups.push(() => publisher.close());
  return publisher;
}

function transportFor(channel: Channel, emulator: Emulator, deviceId: string): ObservedTransport {
  if (channel === 'websocket') {
    return observe(websocketTransport({ url: emulator.url, WebSocket: WebSocket as unknown as WebSocketConstructor }));
  }
  if (emulator.mqttWsUrl === undefined) throw new Error('IoT emulation is off');
  return observe(mqttTransport({ url: emulator.mqttWsUrl, deviceId }));
}

interface TestClient {
  client: RealtimeClient<ChatApp>;
  transport: ObservedTransport;
  errors: RealtimeClientError[];
  tokens: number;
}

/** A client as `sub`; `token` mints each token (default: a one-hour token from the emulator's issuer). */
function clientFor(
  channel: Channel,
  emulator: Emulator,
  sub: string,
  options: Partial<RealtimeClientOptions<ChatApp>> & { token?: () => string } = {},
): TestClient {
  const transport = transportFor(channel, emulator, `${sub}-${Math.random().toString(36).slice(2, 8)}`);
  const result: TestClient = { client: undefined as never, transport, errors: [], tokens: 0 };
  const { token, ...rest } = options;
  result.client = createRealtimeClient<ChatApp>({
    url: emulator.url,
    transport,
    getToken: () => {
      result.tokens++;
      return token ? token() : emulator.issuer.mintPair({ sub, ttlSeconds: 3600 }).idToken;
    },
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    requestTimeoutMs: 5_000,
    ...rest,
  });
  result.client.on('error', (error) => result.errors.push(error));
  cleanups.push(() => result.client.close());
  return result;
}

/** Resolves once `count` messages arrived in the room (collecting them all). */
function collect(room: { on: (e: 'message', l: (m: ChatMessage<ChatApp['message']>) => void) => () => void }) {
  const messages: ChatMessage<ChatApp['message']>[] = [];
  let waiter: { count: number; resolve: () => void } | undefined;
  room.on('message', (message) => {
    messages.push(message);
    if (waiter && messages.length >= waiter.count) {
      waiter.resolve();
      waiter = undefined;
    }
  });
  return {
    messages,
    until: (count: number) =>
      messages.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiter = { count, resolve };
          }),
  };
}

function once<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  predicate: (value: T) => boolean = () => true,
) {
  return new Promise<T>((resolve) => {
    const off = subscribe((value) => {
      if (!predicate(value)) return;
      off();
      resolve(value);
    });
  });
}

function stateReached(client: RealtimeClient<ChatApp>, state: RealtimeClient['state']): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return once<RealtimeClient['state']>(
    (l) => client.on('state', l),
    (s) => s === state,
  ).then(() => undefined);
}

function expectInOrderOnce(messages: ChatMessage[]) {
  const seqs = messages.map((m) => m.seq);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(messages.map((m) => m.id)).size).toBe(messages.length);
}

for (const channel of ['websocket', 'mqtt'] as const) {
  describe(`over ${channel}`, () => {
    it('joins, sends typed messages and delivers each once in seq order, with presence', async () => {
      const emulator = await emulatorFor();
      const alice = clientFor(channel, emulator, 'alice');
      const bob = clientFor(channel, emulator, 'bob');
      const aliceRoom = alice.client.join('lobby');
      await aliceRoom.ready();
      const joined = once<{ user: string; state: string }>(
        (l) => aliceRoom.on('presence', l),
        (p) => p.user === 'bob',
      );
      const bobRoom = bob.client.join('lobby');
      await bobRoom.ready();
      expect(await joined).toMatchObject({ user: 'bob', state: 'joined' });
      expect(alice.client.state).toBe('open');
      expect(alice.client.transport).toBe(channel);

      const received = collect(aliceRoom);
      // Not awaited one by one: concurrent sends may be stored and delivered in any order; seq decides.
      const results = await Promise.all(Array.from({ length: 20 }, (_, n) => bobRoom.send({ text: `m${n}`, n })));
      await received.until(20);
      expectInOrderOnce(received.messages);
      expect(received.messages.map((m) => m.id).sort()).toEqual(results.map((r) => r.id).sort());
      expect(received.messages.every((m) => m.from === 'bob' && typeof m.body.text === 'string')).toBe(true);
      expect(aliceRoom.lastSeq).toBe(Math.max(...results.map((r) => r.seq)));

      const page = await aliceRoom.history({ limit: 5 });
      expect(page.messages.map((m) => m.seq)).toEqual(received.messages.slice(-5).map((m) => m.seq));
      expect(await alice.client.ping()).toBeGreaterThanOrEqual(0);
    });

    it('resumes after the emulator restarts mid-stream: every message once, in order', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'viba-sdk-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      let emulator = await startEmulator({ port: 0, mqttPort: 0, logLevel: 'silent', dataDir });
      const port = Number(new URL(emulator.httpUrl).port);
      const mqttPort = Number(new URL(emulator.mqttUrl ?? 'mqtt://x:0').port);
      cleanups.push(() => emulator.close());
      const alice = clientFor(channel, emulator, 'alice');
      const bob = clientFor(channel, emulator, 'bob');
      const aliceRoom = alice.client.join('stream');
      const bobRoom = bob.client.join('stream');
      await Promise.all([aliceRoom.ready(), bobRoom.ready()]);
      const received = collect(aliceRoom);

      const sends: Promise<unknown>[] = [];
      for (let n = 0; n < 10; n++) await bobRoom.send({ text: 'before', n });
      await received.until(10);

      await emulator.close();
      await Promise.all([stateReached(alice.client, 'reconnecting'), stateReached(bob.client, 'reconnecting')]);
      // Made while the service is down: they wait in bob's offline queue.
      for (let n = 10; n < 20; n++) sends.push(bobRoom.send({ text: 'offline', n }));
      emulator = await startEmulator({ port, mqttPort, logLevel: 'silent', dataDir });
      await Promise.all([stateReached(alice.client, 'open'), stateReached(bob.client, 'open')]);
      for (let n = 20; n < 30; n++) sends.push(bobRoom.send({ text: 'after', n }));
      await Promise.all(sends);
      await received.until(30);

      expect(received.messages).toHaveLength(30);
      expectInOrderOnce(received.messages);
      expect(received.messages.map((m) => m.body.n).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
        Array.from({ length: 30 }, (_, n) => n),
      );
      const stored = await aliceRoom.history({ after: 0, limit: 100 });
      expect(stored.messages).toHaveLength(30);
    });

    it('catches up on room messages, notifications and announcements missed while offline', async () => {
      const emulator = await emulatorFor();
      const publisher = await publisherFor(emulator);
      const bob = clientFor(channel, emulator, 'bob');
      const alice = clientFor(channel, emulator, 'alice');
      const bobRoom = bob.client.join('catchup');
      const aliceRoom = alice.client.join('catchup');
      await Promise.all([bobRoom.ready(), aliceRoom.ready()]);
      const received = collect(bobRoom);
      const unreadKnown =
        bob.client.notifications.unreadCount ?? (await once<number>((l) => bob.client.notifications.on('unread', l)));
      expect(unreadKnown).toBe(0);
      await aliceRoom.send({ text: 'seen live' });
      await received.until(1);
      const notifications: string[] = [];
      bob.client.notifications.on('notification', (n) => notifications.push(n.body.title));
      const announcements: string[] = [];
      bob.client.announcements.on('announcement', (a) => announcements.push(a.body.title));

      bob.transport.hold();
      await publisher.disconnectUser('bob');
      await bob.transport.held();
      expect(bob.client.state).toBe('connecting');
      for (let n = 0; n < 3; n++) await aliceRoom.send({ text: `missed ${n}` });
      await publisher.notify('bob', { title: 'while you were away' });
      await publisher.announce({ title: 'maintenance tonight' });
      const caughtUp = once<number>(
        (l) => bob.client.notifications.on('unread', l),
        (n) => n === 1,
      );
      const announced = once<unknown>((l) => bob.client.announcements.on('announcement', l));
      bob.transport.release();

      await received.until(4);
      expect(received.messages.map((m) => m.body.text)).toEqual(['seen live', 'missed 0', 'missed 1', 'missed 2']);
      expectInOrderOnce(received.messages);
      expect(await caughtUp).toBe(1);
      await announced;
      expect(notifications).toEqual(['while you were away']);
      expect(announcements).toEqual(['maintenance tonight']);
      expect(bob.client.notifications.unreadCount).toBe(1);
      expect(await bob.client.notifications.markAllRead()).toBe(0);
    });

    it('delivers a send made while offline exactly once after the reconnect', async () => {
      const emulator = await emulatorFor();
      const publisher = await publisherFor(emulator);
      const bob = clientFor(channel, emulator, 'bob');
      const room = bob.client.join('offline');
      await room.ready();
      bob.transport.hold();
      await publisher.disconnectUser('bob');
      await bob.transport.held();
      const pending = room.send({ text: 'queued' }, { clientId: 'offline-1' });
      bob.transport.release();
      const result = await pending;
      expect(result).toMatchObject({ clientId: 'offline-1', duplicate: false });
      // The same client id again: the service recognises it and stores nothing new.
      expect(await room.send({ text: 'queued' }, { clientId: 'offline-1' })).toMatchObject({
        id: result.id,
        seq: result.seq,
        duplicate: true,
      });
      const page = await room.history({ after: 0 });
      expect(page.messages.filter((m) => m.clientId === 'offline-1')).toHaveLength(1);
    });

    it('refreshes an expiring token before it expires, without the app noticing', async () => {
      const emulator = await emulatorFor();
      // Refreshed `margin` before it expires, the token is replaced after ~2 s. MQTT: IoT's authorizer admits
      // only tokens valid for 300 s more.
      const ttlSeconds = channel === 'mqtt' ? 330 : 62;
      const alice = clientFor(channel, emulator, 'alice', {
        token: () => emulator.issuer.mintPair({ sub: 'alice', ttlSeconds }).idToken,
        refreshMarginMs: (ttlSeconds - 2) * 1000,
      });
      // Listened for from the start: on a loaded machine the join's ack can come after the refresh began.
      const reconnecting = once<unknown>((l) => alice.client.on('reconnecting', l));
      const room = alice.client.join('refresh');
      await room.ready();
      await reconnecting;
      await stateReached(alice.client, 'open');
      expect(alice.tokens).toBeGreaterThanOrEqual(2);
      expect(await room.send({ text: 'after refresh' })).toMatchObject({ duplicate: false });
      expect(room.status).toBe('joined');
      expect(alice.errors.filter((e) => e.code === 'unauthorized')).toEqual([]);
    });

    it('gives up for good on a refused token and on a forbidden room, without a retry loop', async () => {
      const emulator = await emulatorFor();
      // Signed by another issuer: refused at connect (HTTP 403 / CONNACK refusal) every time.
      const foreign = await startEmulator({ port: 0, iot: false, logLevel: 'silent', fanoutQueue: false });
      const badToken = foreign.issuer.mintPair({ sub: 'mallory', ttlSeconds: 3600 }).idToken;
      await foreign.close();
      const mallory = clientFor(channel, emulator, 'mallory', { token: () => badToken });
      const closed = await once<RealtimeClientError | undefined>((l) => mallory.client.on('closed', l));
      expect(closed?.code).toBe('unauthorized');
      expect(mallory.client.state).toBe('closed');
      expect(mallory.transport.attempts).toBe(2); // one retry with a fresh token, then stop
      expect(mallory.tokens).toBe(2);

      const publisher = await publisherFor(emulator);
      await publisher.createRoom('vault', { owner: 'alice', visibility: 'private' });
      const bob = clientFor(channel, emulator, 'bob');
      const vault = bob.client.join('vault');
      await expect(vault.ready()).rejects.toMatchObject({ code: 'forbidden' });
      expect(vault.status).toBe('failed');
      await expect(vault.send({ text: 'no' })).rejects.toMatchObject({ code: 'forbidden' });
      // A reconnect does not try the refused room again.
      const joinsBefore = bob.transport.sent.filter((f) => f.action === 'join').length;
      bob.transport.drop();
      await stateReached(bob.client, 'reconnecting');
      await stateReached(bob.client, 'open');
      expect(await bob.client.ping()).toBeGreaterThanOrEqual(0);
      expect(bob.transport.sent.filter((f) => f.action === 'join').length).toBe(joinsBefore);
    });
  });
}

describe('over websocket only', () => {
  it('renews a connection whose token expired (token_expired) and keeps the request', async () => {
    let now = Date.now();
    const emulator = await emulatorFor({ clock: () => now, iot: false });
    const alice = clientFor('websocket', emulator, 'alice', {
      token: () => emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: 120 }).idToken,
    });
    const room = alice.client.join('expiry');
    await room.ready();
    now += 180_000; // the service's clock passes the token's expiry
    const result = await room.send({ text: 'still delivered' });
    expect(result.duplicate).toBe(false);
    expect(alice.tokens).toBe(2);
    expect(alice.client.state).toBe('open');
    const stored = await room.history({ after: 0 });
    expect(stored.messages.map((m) => m.body.text)).toEqual(['still delivered']);
  });

  it('an idle connection past its token: the notification that finds it closes it, and the client reconnects with a fresh token and reads it from the inbox', async () => {
    let now = Date.now();
    const emulator = await emulatorFor({ clock: () => now, iot: false, schedules: false });
    const publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl), { clock: () => now });
    cleanups.push(() => publisher.close());
    const alice = clientFor('websocket', emulator, 'alice', {
      token: () => emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: 120 }).idToken,
    });
    await alice.client.join('expiry-idle').ready();
    const unread =
      alice.client.notifications.unreadCount ?? (await once<number>((l) => alice.client.notifications.on('unread', l)));
    expect(unread).toBe(0);
    const titles: string[] = [];
    alice.client.notifications.on('notification', (n) => titles.push(n.body.title));
    const caughtUp = once<number>(
      (l) => alice.client.notifications.on('unread', l),
      (n) => n === 1,
    );

    now += 180_000; // the service's clock passes the token's expiry; the client's refresh timer has not fired
    const [outcome] = await publisher.notify('alice', { title: 'after expiry' });

    expect(outcome?.delivery).toMatchObject({ delivered: 0, expired: 1 });
    expect(await caughtUp).toBe(1);
    expect(titles).toEqual(['after expiry']);
    expect(alice.tokens).toBe(2);
    expect(alice.client.state).toBe('open');
  });

  it('an idle connection past its token: the token sweeper closes it, and the client reconnects with a fresh token and rejoins', async () => {
    let now = Date.now();
    const emulator = await emulatorFor({ clock: () => now, iot: false, schedules: false });
    const alice = clientFor('websocket', emulator, 'alice', {
      token: () => emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: 120 }).idToken,
    });
    const bob = clientFor('websocket', emulator, 'bob');
    const aliceRoom = alice.client.join('expiry-sweep');
    const bobRoom = bob.client.join('expiry-sweep');
    await Promise.all([aliceRoom.ready(), bobRoom.ready()]);
    const received = collect(aliceRoom);

    now += 180_000;
    const reopened = once<string>(
      (l) => alice.client.on('state', l),
      (state) => state === 'open',
    );
    expect(await emulator.scheduler.run('token-sweeper')).toMatchObject({ closed: 1, failed: 0 });
    await reopened;
    expect(alice.tokens).toBe(2);
    await aliceRoom.ready();
    await bobRoom.send({ text: 'after the sweep' });
    await received.until(1);
    expect(received.messages.map((m) => m.body.text)).toEqual(['after the sweep']);
  });

  it('keeps going when a listener throws, and reports it', async () => {
    const emulator = await emulatorFor({ iot: false });
    const alice = clientFor('websocket', emulator, 'alice');
    const room = alice.client.join('throwing');
    await room.ready();
    room.on('message', () => {
      throw new Error('app bug');
    });
    const received = collect(room);
    await room.send({ text: 'one' });
    await room.send({ text: 'two' });
    await received.until(2);
    expect(received.messages.map((m) => m.body.text)).toEqual(['one', 'two']);
    const failures = alice.errors.filter((e) => e.code === 'listener_failed');
    expect(failures).toHaveLength(2);
    expect(failures[0]?.cause).toMatchObject({ message: 'app bug' });
    expect(alice.client.state).toBe('open');
  });

  it('validates input before sending, with the protocol codes, and bounds the offline queue', async () => {
    const emulator = await emulatorFor({ iot: false });
    const alice = clientFor('websocket', emulator, 'alice', { offlineQueueSize: 2 });
    expect(() => alice.client.join('bad room!')).not.toThrow();
    const bad = alice.client.join('bad room!');
    await expect(bad.ready()).rejects.toMatchObject({ code: 'invalid_room' });
    const room = alice.client.join('limits');
    await room.ready();
    await expect(room.send({ text: 'x'.repeat(17 * 1024) })).rejects.toMatchObject({ code: 'body_too_large' });
    await expect(room.send({ text: 'x' }, { clientId: 'no spaces' })).rejects.toMatchObject({ code: 'invalid_id' });

    alice.transport.hold();
    alice.transport.drop();
    await alice.transport.held();
    const queued = [room.send({ text: 'q1' }), room.send({ text: 'q2' })];
    await expect(room.send({ text: 'q3' })).rejects.toMatchObject({ code: 'offline_queue_full' });
    alice.transport.release();
    expect((await Promise.all(queued)).map((r) => r.duplicate)).toEqual([false, false]);
  });

  it('checks bodies against runtime schemas both ways', async () => {
    const emulator = await emulatorFor({ iot: false });
    const publisher = await publisherFor(emulator);
    const isText = (value: unknown) => {
      if (typeof (value as { text?: unknown }).text !== 'string') throw new Error('text must be a string');
      return value as ChatApp['message'];
    };
    const alice = clientFor('websocket', emulator, 'alice', { schemas: { message: isText } });
    const room = alice.client.join('schema');
    await room.ready();
    await expect(room.send({ wrong: true } as never)).rejects.toMatchObject({ code: 'schema_mismatch' });
    const received = collect(room);
    const mismatch = once<RealtimeClientError>(
      (l) => alice.client.on('error', l),
      (e) => e.code === 'schema_mismatch',
    );
    await publisher.sendToRoom('schema', { image: 'cat.png' });
    await room.send({ text: 'fine' });
    await received.until(1);
    expect((await mismatch).details?.frame).toMatchObject({ body: { image: 'cat.png' } });
    expect(received.messages.map((m) => m.body.text)).toEqual(['fine']);
  });

  it('closes cleanly: pending requests fail with client_closed and no reconnect follows', async () => {
    const emulator = await emulatorFor({ iot: false });
    const alice = clientFor('websocket', emulator, 'alice');
    const room = alice.client.join('bye');
    await room.ready();
    alice.transport.hold();
    alice.transport.drop();
    await alice.transport.held();
    const pending = room.send({ text: 'never' });
    alice.client.close();
    await expect(pending).rejects.toMatchObject({ code: 'client_closed' });
    expect(alice.client.state).toBe('closed');
    alice.transport.release();
    expect(alice.transport.attempts).toBe(2);
  });
});

describe('lifecycle edges', () => {
  it('stays closed when an error listener closes it, and refuses requests afterwards', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    const emulator = await emulatorFor({ iot: false });
    const states: string[] = [];
    const client = createRealtimeClient<ChatApp>({
      url: `ws://127.0.0.1:${port}/local`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      getToken: () => emulator.issuer.mintPair({ sub: 'alice' }).idToken,
    });
    cleanups.push(() => client.close());
    client.on('state', (state) => states.push(state));
    const closed = once<unknown>((l) => client.on('closed', l));
    client.on('error', () => client.close());
    await closed;
    expect(client.state).toBe('closed');
    expect(states).toEqual(['connecting', 'closed']);
    await expect(client.join('late').send({ text: 'x' })).rejects.toMatchObject({ code: 'client_closed' });
  });

  it('gives up a connect the server never answers after connectTimeoutMs, and retries', async () => {
    // Accepts TCP and never answers the WebSocket upgrade (a hung proxy).
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
    });
    const emulator = await emulatorFor({ iot: false });
    const client = createRealtimeClient<ChatApp>({
      url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/local`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      getToken: () => emulator.issuer.mintPair({ sub: 'alice' }).idToken,
      connectTimeoutMs: 200,
    });
    cleanups.push(() => client.close());
    const retry = await once<{ error?: RealtimeClientError }>((l) => client.on('reconnecting', l));
    expect(retry.error?.code).toBe('connection_failed');
    expect(retry.error?.message).toContain('No connection within 200 ms');
  });

  it('asks for a new token (forceRefresh) when it refreshes before expiry', async () => {
    const emulator = await emulatorFor({ iot: false });
    const requests: boolean[] = [];
    let cached = emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: 62 }).idToken;
    const alice = clientFor('websocket', emulator, 'alice', {
      getToken: ({ forceRefresh }) => {
        requests.push(forceRefresh);
        // A provider that caches until told otherwise.
        if (forceRefresh) cached = emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: 3600 }).idToken;
        return cached;
      },
      refreshMarginMs: 60_000,
    });
    await stateReached(alice.client, 'open');
    await once<unknown>((l) => alice.client.on('reconnecting', l));
    await stateReached(alice.client, 'open');
    expect(requests).toEqual([false, true]);
  });

  it('fails a room the backend closes, and lets a left room be joined again', async () => {
    const emulator = await emulatorFor({ iot: false });
    const publisher = await publisherFor(emulator);
    const alice = clientFor('websocket', emulator, 'alice');
    const doomed = alice.client.join('doomed');
    await doomed.ready();
    const failed = once<string>(
      (l) => doomed.on('status', l),
      (s) => s === 'failed',
    );
    await publisher.closeRoom('doomed');
    await failed;
    expect(doomed.error?.code).toBe('room_closed');

    const lobby = alice.client.join('again');
    await lobby.ready();
    const leaving = lobby.leave();
    const rejoined = alice.client.join('again');
    expect(rejoined).not.toBe(lobby);
    await leaving;
    await rejoined.ready();
    const bob = clientFor('websocket', emulator, 'bob');
    const bobRoom = bob.client.join('again');
    await bobRoom.ready();
    const heard = collect(rejoined);
    await bobRoom.send({ text: 'still subscribed' });
    await heard.until(1);
    expect(heard.messages[0]?.body.text).toBe('still subscribed');
  });
});

describe('over mqtt only', () => {
  it('asks getToken to force a refresh when a token has less left than IoT admits (300 s)', async () => {
    const emulator = await emulatorFor();
    const requests: boolean[] = [];
    const alice = clientFor('mqtt', emulator, 'alice', {
      getToken: ({ forceRefresh }) => {
        requests.push(forceRefresh);
        // A cached token with 2 minutes left (what an app's cache may hold), a new one when forced.
        return emulator.issuer.mintPair({ sub: 'alice', ttlSeconds: forceRefresh ? 3600 : 120 }).idToken;
      },
    });
    const room = alice.client.join('fresh');
    await room.ready();
    expect(requests).toEqual([false, true]);
    expect(alice.errors).toEqual([]);
  });
});

describe('announcements from an admin client', () => {
  it('lets an admin announce to a group and refuses others with forbidden', async () => {
    const emulator = await emulatorFor({ iot: false });
    const admin = clientFor('websocket', emulator, 'root', {
      token: () => emulator.issuer.mintPair({ sub: 'root', groups: ['admin'], ttlSeconds: 3600 }).idToken,
    });
    const member = clientFor('websocket', emulator, 'carol', {
      token: () => emulator.issuer.mintPair({ sub: 'carol', groups: ['staff'], ttlSeconds: 3600 }).idToken,
    });
    const outsider = clientFor('websocket', emulator, 'dave');
    await Promise.all([stateReached(member.client, 'open'), stateReached(outsider.client, 'open')]);
    const heard = once<{ body: { title: string }; group?: string }>((l) =>
      member.client.announcements.on('announcement', l),
    );
    const { id } = await admin.client.announcements.announce({ title: 'staff meeting' }, { group: 'staff' });
    expect(await heard).toMatchObject({ body: { title: 'staff meeting' }, group: 'staff' });
    const listed = await member.client.announcements.since({ since: 0 });
    expect(listed.announcements.map((a) => a.id)).toContain(id);
    await expect(outsider.client.announcements.announce({ title: 'no' })).rejects.toMatchObject({ code: 'forbidden' });
  });
});

describe('client config', () => {
  it("connects with the emulator's /dev/client-config over both transports (the stack's ClientConfig shape)", async () => {
    const emulator = await emulatorFor();
    const response = await fetch(`${emulator.httpUrl}/dev/client-config`);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    const config = parseClientConfig(await response.json());
    expect(config).toEqual(emulator.clientConfig);
    expect(config.mqtt?.authorizerName).toBeTruthy();
    for (const transport of ['websocket', 'mqtt'] as const) {
      const client = createRealtimeClient<ChatApp>({
        config,
        transport,
        getToken: () => emulator.issuer.mintPair({ sub: `cfg-${transport}` }).idToken,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
      });
      cleanups.push(() => client.close());
      const room = client.join('configured');
      await room.ready();
      expect(client.transport).toBe(transport);
      expect(await room.send({ text: `via ${transport}` })).toMatchObject({ duplicate: false });
    }
  });

  it('refuses options that cannot work, naming what is missing', () => {
    const getToken = () => 'unused';
    expect(() => createRealtimeClient({ getToken })).toThrow(ConfigError);
    const noMqtt = {
      version: 1 as const,
      region: 'eu-west-1',
      userPoolId: 'eu-west-1_x',
      userPoolClientIds: ['c'],
      websocket: { url: 'wss://example.invalid/prod' },
    };
    expect(() => createRealtimeClient({ config: noMqtt, transport: 'mqtt', getToken })).toThrow(
      /without the MQTT channel/,
    );
    expect(() => createRealtimeClient({ config: { ...noMqtt, version: 2 as never }, getToken })).toThrow(
      expect.objectContaining({ code: 'invalid_config', message: expect.stringContaining('version 2') }),
    );
  });
});
