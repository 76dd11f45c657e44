/**
 * The IoT-style MQTT broker with real MQTT.js clients, over TCP and WebSocket, MQTT 3.1.1 and MQTT 5.
 * Keep-alive expiry uses a raw client built on mqtt-packet, because MQTT.js pings on its own.
 */
import { type EventEmitter, once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { generate, type Packet, parser as packetParser } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Broker,
  type BrokerClient,
  type BrokerHooks,
  type BrokerListener,
  type BrokerOptions,
  createBroker,
  type DisconnectInfo,
  InvalidTopicError,
  PayloadTooLargeError,
} from '../src/broker/index.js';
import { createEmulatorLogger } from '../src/log.js';

type Transport = 'tcp' | 'ws';
type Version = 4 | 5;

interface Harness {
  broker: Broker;
  tcp: BrokerListener;
  ws: BrokerListener;
  logs: string[];
  connected: string[];
  disconnected: Array<{ clientId: string; info: DisconnectInfo }>;
  published: Array<{ clientId: string | null; topic: string; payload: string; qos: number }>;
  authRequests: Array<Parameters<NonNullable<BrokerHooks['authenticate']>>[0]>;
}

let harness: Harness | undefined;
const clients: MqttClient[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  for (const s of sockets.splice(0)) s.destroy();
  await harness?.broker.close();
  harness = undefined;
});

/**
 * A broker with hooks that act on test conventions: username `deny` is refused, password `boom` makes the
 * authorizer throw; `forbidden/...` may be neither published nor subscribed, `explode/...` makes those
 * hooks throw; `secret/...` is delivered only to client ids starting with `admin`.
 */
async function start(options: Omit<BrokerOptions, 'hooks' | 'logger'> = {}, extra: BrokerHooks = {}) {
  const logs: string[] = [];
  const h: Omit<Harness, 'broker' | 'tcp' | 'ws'> = {
    logs,
    connected: [],
    disconnected: [],
    published: [],
    authRequests: [],
  };
  const hooks: BrokerHooks = {
    async authenticate(request) {
      h.authRequests.push(request);
      if (request.password?.toString() === 'boom') throw new Error('authorizer crashed');
      if (request.username === 'deny') return { ok: false };
      return { ok: true, principal: { user: request.username ?? 'anonymous' } };
    },
    async authorizePublish(_client, topic) {
      if (topic.startsWith('explode/')) throw new Error('policy evaluator crashed');
      return !topic.startsWith('forbidden/');
    },
    async authorizeSubscribe(_client, filter) {
      if (filter.startsWith('explode/')) throw new Error('policy evaluator crashed');
      return !filter.startsWith('forbidden/');
    },
    async authorizeDelivery(client, topic) {
      return !topic.startsWith('secret/') || client.clientId.startsWith('admin');
    },
    async onPublish(client, topic, payload, qos) {
      h.published.push({ clientId: client?.clientId ?? null, topic, payload: payload.toString(), qos });
    },
    async onConnected(client) {
      h.connected.push(client.clientId);
    },
    async onDisconnected(client, info) {
      h.disconnected.push({ clientId: client.clientId, info });
    },
    ...extra,
  };
  const broker = createBroker({
    ...options,
    hooks,
    logger: createEmulatorLogger({ level: 'info', log: (line) => logs.push(line) }),
  });
  const tcp = await broker.listenTcp({ host: '127.0.0.1', port: 0 });
  const ws = await broker.listenWs({ host: '127.0.0.1', port: 0 });
  harness = { broker, tcp, ws, ...h };
  return harness;
}

function url(h: Harness, transport: Transport): string {
  return transport === 'tcp' ? `mqtt://127.0.0.1:${h.tcp.port}` : `ws://127.0.0.1:${h.ws.port}/mqtt`;
}

let nextId = 0;
function uniqueId(prefix = 'c'): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** Connects an MQTT.js client that never reconnects on its own, so closes stay observable. */
async function connect(
  h: Harness,
  transport: Transport,
  protocolVersion: Version,
  options: IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(url(h, transport), {
    protocolVersion,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    clientId: uniqueId(),
    ...options,
  });
  clients.push(client);
  // MQTT.js emits 'error' for refusals and server disconnects; without a listener that would throw.
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

/** The CONNACK-refusal error of a connect attempt. */
async function refusal(h: Harness, transport: Transport, version: Version, options: IClientOptions) {
  const client = mqtt.connect(url(h, transport), { protocolVersion: version, reconnectPeriod: 0, ...options });
  clients.push(client);
  const [error] = (await once(client as unknown as EventEmitter, 'error')) as [Error & { code?: number }];
  return error;
}

/** The SUBACK codes of a subscribe: MQTT.js rejects when any is a failure, with the SUBACK attached. */
async function subackCodes(pending: Promise<Array<{ qos: number }>>): Promise<number[]> {
  try {
    return (await pending).map((g) => g.qos);
  } catch (error) {
    const packet = (error as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw error;
    return packet.granted;
  }
}

function nextMessage(client: MqttClient): Promise<{ topic: string; payload: string; qos: number; packet: Packet }> {
  return new Promise((resolve) => {
    client.once('message', (topic, payload, packet) =>
      resolve({ topic, payload: payload.toString(), qos: packet.qos, packet }),
    );
  });
}

/** Resolves with the server's MQTT 5 DISCONNECT reason code (undefined for 3.1.1) once the client closed. */
async function serverClose(client: MqttClient): Promise<number | undefined> {
  let reasonCode: number | undefined;
  client.on('disconnect', (packet) => {
    reasonCode = packet.reasonCode;
  });
  if (!client.connected) return reasonCode;
  await once(client as unknown as EventEmitter, 'close');
  return reasonCode;
}

describe.each([
  ['tcp', 4],
  ['tcp', 5],
  ['ws', 4],
  ['ws', 5],
] as Array<[Transport, Version]>)('over %s with protocol version %i', (transport, version) => {
  const v5 = version === 5;

  it('accepts a client the authenticate hook allows and refuses one it denies with Not authorized', async () => {
    const h = await start();
    const client = await connect(h, transport, version, { username: 'alice', password: 'pw' });
    expect(client.connected).toBe(true);
    const request = h.authRequests.at(-1);
    expect(request).toMatchObject({ username: 'alice', protocolVersion: version, transport, clean: true });
    expect(request?.password?.toString()).toBe('pw');
    await h.broker.settled();
    expect(h.connected).toContain(client.options.clientId);

    const error = await refusal(h, transport, version, { username: 'deny' });
    // MQTT 5: CONNACK reason 0x87 Not authorized; MQTT 3.1.1: return code 5.
    expect(error.code).toBe(v5 ? 0x87 : 5);
  });

  it('refuses the connection when the authenticate hook throws, logs it, and keeps serving', async () => {
    const h = await start();
    const error = await refusal(h, transport, version, { username: 'bob', password: 'boom' });
    expect(error.code).toBe(v5 ? 0x87 : 5);
    expect(h.logs.some((l) => l.includes('authenticate hook failed: authorizer crashed'))).toBe(true);
    const other = await connect(h, transport, version);
    expect(other.connected).toBe(true);
  });

  it('delivers QoS 0 and QoS 1 between two clients, QoS capped at the subscription', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    const pub = await connect(h, transport, version);
    const granted = await sub.subscribeAsync({ 'rooms/lobby': { qos: 1 }, 'rooms/quiet': { qos: 0 } });
    expect(granted.map((g) => g.qos)).toEqual([1, 0]);

    let got = nextMessage(sub);
    await pub.publishAsync('rooms/lobby', 'hello-0', { qos: 0 });
    expect(await got).toMatchObject({ topic: 'rooms/lobby', payload: 'hello-0', qos: 0 });

    got = nextMessage(sub);
    await pub.publishAsync('rooms/lobby', 'hello-1', { qos: 1 });
    const received = await got;
    expect(received).toMatchObject({ topic: 'rooms/lobby', payload: 'hello-1', qos: 1 });
    expect(received.packet.cmd === 'publish' && received.packet.messageId).toBeGreaterThan(0);

    got = nextMessage(sub);
    await pub.publishAsync('rooms/quiet', 'downgraded', { qos: 1 });
    expect(await got).toMatchObject({ topic: 'rooms/quiet', qos: 0 });

    await h.broker.settled();
    expect(h.published.map((p) => [p.clientId, p.topic, p.qos])).toEqual([
      [pub.options.clientId, 'rooms/lobby', 0],
      [pub.options.clientId, 'rooms/lobby', 1],
      [pub.options.clientId, 'rooms/quiet', 1],
    ]);
  });

  it('matches + and # wildcards, and # does not match its parent level (as IoT)', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    const pub = await connect(h, transport, version);
    await sub.subscribeAsync(['rooms/+/send', 'sensor/#']);
    const seen: string[] = [];
    sub.on('message', (topic) => seen.push(topic));
    const marker = nextMessageOn(sub, 'sensor/done');
    for (const topic of ['rooms/a/send', 'rooms/a/b/send', 'sensor', 'sensor/', 'sensor/t/1', 'sensor/done']) {
      await pub.publishAsync(topic, 'x', { qos: 1 });
    }
    await marker;
    expect(seen).toEqual(['rooms/a/send', 'sensor/', 'sensor/t/1', 'sensor/done']);
  });

  it('answers an unauthorized subscribe with a failure code and a throwing hook the same way', async () => {
    const h = await start();
    const client = await connect(h, transport, version);
    // The failure code is 0x80 in 3.1.1, 0x87 Not authorized in 5.
    expect(await subackCodes(client.subscribeAsync('forbidden/inbox'))).toEqual([v5 ? 0x87 : 0x80]);
    expect(await subackCodes(client.subscribeAsync(['explode/x', 'fine/x']))).toEqual([v5 ? 0x87 : 0x80, 0]);
    expect(h.logs.some((l) => l.includes('authorizeSubscribe hook failed'))).toBe(true);
    expect(client.connected).toBe(true);
    const granted = await client.subscribeAsync('allowed/x', { qos: 1 });
    expect(granted[0]?.qos).toBe(1);
  });

  it('drops an unauthorized publish (3.1.1: closes the connection; 5: PUBACK 0x87)', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    await sub.subscribeAsync({ '#': { qos: 1 } });
    const pub = await connect(h, transport, version);
    const first = nextMessage(sub);
    if (v5) {
      await expect(pub.publishAsync('forbidden/x', 'no', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
      expect(pub.connected).toBe(true);
      await pub.publishAsync('allowed/x', 'marker', { qos: 1 });
    } else {
      const closedByServer = serverClose(pub);
      pub.publish('forbidden/x', 'no', { qos: 0 });
      await closedByServer;
      await h.broker.settled();
      expect(h.disconnected.find((d) => d.clientId === pub.options.clientId)?.info.reason).toBe('AUTH_ERROR');
      await h.broker.publish('allowed/x', 'marker', { qos: 1 });
    }
    // Deliveries to one subscriber keep their order: the marker arriving first proves the refused one was dropped.
    expect(await first).toMatchObject({ topic: 'allowed/x', payload: 'marker' });
    await h.broker.settled();
    expect(h.published.map((p) => p.topic)).not.toContain('forbidden/x');
  });

  it('refuses QoS 2 (IoT supports QoS 0 and 1 only)', async () => {
    const h = await start();
    const pub = await connect(h, transport, version);
    const closedByServer = serverClose(pub);
    pub.publish('rooms/lobby', 'qos2', { qos: 2 });
    // MQTT 5: DISCONNECT 0x9B QoS not supported; 3.1.1 has no reason code, the connection closes.
    expect(await closedByServer).toBe(v5 ? 0x9b : undefined);
    await h.broker.settled();
    expect(h.published).toEqual([]);
    expect(h.disconnected.at(-1)?.info.reason).toBe('CLIENT_ERROR');
  });

  it('grants a QoS 2 subscription as QoS 1', async () => {
    const h = await start();
    const client = await connect(h, transport, version);
    const granted = await client.subscribeAsync('rooms/lobby', { qos: 2 });
    expect(granted[0]?.qos).toBe(1);
  });

  it('lets a second client with the same client id take over the first', async () => {
    const h = await start();
    const first = await connect(h, transport, version, { clientId: 'device-1' });
    await first.subscribeAsync('rooms/lobby');
    const firstClosed = serverClose(first);
    const second = await connect(h, transport, version, { clientId: 'device-1' });
    // MQTT 5: DISCONNECT 0x8E Session taken over.
    expect(await firstClosed).toBe(v5 ? 0x8e : undefined);
    expect(second.connected).toBe(true);
    await h.broker.settled();
    expect(h.disconnected).toEqual([
      { clientId: 'device-1', info: expect.objectContaining({ reason: 'DUPLICATE_CLIENTID', clientInitiated: false }) },
    ]);
    expect(h.broker.client('device-1')?.connected).toBe(true);
    // The old connection's subscriptions went with it: the new one starts clean.
    expect(await h.broker.publish('rooms/lobby', 'x')).toBe(0);
  });

  it('closes the connection of a publish over 128 KB and delivers one of exactly 128 KB', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    await sub.subscribeAsync('big/#');
    const pub = await connect(h, transport, version);
    const got = nextMessage(sub);
    await pub.publishAsync('big/ok', Buffer.alloc(128 * 1024, 1), { qos: 1 });
    expect((await got).payload.length).toBe(128 * 1024);

    const closedByServer = serverClose(pub);
    pub.publish('big/no', Buffer.alloc(128 * 1024 + 1, 1), { qos: 1 });
    // MQTT 5: DISCONNECT 0x95 Packet too large; IoT's lifecycle reason is CLIENT_ERROR.
    expect(await closedByServer).toBe(v5 ? 0x95 : undefined);
    await h.broker.settled();
    expect(h.disconnected.find((d) => d.clientId === pub.options.clientId)?.info.reason).toBe('CLIENT_ERROR');
    expect(h.published.map((p) => p.topic)).toEqual(['big/ok']);
  });

  it('delivers a server-side publish to subscribers and to onPublish with a null client', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    await sub.subscribeAsync({ 'rt/announcements': { qos: 1 } });
    const got = nextMessage(sub);
    expect(await h.broker.publish('rt/announcements', '{"text":"hi"}', { qos: 1 })).toBe(1);
    expect(await got).toMatchObject({ topic: 'rt/announcements', payload: '{"text":"hi"}', qos: 1 });
    await h.broker.settled();
    expect(h.published).toEqual([{ clientId: null, topic: 'rt/announcements', payload: '{"text":"hi"}', qos: 1 }]);
  });

  it('checks delivery with authorizeDelivery at delivery time', async () => {
    const h = await start();
    const admin = await connect(h, transport, version, { clientId: uniqueId('admin') });
    const user = await connect(h, transport, version);
    await admin.subscribeAsync('secret/#');
    await user.subscribeAsync('#');
    const userSaw = nextMessage(user);
    const adminSaw = nextMessage(admin);
    await h.broker.publish('secret/plans', 'classified');
    await h.broker.publish('public/news', 'open');
    expect(await adminSaw).toMatchObject({ topic: 'secret/plans' });
    expect(await userSaw).toMatchObject({ topic: 'public/news' });
  });

  it('survives a throwing publish hook: that publish is refused, other clients keep working', async () => {
    const h = await start();
    const sub = await connect(h, transport, version);
    await sub.subscribeAsync('#');
    const pub = await connect(h, transport, version);
    if (v5) {
      await expect(pub.publishAsync('explode/x', 'boom', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    } else {
      const closedByServer = serverClose(pub);
      pub.publish('explode/x', 'boom');
      await closedByServer;
    }
    expect(h.logs.some((l) => l.includes('authorizePublish hook failed: policy evaluator crashed'))).toBe(true);
    const other = await connect(h, transport, version);
    const got = nextMessage(sub);
    await other.publishAsync('rooms/lobby', 'still here', { qos: 1 });
    expect(await got).toMatchObject({ topic: 'rooms/lobby', payload: 'still here' });
  });

  it('lets the hooks disconnect a client through its handle', async () => {
    const h = await start();
    const client = await connect(h, transport, version, { clientId: 'kick-me' });
    const closedByServer = serverClose(client);
    const handle = h.broker.client('kick-me') as BrokerClient;
    expect(handle.principal).toEqual({ user: 'anonymous' });
    const endedAt = Date.now();
    await handle.disconnect();
    // MQTT 5: DISCONNECT 0x98 Administrative action by default.
    expect(await closedByServer).toBe(v5 ? 0x98 : undefined);
    expect(h.disconnected.at(-1)).toEqual({
      clientId: 'kick-me',
      // `at`: when the broker ended it, not when the socket finished closing.
      info: { reason: 'SERVER_INITIATED_DISCONNECT', clientInitiated: false, reasonCode: 0x98, at: expect.any(Number) },
    });
    expect(h.disconnected.at(-1)?.info.at).toBeGreaterThanOrEqual(endedAt);
    expect(h.broker.client('kick-me')).toBeUndefined();
  });

  it('reports a client DISCONNECT as client-initiated', async () => {
    const h = await start();
    const client = await connect(h, transport, version, { clientId: 'leaver' });
    await client.endAsync();
    await h.broker.settled();
    await expect.poll(() => h.disconnected.at(-1)?.info.reason).toBe('CLIENT_INITIATED_DISCONNECT');
    expect(h.disconnected.at(-1)?.info.clientInitiated).toBe(true);
  });
});

function nextMessageOn(client: MqttClient, topic: string): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (t: string) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve();
    };
    client.on('message', onMessage);
  });
}

describe('MQTT 5 specifics', () => {
  it('forwards MQTT 5 properties and lets 3.1.1 and 5 clients talk to each other', async () => {
    const h = await start();
    const v5sub = await connect(h, 'tcp', 5);
    const v4sub = await connect(h, 'ws', 4);
    await v5sub.subscribeAsync('req/#');
    await v4sub.subscribeAsync('req/#');
    const pub = await connect(h, 'tcp', 5);
    const at5 = nextMessage(v5sub);
    const at4 = nextMessage(v4sub);
    await pub.publishAsync('req/echo', 'ping', {
      qos: 1,
      properties: {
        responseTopic: 'res/alice',
        correlationData: Buffer.from('c-1'),
        userProperties: { kind: 'echo' },
        contentType: 'text/plain',
      },
    });
    const got5 = await at5;
    expect(got5.packet.cmd === 'publish' && got5.packet.properties).toMatchObject({
      responseTopic: 'res/alice',
      correlationData: Buffer.from('c-1'),
      userProperties: { kind: 'echo' },
      contentType: 'text/plain',
    });
    expect(await at4).toMatchObject({ topic: 'req/echo', payload: 'ping' });

    const v4pub = await connect(h, 'tcp', 4);
    const again = nextMessage(v5sub);
    await v4pub.publishAsync('req/from-v4', 'hi', { qos: 1 });
    expect(await again).toMatchObject({ topic: 'req/from-v4', payload: 'hi' });
  });

  it("announces IoT's limits in CONNACK and adjusts the keep-alive as IoT does", async () => {
    const h = await start();
    const connack = async (keepalive: number) => {
      const client = mqtt.connect(url(h, 'tcp'), { protocolVersion: 5, reconnectPeriod: 0, keepalive });
      clients.push(client);
      const [packet] = (await once(client as unknown as EventEmitter, 'connect')) as [
        { properties?: Record<string, unknown> },
      ];
      return packet.properties ?? {};
    };
    const props = await connack(60);
    expect(props).toMatchObject({ maximumQoS: 1, receiveMaximum: 100, subscriptionIdentifiersAvailable: false });
    expect(props.serverKeepAlive).toBeUndefined();
    // IoT: under 30 s counts as 30; over 1200 s as the 1200 s default.
    expect((await connack(10)).serverKeepAlive).toBe(30);
    expect((await connack(5000)).serverKeepAlive).toBe(1200);
  });

  it('refuses topics and filters over IoT limits: 7 slashes at most', async () => {
    const h = await start();
    const client = await connect(h, 'tcp', 5);
    expect(await subackCodes(client.subscribeAsync('a/b/c/d/e/f/g/h/i'))).toEqual([0x8f]);
    expect((await client.subscribeAsync('a/b/c/d/e/f/g/h'))[0]?.qos).toBe(0);
    const closedByServer = serverClose(client);
    client.publish('a/b/c/d/e/f/g/h/i', 'too deep');
    expect(await closedByServer).toBe(0x90);
    await expect(h.broker.publish('a/b/c/d/e/f/g/h/i', 'x')).rejects.toBeInstanceOf(InvalidTopicError);
    await expect(h.broker.publish('a/+', 'x')).rejects.toBeInstanceOf(InvalidTopicError);
    await expect(h.broker.publish('a', Buffer.alloc(128 * 1024 + 1))).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('caps subscriptions per connection at 50 with Quota exceeded', async () => {
    const h = await start();
    const client = await connect(h, 'tcp', 5);
    for (let i = 0; i < 50; i += 6) {
      const filters = Array.from({ length: Math.min(6, 50 - i) }, (_, k) => `sub/${i + k}`);
      await client.subscribeAsync(filters);
    }
    expect(await subackCodes(client.subscribeAsync('sub/50'))).toEqual([0x97]);
    // Re-subscribing to a filter it holds is not a new subscription.
    expect((await client.subscribeAsync('sub/0', { qos: 1 }))[0]?.qos).toBe(1);
  });
});

/** A bare MQTT client on a TCP socket: sends CONNECT and then stays silent, unlike MQTT.js. */
async function rawConnect(port: number, version: Version, keepalive: number) {
  const socket = netConnect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const packets: Packet[] = [];
  const parser = packetParser({ protocolVersion: version });
  parser.on('packet', (p: Packet) => packets.push(p));
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  const closed = once(socket, 'close');
  socket.write(
    generate({ cmd: 'connect', protocolVersion: version, clientId: uniqueId('raw'), clean: true, keepalive }),
  );
  return { socket, packets, closed };
}

describe('keep-alive', () => {
  it.each([4, 5] as Version[])('closes a silent v%i client after 1.5 x its keep-alive', async (version) => {
    const h = await start({ limits: { minKeepAliveSeconds: 1 } });
    const startedAt = Date.now();
    const raw = await rawConnect(h.tcp.port, version, 1);
    await raw.closed;
    const elapsed = Date.now() - startedAt;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(raw.packets[0]?.cmd).toBe('connack');
    const last = raw.packets.at(-1);
    // MQTT 5 clients are told why: 0x8D Keep alive timeout.
    if (version === 5) expect(last).toMatchObject({ cmd: 'disconnect', reasonCode: 0x8d });
    else expect(last?.cmd).toBe('connack');
    await h.broker.settled();
    expect(h.disconnected.at(-1)?.info.reason).toBe('MQTT_KEEP_ALIVE_TIMEOUT');
  });

  it('keeps a pinging client connected past its keep-alive', async () => {
    const h = await start({ limits: { minKeepAliveSeconds: 1 } });
    const client = await connect(h, 'tcp', 5, { keepalive: 1 });
    // MQTT.js pings every second; two PINGRESPs take about 2 s, past the 1.5 s a silent client gets.
    for (let i = 0; i < 2; i++) await once(client as unknown as EventEmitter, 'packetreceive');
    expect(client.connected).toBe(true);
  });
});

describe('WebSocket metadata', () => {
  it('passes the upgrade query and headers to authenticate (browsers put the token in the query)', async () => {
    const h = await start();
    await connect(h, 'ws', 5, {
      wsOptions: { headers: { 'X-Amz-CustomAuthorizer-Name': 'viba' } },
      path: '/mqtt?token=abc&x=1',
    } as IClientOptions);
    const request = h.authRequests.at(-1);
    expect(request?.transport).toBe('ws');
    expect(request?.query).toEqual({ token: 'abc', x: '1' });
    expect(request?.queryString).toBe('token=abc&x=1');
    expect(request?.headers?.['x-amz-customauthorizer-name']).toBe('viba');
  });

  it('serves nothing but /mqtt', async () => {
    const h = await start();
    const client = mqtt.connect(`ws://127.0.0.1:${h.ws.port}/other`, { reconnectPeriod: 0, connectTimeout: 5_000 });
    clients.push(client);
    client.on('error', () => {});
    await once(client as unknown as EventEmitter, 'close');
    expect(client.connected).toBe(false);
  });
});
