/**
 * The MQTT transport against the emulator's IoT Core, over the real wire: MQTT.js over TCP (`mqttUrl`) and
 * over WebSocket (`mqttWsUrl`), MQTT 5 and 3.1.1; the real custom authorizer refusing tokens at CONNACK, the
 * real policy and broker answering SUBSCRIBEs, requests through the IoT rules, notifications and announcements
 * through the backend publisher.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, IOT_LIMITS, type ServerFrame, topics } from '@viba-realtime/protocol';
import { createPublisher, fetchLocalPublisherConfig, type Publisher } from '@viba-realtime/publisher';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthenticationError, ConnectionError } from '../src/errors.js';
import { type MqttConnectFunction, type MqttTransportOptions, mqttTransport } from '../src/transports/mqtt.js';
import type { TransportCloseInfo, TransportConnection, TransportHandlers } from '../src/transports/transport.js';

/** Everything a connection reported, each awaitable. */
class Recorder implements TransportHandlers {
  readonly frames: ServerFrame[] = [];
  readonly errors: Error[] = [];
  readonly closings: TransportCloseInfo[] = [];
  #frameWaiters: { match: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  #errorWaiters: { match: (e: Error) => boolean; resolve: (e: Error) => void }[] = [];
  #closedWaiters: ((info: TransportCloseInfo) => void)[] = [];

  frame = (frame: ServerFrame): void => {
    this.frames.push(frame);
    const waiter = this.#frameWaiters.find((w) => w.match(frame));
    if (waiter) {
      this.#frameWaiters.splice(this.#frameWaiters.indexOf(waiter), 1);
      waiter.resolve(frame);
    }
  };

  error = (error: Error): void => {
    this.errors.push(error);
    const waiter = this.#errorWaiters.find((w) => w.match(error));
    if (waiter) {
      this.#errorWaiters.splice(this.#errorWaiters.indexOf(waiter), 1);
      waiter.resolve(error);
    }
  };

  closed = (info: TransportCloseInfo): void => {
    this.closings.push(info);
    for (const resolve of this.#closedWaiters.splice(0)) resolve(info);
  };

  /** The first frame matching `match`, received already or later. */
  next(match: (frame: ServerFrame) => boolean): Promise<ServerFrame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#frameWaiters.push({ match, resolve }));
  }

  nextError(match: (error: Error) => boolean): Promise<Error> {
    const seen = this.errors.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#errorWaiters.push({ match, resolve }));
  }

  /** The first `closed` call. */
  whenClosed(): Promise<TransportCloseInfo> {
    const [first] = this.closings;
    if (first) return Promise.resolve(first);
    return new Promise((resolve) => this.#closedWaiters.push(resolve));
  }
}

let emulator: Emulator;
let publisher: Publisher;
let userCounter = 0;
/** Connections a test opened, closed after it. */
const open: { connection: TransportConnection; recorder: Recorder }[] = [];
/** Every MQTT.js client made through {@link capturing}. */
const mqttClients: MqttClient[] = [];
/** Extra servers and emulators a test started. */
const cleanups: (() => Promise<void>)[] = [];

const nextUser = (prefix = 'mt') => `${prefix}-${++userCounter}`;
const token = (sub: string, groups: string[] = [], ttlSeconds = 3600) =>
  emulator.issuer.mint({ sub, groups, tokenUse: 'id', ttlSeconds });
const ackOf = (ref: string) => (f: ServerFrame) => 'ref' in f && f.ref === ref;
/** A macrotask turn, so a second `closed` call queued by the first would have run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** MQTT.js's connect, keeping every client it makes (and optionally changing it before the transport sees it). */
function capturing(change?: (client: MqttClient) => void): MqttConnectFunction & { calls: number } {
  const connect = Object.assign(
    (url: string, options: IClientOptions) => {
      connect.calls++;
      const client = mqtt.connect(url, options);
      mqttClients.push(client);
      change?.(client);
      return client;
    },
    { calls: 0 },
  );
  return connect;
}

async function connectAs(
  sub: string,
  options: Partial<MqttTransportOptions> & { url: string },
  groups: string[] = [],
): Promise<{ connection: TransportConnection; recorder: Recorder }> {
  const recorder = new Recorder();
  const transport = mqttTransport({ mqtt: capturing(), ...options });
  const connection = await transport.connect(token(sub, groups), recorder, new AbortController().signal);
  const entry = { connection, recorder };
  open.push(entry);
  return entry;
}

/** A TCP port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
  return port;
}

/** A TCP server that accepts connections and never answers (a broker that hangs before CONNACK). */
async function silentServer(): Promise<{ server: Server; url: string; accepted: Promise<Socket> }> {
  const sockets = new Set<Socket>();
  let accept: (socket: Socket) => void = () => {};
  const accepted = new Promise<Socket>((resolve) => {
    accept = resolve;
  });
  const server = createServer((socket) => {
    sockets.add(socket);
    // Read and drop the CONNECT: a socket with unread data never sees the peer's FIN, so never 'close'.
    socket.resume();
    accept(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return { server, url: `mqtt://127.0.0.1:${port}`, accepted };
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl));
});

afterEach(async () => {
  for (const { connection, recorder } of open.splice(0)) {
    connection.close();
    await recorder.whenClosed();
  }
  await Promise.all(mqttClients.splice(0).map((c) => c.endAsync(true)));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  publisher?.close();
  await emulator?.close();
});

const urlOf = (kind: 'tcp' | 'ws'): string => {
  const url = kind === 'tcp' ? emulator.mqttUrl : emulator.mqttWsUrl;
  if (!url) throw new Error('the emulator runs no MQTT');
  return url;
};

describe.each([
  ['tcp', 5],
  ['tcp', 4],
  ['ws', 5],
  ['ws', 4],
] as const)('over %s, MQTT version %i', (kind, protocolVersion) => {
  it('answers a join with an ack, delivers room chat from another member, answers ping with pong', async () => {
    const sub = nextUser();
    const room = `room-${sub}`;
    const { connection, recorder } = await connectAs(sub, { url: urlOf(kind), protocolVersion });
    const other = await connectAs(nextUser(), { url: urlOf(kind), protocolVersion });

    const ack = recorder.next(ackOf('j1'));
    connection.send({ action: 'join', room, id: 'j1' });
    expect(await ack).toMatchObject({ type: 'ack', action: 'join', ref: 'j1', room });
    const otherJoined = other.recorder.next(ackOf('j2'));
    other.connection.send({ action: 'join', room, id: 'j2' });
    await otherJoined;

    // The sender gets the ack, the other member the chat (on its own rooms topic).
    const chat = recorder.next((f) => f.type === 'chat');
    const sent = other.recorder.next(ackOf('s1'));
    other.connection.send({ action: 'send', room, id: 's1', body: { text: 'hello' } });
    expect(await sent).toMatchObject({ type: 'ack', action: 'send', ref: 's1', seq: 1 });
    expect(await chat).toMatchObject({ type: 'chat', room, seq: 1, body: { text: 'hello' } });

    const pong = recorder.next(ackOf('p1'));
    connection.send({ action: 'ping', id: 'p1' });
    expect(await pong).toMatchObject({ type: 'pong', ref: 'p1' });
    expect([...recorder.errors, ...other.recorder.errors]).toEqual([]);
  });

  it('rejects an expired token with AuthenticationError carrying the CONNACK code, without retrying', async () => {
    const sub = nextUser();
    const connect = capturing();
    const transport = mqttTransport({ url: urlOf(kind), protocolVersion, mqtt: connect });
    const recorder = new Recorder();
    const attempt = transport.connect(token(sub, [], -60), recorder, new AbortController().signal);
    const error = await attempt.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).status).toBe(protocolVersion === 5 ? 0x87 : 5);
    expect(connect.calls).toBe(1);
    const [client] = mqttClients;
    expect(client?.options.reconnectPeriod).toBe(0);
    // Ended: MQTT.js never reconnects a client after end().
    expect(client?.disconnecting || client?.disconnected).toBe(true);
    expect(recorder.closings).toEqual([]);
  });

  it('reports a close by the server once', async () => {
    const sub = nextUser();
    const { recorder } = await connectAs(sub, { url: urlOf(kind), protocolVersion, deviceId: 'kick' });
    const broker = emulator.broker;
    const held = broker?.client(clientIdFor(sub, 'kick'));
    expect(held).toBeDefined();
    await held?.disconnect(0x98);
    const info = await recorder.whenClosed();
    if (protocolVersion === 5) expect(info).toMatchObject({ code: 0x98, reason: expect.stringContaining('0x98') });
    else expect(info.code).toBeUndefined();
    await turn();
    expect(recorder.closings).toHaveLength(1);
  });
});

describe('connect', () => {
  it('rejects a badly signed token with AuthenticationError', async () => {
    const sub = nextUser();
    const [header, payload] = token(sub).split('.');
    const [, , otherSignature] = token(nextUser()).split('.');
    const forged = `${header}.${payload}.${otherSignature}`;
    const transport = mqttTransport({ url: urlOf('tcp'), mqtt: capturing() });
    await expect(transport.connect(forged, new Recorder(), new AbortController().signal)).rejects.toBeInstanceOf(
      AuthenticationError,
    );
  });

  it('rejects a token whose claims cannot be read before opening anything', async () => {
    const connect = capturing();
    const transport = mqttTransport({ url: urlOf('tcp'), mqtt: connect });
    for (const bad of ['not-a-jwt', 'a.!!!.c', `x.${btoa('{"sub":"a/b"}')}.y`]) {
      await expect(transport.connect(bad, new Recorder(), new AbortController().signal)).rejects.toBeInstanceOf(
        AuthenticationError,
      );
    }
    expect(connect.calls).toBe(0);
  });

  it('rejects with ConnectionError when nothing listens, over TCP and WebSocket', async () => {
    const port = await freePort();
    for (const url of [`mqtt://127.0.0.1:${port}`, `ws://127.0.0.1:${port}/mqtt`]) {
      const transport = mqttTransport({ url, mqtt: capturing() });
      const error = await transport.connect(token(nextUser()), new Recorder(), new AbortController().signal).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).not.toBeInstanceOf(AuthenticationError);
    }
  });

  it('rejects with ConnectionError when no CONNACK comes within connectTimeoutMs', async () => {
    const { url, accepted } = await silentServer();
    const transport = mqttTransport({ url, mqtt: capturing(), connectTimeoutMs: 300 });
    const attempt = transport.connect(token(nextUser()), new Recorder(), new AbortController().signal);
    const socket = await accepted;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await expect(attempt).rejects.toThrow(ConnectionError);
    await closed; // the client's socket went away with the failure
  });

  it('stops on abort: rejects with ConnectionError and closes the socket', async () => {
    const { url, accepted } = await silentServer();
    const transport = mqttTransport({ url, mqtt: capturing() });
    const abort = new AbortController();
    const attempt = transport.connect(token(nextUser()), new Recorder(), abort.signal);
    const socket = await accepted;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    abort.abort();
    await expect(attempt).rejects.toThrow(/aborted/);
    await closed;
    const already = new AbortController();
    already.abort();
    await expect(transport.connect(token(nextUser()), new Recorder(), already.signal)).rejects.toBeInstanceOf(
      ConnectionError,
    );
  });

  it('connects with MQTT.js passed as a module or as its connect function, and sets TCP_NODELAY on TCP', async () => {
    const spies: ReturnType<typeof vi.fn>[] = [];
    const connect = capturing((client) => {
      const stream = client.stream as unknown as { setNoDelay: (on: boolean) => unknown };
      const spy = vi.fn(stream.setNoDelay.bind(stream));
      stream.setNoDelay = spy;
      spies.push(spy);
    });
    const sub = nextUser();
    const asModule = await connectAs(sub, { url: urlOf('tcp'), mqtt: { connect }, deviceId: 'm' });
    const asFunction = await connectAs(sub, { url: urlOf('tcp'), mqtt: connect, deviceId: 'f' });
    expect(connect.calls).toBe(2);
    expect(spies).toHaveLength(2);
    for (const spy of spies) expect(spy).toHaveBeenCalledWith(true);
    const pong = asFunction.recorder.next(ackOf('p'));
    asFunction.connection.send({ action: 'ping', id: 'p' });
    await pong;
    expect(asModule.recorder.closings).toEqual([]);
  });

  it('loads MQTT.js by itself when none is passed', async () => {
    const transport = mqttTransport({ url: urlOf('ws') });
    const recorder = new Recorder();
    const connection = await transport.connect(token(nextUser()), recorder, new AbortController().signal);
    open.push({ connection, recorder });
    const pong = recorder.next(ackOf('p'));
    connection.send({ action: 'ping', id: 'p' });
    expect(await pong).toMatchObject({ type: 'pong' });
  });

  it('names the IoT custom authorizer in the username and in a WebSocket URL', async () => {
    const seen: { url: string; username: string | undefined }[] = [];
    const connect = (url: string, options: IClientOptions) => {
      seen.push({ url, username: options.username });
      const client = mqtt.connect(url, options);
      mqttClients.push(client);
      return client;
    };
    const name = 'viba-realtime-Authorizer 1';
    for (const kind of ['ws', 'tcp'] as const) {
      await connectAs(nextUser(), { url: urlOf(kind), mqtt: connect, authorizerName: name });
    }
    const param = `x-amz-customauthorizer-name=${encodeURIComponent(name)}`;
    expect(seen).toEqual([
      { url: `${urlOf('ws')}?${param}`, username: `viba-client?${param}` },
      { url: urlOf('tcp'), username: `viba-client?${param}` },
    ]);
  });

  it('refuses options that can never work when the transport is made', () => {
    expect(() => mqttTransport({ url: 'http://example.com/mqtt' })).toThrow(TypeError);
    expect(() => mqttTransport({ url: 'wss://example.com/mqtt', keepaliveSeconds: 10 })).toThrow(RangeError);
    expect(() => mqttTransport({ url: 'wss://example.com/mqtt', deviceId: '' })).toThrow(RangeError);
    expect(() => mqttTransport({ url: 'wss://example.com/mqtt', connectTimeoutMs: 0 })).toThrow(RangeError);
    const transport = mqttTransport({ url: 'wss://example.com/mqtt' });
    expect(transport).toMatchObject({ name: 'mqtt', needsHeartbeat: false, maxConnectionMs: undefined });
  });
});

describe('subscriptions', () => {
  /** Rewrites one filter of the transport's SUBSCRIBEs into one the user's policy does not allow. */
  const forbidding = (replace: (sub: string) => string) =>
    capturing((client) => {
      const subscribe = client.subscribe.bind(client) as (filters: string[], ...rest: unknown[]) => MqttClient;
      const clientId = client.options.clientId as string;
      const sub = clientId.slice(0, clientId.indexOf('.'));
      (client as { subscribe: unknown }).subscribe = (filters: string[], ...rest: unknown[]) =>
        subscribe(
          filters.map((f) => (f === replace(sub) ? f.replace(sub, 'someone-else') : f)),
          ...rest,
        );
    });

  it.each([4, 5] as const)(
    'reports a refused optional subscription and still connects (MQTT %i)',
    async (protocolVersion) => {
      const sub = nextUser();
      const recorder = new Recorder();
      const transport = mqttTransport({ url: urlOf('tcp'), protocolVersion, mqtt: forbidding(topics.inbox) });
      const connection = await transport.connect(token(sub), recorder, new AbortController().signal);
      open.push({ connection, recorder });
      const error = await recorder.nextError((e) => e.message.includes(topics.inbox(sub)));
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error.message).toContain(protocolVersion === 5 ? '0x87' : '0x80');
      const pong = recorder.next(ackOf('p'));
      connection.send({ action: 'ping', id: 'p' });
      await pong;
    },
  );

  it('rejects with ConnectionError when the responses subscription is refused', async () => {
    const transport = mqttTransport({ url: urlOf('ws'), mqtt: forbidding(topics.responses) });
    const recorder = new Recorder();
    const error = await transport.connect(token(nextUser()), recorder, new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain('responses');
    expect(recorder.closings).toEqual([]);
  });

  it('splits the group subscriptions into SUBSCRIBEs of 8 and skips groups past 50 subscriptions', async () => {
    const sub = nextUser();
    const groups = Array.from({ length: 60 }, (_, i) => `g${i}`);
    const subscribes: number[] = [];
    let subacks = 0;
    const connect = capturing((client) => {
      client.on('packetsend', (packet) => {
        if (packet.cmd === 'subscribe') subscribes.push(packet.subscriptions.length);
      });
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'suback') subacks++;
      });
    });
    const recorder = new Recorder();
    const transport = mqttTransport({ url: urlOf('tcp'), mqtt: connect });
    const connection = await transport.connect(
      token(sub, [...groups, 'not/a/topic']),
      recorder,
      new AbortController().signal,
    );
    open.push({ connection, recorder });
    // Resolved only once every SUBACK was in.
    expect(subacks).toBe(subscribes.length);
    const subscribed = IOT_LIMITS.maxSubscriptionsPerConnection - 4;
    expect(subscribes.reduce((a, b) => a + b, 0)).toBe(IOT_LIMITS.maxSubscriptionsPerConnection);
    expect(Math.max(...subscribes)).toBeLessThanOrEqual(IOT_LIMITS.maxFiltersPerSubscribe);
    // Every SUBACK granted (a refused one would be reported), and the skipped groups are named.
    const skipped = await recorder.nextError((e) => e.message.includes('group'));
    expect((skipped as ConnectionError).details?.skippedGroups).toEqual([
      ...groups.slice(subscribed).map((group) => ({ group, reason: 'subscription_limit' })),
      { group: 'not/a/topic', reason: 'invalid_name' },
    ]);
    expect(recorder.errors).toHaveLength(1);

    const last = groups[subscribed - 1] as string;
    const announcement = recorder.next((f) => f.type === 'announcement');
    const sent = await publisher.announce({ text: 'for the last group' }, { group: last });
    expect(await announcement).toMatchObject({ type: 'announcement', id: sent.id, group: last });
  });
});

describe('frames', () => {
  it('delivers a notification published by the backend', async () => {
    const sub = nextUser();
    const { recorder } = await connectAs(sub, { url: urlOf('ws') });
    const notification = recorder.next((f) => f.type === 'notification');
    const [sent] = await publisher.notify(sub, { title: 'Your order shipped' });
    expect(sent?.delivery).toMatchObject({ delivered: 1 });
    expect(await notification).toMatchObject({
      type: 'notification',
      id: sent?.id,
      body: { title: 'Your order shipped' },
      read: false,
    });
  });

  it('delivers announcements to everyone and to the token’s groups', async () => {
    const sub = nextUser();
    const { recorder } = await connectAs(sub, { url: urlOf('tcp'), protocolVersion: 4 }, ['beta']);
    const toGroup = recorder.next((f) => f.type === 'announcement' && f.group === 'beta');
    const group = await publisher.announce({ text: 'beta only' }, { group: 'beta' });
    expect(await toGroup).toMatchObject({ id: group.id, body: { text: 'beta only' } });
    const toAll = recorder.next((f) => f.type === 'announcement' && f.group === undefined);
    const all = await publisher.announce({ text: 'for all' });
    expect(await toAll).toMatchObject({ id: all.id });
  });

  it('reports a message that is not JSON or has no type, naming the topic, and goes on', async () => {
    const sub = nextUser();
    const { connection, recorder } = await connectAs(sub, { url: urlOf('tcp') });
    const inbox = topics.inbox(sub);
    const notJson = recorder.nextError((e) => e.message.includes('not JSON'));
    const noType = recorder.nextError((e) => e.message.includes('without a `type`'));
    await emulator.broker?.publish(inbox, 'not json', { qos: 1 });
    await emulator.broker?.publish(inbox, '[1, 2]', { qos: 1 });
    for (const error of [await notJson, await noType]) {
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error.message).toContain(inbox);
    }
    const pong = recorder.next(ackOf('p'));
    connection.send({ action: 'ping', id: 'p' });
    await pong;
    expect(recorder.frames.map((f) => f.type)).toEqual(['pong']);
  });
});

describe('handlers that throw', () => {
  it('reports a frame handler’s exception and keeps the connection', async () => {
    const sub = nextUser();
    const recorder = new Recorder();
    const frame = recorder.frame;
    let thrown = false;
    recorder.frame = (f) => {
      if (!thrown) {
        thrown = true;
        throw new Error('app bug');
      }
      frame(f);
    };
    const connection = await mqttTransport({ url: urlOf('tcp'), mqtt: capturing() }).connect(
      token(sub),
      recorder,
      new AbortController().signal,
    );
    open.push({ connection, recorder });
    const reported = recorder.nextError((e) => e.message.includes('handler threw'));
    connection.send({ action: 'ping', id: 'p1' });
    expect(((await reported).cause as Error).message).toBe('app bug');
    const pong = recorder.next(ackOf('p2'));
    connection.send({ action: 'ping', id: 'p2' });
    await pong;
  });
});

describe('close', () => {
  it('close() reports closed once, is idempotent, and send then throws ConnectionError', async () => {
    const { connection, recorder } = await connectAs(nextUser(), { url: urlOf('tcp') });
    connection.close();
    connection.close();
    expect(await recorder.whenClosed()).toEqual({ reason: 'closed by the client' });
    connection.close();
    await turn();
    expect(recorder.closings).toHaveLength(1);
    expect(() => connection.send({ action: 'ping', id: 'late' })).toThrow(ConnectionError);
  });

  it('reports closed once for every connection when the emulator shuts down', async () => {
    const own = await startEmulator({ port: 0, logLevel: 'silent' });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await own.close();
    });
    const mint = (sub: string) => own.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 3600 });
    const recorders: Recorder[] = [];
    for (const [url, protocolVersion] of [
      [own.mqttUrl, 5],
      [own.mqttWsUrl, 4],
    ] as const) {
      const recorder = new Recorder();
      await mqttTransport({ url: url as string, protocolVersion, mqtt: capturing() }).connect(
        mint(nextUser()),
        recorder,
        new AbortController().signal,
      );
      recorders.push(recorder);
    }
    await own.close();
    stopped = true;
    const [v5, v4] = await Promise.all(recorders.map((r) => r.whenClosed()));
    expect(v5).toMatchObject({ code: 0x8b });
    expect(v4?.code).toBeUndefined();
    await turn();
    for (const recorder of recorders) expect(recorder.closings).toHaveLength(1);
  });
});
