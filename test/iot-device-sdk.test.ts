/**
 * AWS's own device SDK against the emulated IoT Core: `aws-iot-device-sdk-v2` (the AWS Common Runtime's MQTT
 * 3.1.1 `MqttClientConnection` and its `Mqtt5Client`), over TCP and over WebSocket (`/mqtt`, no TLS), next to
 * raw `ws` clients on the emulated API Gateway. Every client authenticates as a device of ours would: any
 * username, the Cognito token as the password (or, over WebSocket, in the `?token=` query as browsers do),
 * client id `{sub}.{suffix}`, SDK metrics off (they would be appended to the username).
 *
 * What each SDK reports when IoT refuses something, as observed here:
 * - CONNECT: the MQTT 5 client gets `connectionFailure` with the CONNACK (reason code 0x87 Not authorized) and
 *   `AWS_ERROR_MQTT5_CONNACK_CONNECTION_REFUSED`. The 3.1.1 client never surfaces the CONNACK return code:
 *   aws-c-mqtt shuts the channel down with `AWS_ERROR_MQTT_PROTOCOL_ERROR` on any non-zero return code
 *   (awslabs/aws-c-mqtt source/client_channel_handler.c, `s_packet_handler_connack`), so that is what `connect()` and `connection_failure` report. The
 *   return code itself (5) is asserted with MQTT.js in cross-channel.test.ts.
 * - SUBSCRIBE: a SUBACK failure per refused filter, 0x87 (MQTT 5) or 0x80 (3.1.1), the others granted.
 * - PUBLISH: MQTT 5 gets PUBACK 0x87 (QoS 1) or nothing (QoS 0) and stays connected; a 3.1.1 client is
 *   disconnected (it cannot be told otherwise), which the SDK reports as an `interrupt` before reconnecting.
 *
 * Cleanup: every client is closed in afterAll. The 3.1.1 connection frees its native resources on
 * `disconnect()` (its `closed` event closes it). `Mqtt5Client.close()` only drops the references to the
 * native client, whose thread-safe callbacks are released when it is garbage-collected
 * (awslabs/aws-crt-nodejs#600), so a plain Node script could idle until a GC; vitest ends its forks itself.
 */
import type { EventEmitter } from 'node:events';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { createDynamoDbStore } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, type ServerFrame, TOKEN_QUERY_PARAM, topics } from '@viba-realtime/protocol';
import { type ICrtError, io, mqtt, mqtt5 } from 'aws-iot-device-sdk-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FrameWithOptionalId, TestClient } from './support/ws-client.js';

type Chat = Extract<ServerFrame, { type: 'chat' }>;
type Ack = Extract<ServerFrame, { type: 'ack' }>;
type History = Extract<ServerFrame, { type: 'history' }>;

/** One way of connecting: the SDK's client, the transport and where the token goes. */
interface Kind {
  name: string;
  /** Short, sub-safe: user names get it as a suffix so the kinds' tests never share a user. */
  tag: string;
  version: 3 | 5;
  transport: 'tcp' | 'ws';
  tokenIn: 'password' | 'query';
}

const KINDS: Kind[] = [
  { name: 'MQTT 3.1.1 client over TCP', tag: 'v3tcp', version: 3, transport: 'tcp', tokenIn: 'password' },
  { name: 'MQTT 3.1.1 client over WebSocket', tag: 'v3ws', version: 3, transport: 'ws', tokenIn: 'password' },
  { name: 'MQTT 5 client over TCP', tag: 'v5tcp', version: 5, transport: 'tcp', tokenIn: 'password' },
  { name: 'MQTT 5 client over WebSocket', tag: 'v5ws', version: 5, transport: 'ws', tokenIn: 'password' },
];
const [V3_TCP, V3_WS, V5_TCP, V5_WS] = KINDS as [Kind, Kind, Kind, Kind];

/** What each SDK reports for IoT's refusals (see the module comment). */
const REFUSAL = {
  3: { connectError: 'AWS_ERROR_MQTT_PROTOCOL_ERROR', connackReason: undefined, subscribeFailure: 0x80 },
  5: { connectError: 'AWS_ERROR_MQTT5_CONNACK_CONNECTION_REFUSED', connackReason: 0x87, subscribeFailure: 0x87 },
} as const;
const NOT_AUTHORIZED = 0x87;

let emulator: Emulator;
const openWs: TestClient[] = [];
const openDevices: AnyDevice[] = [];
/** One native 3.1.1 client (it only holds the default event loop group) for all 3.1.1 connections. */
let mqtt311: mqtt.MqttClient;
let counter = 0;

const nextRoom = () => `sdk-${++counter}`;
const nextSuffix = () => `d${++counter}`;
const userOf = (kind: Kind, name: string) => `${name}-${kind.tag}`;

function token(sub: string, ttlSeconds = 3600): string {
  return emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds });
}

async function ws(sub: string): Promise<TestClient> {
  const client = await TestClient.connect(emulator.url, token(sub), { name: sub });
  openWs.push(client);
  return client;
}

function store() {
  return createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

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

const marker = (room: string): ServerFrame => ({ type: 'presence', room, user: 'marker', state: 'joined', ts: 0 });

/**
 * The arguments of the emitter's next `event`. Not `events.once`: that rejects on an `error` event, which the
 * CRT emits for every failed operation (a cancelled publish, say) besides rejecting the operation's promise.
 */
function nextEvent<T extends unknown[]>(emitter: EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T)));
}

/** Where a kind connects: host, port and, for WebSocket, the path. */
function endpoint(kind: Kind): { host: string; port: number } {
  const url = new URL((kind.transport === 'tcp' ? emulator.mqttUrl : emulator.mqttWsUrl) ?? 'missing:');
  if (!url.port) throw new Error(`the emulator runs no MQTT ${kind.transport}`);
  return { host: url.hostname, port: Number(url.port) };
}

/** The WebSocket upgrade's path: `/mqtt` (the SDKs' default), with `?token=` when the token goes there. */
function wsPath(kind: Kind, credential: string | undefined): string {
  const path = new URL(emulator.mqttWsUrl ?? 'missing:').pathname;
  return kind.tokenIn === 'query' && credential !== undefined
    ? `${path}?${TOKEN_QUERY_PARAM}=${encodeURIComponent(credential)}`
    : path;
}

/** The CONNECT was refused; what the SDK said. */
class ConnectRefused extends Error {
  constructor(
    /** The CRT's error name. */
    readonly errorName: string | undefined,
    /** MQTT 5 only: the CONNACK reason code. */
    readonly reasonCode: number | undefined,
  ) {
    super(`CONNECT refused: ${errorName} ${reasonCode ?? ''}`);
  }
}

interface Received {
  topic: string;
  frame: ServerFrame;
}

interface Waiter {
  predicate: (message: Received) => boolean;
  resolve: (message: Received) => void;
}

/** A device of one user, shaped like `MqttPeer`: frames by topic, awaited, whichever SDK client is inside. */
abstract class Device {
  /** Every message received, in order. */
  readonly received: Received[] = [];
  #unread: Received[] = [];
  #waiters: Waiter[] = [];
  #counter = 0;

  constructor(
    readonly kind: Kind,
    readonly sub: string,
    readonly clientId: string,
  ) {}

  /** Connects; rejects with {@link ConnectRefused} when the broker refuses the CONNECT. */
  abstract connect(): Promise<void>;
  /** Subscribes at QoS 1; resolves with what the SUBACK says per filter (granted QoS or failure code). */
  abstract subscribe(filters: readonly string[]): Promise<number[]>;
  /** Publishes JSON at QoS 1; resolves once acknowledged, rejects when refused. */
  abstract publishJson(topic: string, value: unknown): Promise<void>;
  /** Disconnects cleanly (once) and frees the SDK client. */
  abstract close(): Promise<void>;

  protected deliver(topic: string, payload: unknown): void {
    const text = typeof payload === 'string' ? payload : Buffer.from(payload as ArrayBuffer).toString('utf8');
    const message = { topic, frame: JSON.parse(text) as ServerFrame };
    this.received.push(message);
    const waiter = this.#waiters.find((w) => w.predicate(message));
    if (waiter) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(message);
    } else {
      this.#unread.push(message);
    }
  }

  /** Resolves with the first unread message matching `predicate`, now or when it arrives. */
  next(predicate: (message: Received) => boolean): Promise<Received> {
    const index = this.#unread.findIndex(predicate);
    if (index >= 0) return Promise.resolve(this.#unread.splice(index, 1)[0] as Received);
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  /** Next frame on the user's topic of `room`. */
  nextOnRoom(room: string, predicate: (frame: ServerFrame) => boolean = () => true): Promise<ServerFrame> {
    const topic = topics.userRoom(this.sub, room);
    return this.next((m) => m.topic === topic && predicate(m.frame)).then((m) => m.frame);
  }

  /** Next frame on the user's responses topic answering `ref`. */
  response(ref: string): Promise<ServerFrame> {
    const topic = topics.responses(this.sub);
    return this.next((m) => m.topic === topic && 'ref' in m.frame && m.frame.ref === ref).then((m) => m.frame);
  }

  /** Publishes a client frame (id generated if absent) to the requests topic; resolves with its answer. */
  async request(frame: FrameWithOptionalId): Promise<ServerFrame> {
    const id = frame.id ?? `${this.clientId}-${++this.#counter}`;
    const answer = this.response(id);
    await this.publishJson(topics.requests(this.sub), { ...frame, id });
    return answer;
  }
}

/** The CRT's MQTT 3.1.1 client (`mqtt.MqttClientConnection`). */
class Device311 extends Device {
  readonly connection: mqtt.MqttClientConnection;
  sessionPresent: boolean | undefined;
  #closed = false;

  constructor(kind: Kind, sub: string, clientId: string, credential: string | undefined) {
    super(kind, sub, clientId);
    const { host, port } = endpoint(kind);
    this.connection = mqtt311.new_connection({
      client_id: clientId,
      host_name: host,
      port,
      clean_session: true,
      keep_alive: 30,
      username: 'any',
      ...(kind.tokenIn === 'password' && credential !== undefined ? { password: credential } : {}),
      // Without it the SDK appends `?SDK=...&Version=...` to the username.
      disable_metrics: true,
      socket_options: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.IPV4, 5_000),
      use_websocket: kind.transport === 'ws',
      ...(kind.transport === 'ws'
        ? {
            websocket_handshake_transform: (request, done) => {
              request.path = wsPath(kind, credential);
              done();
            },
          }
        : {}),
      // The shortest backoff: a client IoT dropped is back within a second.
      reconnect_min_sec: 1,
      reconnect_max_sec: 1,
    });
    this.connection.on('message', (topic, payload) => this.deliver(topic, payload));
  }

  async connect(): Promise<void> {
    const failure = new Promise<ICrtError>((resolve) => {
      this.connection.once('connection_failure', ({ error }) => resolve(error));
    });
    try {
      this.sessionPresent = await this.connection.connect();
    } catch {
      // A failed first connect is not retried, and `disconnect()` would reject (not connected).
      this.#closed = true;
      throw new ConnectRefused((await failure).error_name, undefined);
    }
  }

  async subscribe(filters: readonly string[]): Promise<number[]> {
    // The 3.1.1 client sends one filter per SUBSCRIBE.
    const granted: number[] = [];
    for (const filter of filters) granted.push((await this.connection.subscribe(filter, mqtt.QoS.AtLeastOnce)).qos);
    return granted;
  }

  async publishJson(topic: string, value: unknown): Promise<void> {
    await this.connection.publish(topic, JSON.stringify(value), mqtt.QoS.AtLeastOnce);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Resolves once DISCONNECT is sent; the `closed` event that follows frees the native connection.
    const closed = nextEvent(this.connection, 'closed');
    await this.connection.disconnect();
    await closed;
  }
}

/** The CRT's MQTT 5 client (`mqtt5.Mqtt5Client`). */
class Device5 extends Device {
  readonly client: mqtt5.Mqtt5Client;
  connack: mqtt5.ConnackPacket | undefined;
  settings: mqtt5.NegotiatedSettings | undefined;
  /** Every `disconnection` event: a connection IoT (or the network) ended. */
  readonly disconnections: mqtt5.DisconnectionEvent[] = [];
  readonly errors: ICrtError[] = [];
  #closed = false;

  constructor(kind: Kind, sub: string, clientId: string, credential: string | undefined) {
    super(kind, sub, clientId);
    const { host, port } = endpoint(kind);
    this.client = new mqtt5.Mqtt5Client({
      hostName: host,
      port,
      // Without it the SDK appends `?SDK=...&Version=...` to the username.
      disableMetrics: true,
      sessionBehavior: mqtt5.ClientSessionBehavior.Clean,
      connectProperties: {
        clientId,
        keepAliveIntervalSeconds: 30,
        username: 'any',
        ...(kind.tokenIn === 'password' && credential !== undefined ? { password: Buffer.from(credential) } : {}),
      },
      // Set: WebSocket (to `/mqtt`, subprotocol `mqtt`); unset: MQTT over TCP.
      ...(kind.transport === 'ws'
        ? {
            websocketHandshakeTransform: (request, done) => {
              request.path = wsPath(kind, credential);
              done();
            },
          }
        : {}),
      retryJitterMode: mqtt5.RetryJitterType.None,
      minReconnectDelayMs: 1_000,
      maxReconnectDelayMs: 1_000,
      connackTimeoutMs: 5_000,
    });
    this.client.on('messageReceived', ({ message }) => this.deliver(message.topicName, message.payload));
    this.client.on('disconnection', (event) => this.disconnections.push(event));
    this.client.on('error', (error) => this.errors.push(error));
  }

  async connect(): Promise<void> {
    const outcome = new Promise<mqtt5.ConnectionSuccessEvent | mqtt5.ConnectionFailureEvent>((resolve) => {
      this.client.once('connectionSuccess', resolve);
      this.client.once('connectionFailure', resolve);
    });
    this.client.start();
    const event = await outcome;
    if ('settings' in event) {
      this.connack = event.connack;
      this.settings = event.settings;
      return;
    }
    // The client would retry with backoff until stopped.
    await this.close();
    throw new ConnectRefused(event.error.error_name, event.connack?.reasonCode);
  }

  async subscribe(filters: readonly string[]): Promise<number[]> {
    const suback = await this.client.subscribe({
      subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: mqtt5.QoS.AtLeastOnce })),
    });
    return suback.reasonCodes;
  }

  async publishJson(topic: string, value: unknown): Promise<void> {
    const puback = await this.client.publish({
      topicName: topic,
      qos: mqtt5.QoS.AtLeastOnce,
      payload: JSON.stringify(value),
    });
    if (puback && puback.reasonCode >= 0x80) throw new Error(`PUBLISH ${topic} refused with ${puback.reasonCode}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const stopped = nextEvent(this.client, 'stopped');
    this.client.stop();
    await stopped;
    this.client.close();
  }
}

type AnyDevice = Device311 | Device5;

/** Narrows a device to the SDK client a test drives directly. */
function as<T extends AnyDevice>(peer: AnyDevice, type: new (...args: never[]) => T): T {
  if (!(peer instanceof type)) throw new Error(`${peer.clientId} is not a ${type.name}`);
  return peer;
}

interface DeviceOptions {
  sub: string;
  suffix?: string;
  /** @default a valid token of `sub`; `undefined` sends none */
  credential?: string | undefined;
  /** Another client id than `{sub}.{suffix}`. */
  clientId?: string;
  /** Subscribe to the user's responses and rooms topics (QoS 1) after connecting. @default true */
  subscribe?: boolean;
}

/** Connects a device of `kind` (and subscribes it, see {@link DeviceOptions}); closed in afterAll. */
async function device(kind: Kind, options: DeviceOptions): Promise<AnyDevice> {
  const clientId = options.clientId ?? clientIdFor(options.sub, options.suffix ?? nextSuffix());
  const credential = 'credential' in options ? options.credential : token(options.sub);
  const peer =
    kind.version === 5
      ? new Device5(kind, options.sub, clientId, credential)
      : new Device311(kind, options.sub, clientId, credential);
  openDevices.push(peer);
  await peer.connect();
  if (options.subscribe !== false) {
    const granted = await peer.subscribe([topics.responses(options.sub), topics.userRoomsFilter(options.sub)]);
    if (granted.some((code) => code !== 1)) throw new Error(`subscriptions refused: ${granted.join(', ')}`);
  }
  return peer;
}

/** Connects a device expected to be refused; resolves with the refusal, fails if it connected. */
async function refusal(kind: Kind, options: DeviceOptions): Promise<ConnectRefused> {
  try {
    await device(kind, { ...options, subscribe: false });
  } catch (error) {
    if (error instanceof ConnectRefused) return error;
    throw error;
  }
  throw new Error('the CONNECT was accepted');
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  mqtt311 = new mqtt.MqttClient();
});

afterAll(async () => {
  await Promise.all(openWs.map((c) => c.close()));
  await Promise.all(openDevices.map((d) => d.close()));
  await emulator?.close();
});

describe.each(KINDS)('$name', (kind) => {
  const user = (name: string) => userOf(kind, name);
  const expected = REFUSAL[kind.version];

  it('connects with a valid token, subscribes to its own topics and is answered on its responses topic', async () => {
    const sub = user('ann');
    const peer = await device(kind, { sub, subscribe: false });
    if (peer instanceof Device5) {
      expect(peer.connack).toMatchObject({ reasonCode: 0, sessionPresent: false, maximumQos: 1 });
      expect(peer.settings).toMatchObject({ clientId: peer.clientId, maximumQos: 1, rejoinedSession: false });
    } else {
      expect(peer.sessionPresent).toBe(false);
    }
    const own = [topics.responses(sub), topics.userRoomsFilter(sub), topics.inbox(sub), topics.announcements];
    expect(await peer.subscribe(own)).toEqual([1, 1, 1, 1]);
    expect(await peer.request({ action: 'ping', id: 'p1' })).toMatchObject({ type: 'pong', ref: 'p1' });
    // The lifecycle `connected` event made it an MQTT connection of its user.
    await expect
      .poll(() => store().getConnection(`mqtt:${peer.clientId}`), { interval: 20 })
      .toMatchObject({ sub, channel: 'mqtt' });
  });

  const REFUSED_TOKENS: [string, () => string | undefined][] = [
    ['no', () => undefined],
    ['a malformed', () => 'not-a-jwt'],
    ['an expired', () => token(user('eve'), -60)],
    [
      "another user pool's",
      () =>
        emulator.issuer.mint({
          sub: user('eve'),
          tokenUse: 'id',
          issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other',
        }),
    ],
    // IoT keeps a connection at least 300 s: the authorizer refuses a token that would expire before.
    ['a nearly expired (60 s left)', () => token(user('eve'), 60)],
  ];

  it.each(REFUSED_TOKENS)('refuses %s token at CONNECT', async (_what, credential) => {
    const sub = user('eve');
    const clientId = clientIdFor(sub, nextSuffix());
    const refused = await refusal(kind, { sub, clientId, credential: credential() });
    expect(refused).toMatchObject({ errorName: expected.connectError, reasonCode: expected.connackReason });
    expect(emulator.broker?.client(clientId)).toBeUndefined();
    expect(await store().getConnection(`mqtt:${clientId}`)).toBeUndefined();
  });

  it("refuses another user's client id even with a valid token", async () => {
    const refused = await refusal(kind, {
      sub: user('eve'),
      clientId: clientIdFor(user('mia'), 'stolen'),
      credential: token(user('eve')),
    });
    expect(refused).toMatchObject({ errorName: expected.connectError, reasonCode: expected.connackReason });
  });

  it("refuses subscriptions to another user's topics and to a room it is not in, granting its own", async () => {
    const room = nextRoom();
    const member = await device(kind, { sub: user('mia') });
    await member.request({ action: 'join', room, id: 'j' });
    const intruder = await device(kind, { sub: user('ivan'), subscribe: false });
    const refused = [
      topics.inbox(member.sub),
      topics.userRoom(member.sub, room),
      topics.userRoomsFilter(member.sub),
      topics.responses(member.sub),
      'rt/users/+/inbox',
      topics.roomSend(room),
      'rt/#',
    ];
    const own = topics.inbox(intruder.sub);
    expect(await intruder.subscribe([...refused, own])).toEqual([...refused.map(() => expected.subscribeFailure), 1]);

    // Refused means not subscribed: the room's chat reaches its member and nobody else.
    const wes = await ws(user('wes'));
    await wes.request({ action: 'join', room });
    const delivered = member.nextOnRoom(room, (f) => f.type === 'chat');
    const ack = (await wes.request({ action: 'send', room, body: { text: 'members only' } })) as Ack;
    expect(((await delivered) as Chat).seq).toBe(ack.seq);
    // Published after the chat's fan-out ended (the ack came after it): anything the intruder got came first.
    const seen = intruder.next((m) => m.topic === own);
    await publishDirect(own, marker(room));
    await seen;
    expect(intruder.received.map((m) => m.topic)).toEqual([own]);
  });

  it('refuses a publish to the announcements topic and delivers it to nobody', async () => {
    const listener = await device(kind, { sub: user('lena'), subscribe: false });
    expect(await listener.subscribe([topics.announcements])).toEqual([1]);
    const eve = await device(kind, { sub: user('eve') });
    const announcement = JSON.stringify({ type: 'announcement', body: { text: 'fake' } });

    if (eve instanceof Device5) {
      // MQTT 5: refused in the PUBACK, the connection stays up; a QoS 0 publish is dropped silently.
      const qos1 = await eve.client.publish({ topicName: topics.announcements, qos: 1, payload: announcement });
      expect(qos1).toMatchObject({ reasonCode: NOT_AUTHORIZED });
      expect(await eve.client.publish({ topicName: topics.announcements, qos: 0, payload: announcement })).toBe(
        undefined,
      );
      expect(await eve.request({ action: 'ping', id: 'after' })).toMatchObject({ type: 'pong', ref: 'after' });
      expect(eve.disconnections).toEqual([]);
    } else {
      // MQTT 3.1.1 has no way to refuse a publish: IoT drops the connection, and the SDK reconnects. Over
      // WebSocket the SDK notices about a second later: it leaves the broker's WebSocket Close frame
      // unanswered until the broker's close grace ends the socket.
      const connection = eve.connection;
      const interrupted = nextEvent<[ICrtError]>(connection, 'interrupt');
      const resumed = nextEvent<[number, boolean]>(connection, 'resume');
      const publish = connection.publish(topics.announcements, announcement, mqtt.QoS.AtLeastOnce);
      const [error] = await interrupted;
      expect(error.error_name).toBe('AWS_IO_SOCKET_CLOSED');
      // Never acknowledged; the clean session the SDK resumes with cancels it.
      await expect(publish).rejects.toMatch(/^Failed to publish/);
      const [returnCode, sessionPresent] = await resumed;
      expect({ returnCode, sessionPresent }).toEqual({ returnCode: 0, sessionPresent: false });
      // Let back in with the same token and client id; a clean session, so it subscribes again.
      expect(await eve.subscribe([topics.responses(eve.sub)])).toEqual([1]);
      expect(await eve.request({ action: 'ping', id: 'after' })).toMatchObject({ type: 'pong', ref: 'after' });
    }

    const seen = listener.next((m) => m.topic === topics.announcements);
    await publishDirect(topics.announcements, marker('announcements'));
    expect((await seen).frame).toMatchObject({ user: 'marker' });
    expect(listener.received).toHaveLength(1);
  });

  it('refuses a publish to the send topic of a room it was not in at CONNECT; the room stores nothing', async () => {
    const room = nextRoom();
    const wes = await ws(user('wes'));
    await wes.request({ action: 'join', room });
    const eve = await device(kind, { sub: user('eve') });
    const chat = JSON.stringify({ id: 'x1', body: { text: 'intruding' } });

    if (eve instanceof Device5) {
      expect(await eve.client.publish({ topicName: topics.roomSend(room), qos: 1, payload: chat })).toMatchObject({
        reasonCode: NOT_AUTHORIZED,
      });
    } else {
      const connection = eve.connection;
      const interrupted = nextEvent<[ICrtError]>(connection, 'interrupt');
      await connection.publish(topics.roomSend(room), chat, mqtt.QoS.AtMostOnce);
      const [error] = await interrupted;
      expect(error.error_name).toBe('AWS_IO_SOCKET_CLOSED');
    }
    await eve.close();

    const sent = (await wes.request({ action: 'send', room, body: { text: 'only me' } })) as Ack;
    const history = (await wes.request({ action: 'history', room })) as History;
    expect(history.messages.map((m) => [m.seq, m.from, m.body])).toEqual([[sent.seq, wes.name, { text: 'only me' }]]);
  });

  it('delivers its chats to a WebSocket member with the ack seq: requests topic and room send topic', async () => {
    const room = nextRoom();
    const wes = await ws(user('wes'));
    await wes.request({ action: 'join', room });
    const mia = await device(kind, { sub: user('mia') });
    const miaJoined = wes.next((f) => f.type === 'presence' && f.room === room && f.user === mia.sub);
    expect(await mia.request({ action: 'join', room, id: 'j' })).toMatchObject({ type: 'ack', action: 'join', room });
    expect(await miaJoined).toMatchObject({ type: 'presence', room, user: mia.sub, state: 'joined' });

    const viaRequests = wes.nextChat(room);
    const ack = (await mia.request({ action: 'send', room, id: 'm1', body: { text: 'hi ws' } })) as Ack;
    expect(ack).toMatchObject({ type: 'ack', action: 'send', ref: 'm1', room, seq: expect.any(Number) });
    expect(await viaRequests).toMatchObject({ from: mia.sub, seq: ack.seq, ref: 'm1', body: { text: 'hi ws' } });

    // The policy grants a room's send topic for the rooms the user was in at CONNECT: a device that connects
    // after the join may publish there (and joins itself, as every connection does).
    const tablet = await device(kind, { sub: mia.sub });
    await tablet.request({ action: 'join', room, id: 'j' });
    const viaRoomTopic = wes.nextChat(room);
    const answer = tablet.response('m2');
    await tablet.publishJson(topics.roomSend(room), { id: 'm2', body: { text: 'direct' } });
    const roomAck = (await answer) as Ack;
    expect(roomAck).toMatchObject({ type: 'ack', action: 'send', ref: 'm2', room, seq: (ack.seq ?? 0) + 1 });
    expect(await viaRoomTopic).toMatchObject({ from: mia.sub, seq: roomAck.seq, ref: 'm2', body: { text: 'direct' } });
  });

  it('receives WebSocket chats with the same seq, and presence both ways until it disconnects', async () => {
    const room = nextRoom();
    const mia = await device(kind, { sub: user('mia') });
    await mia.request({ action: 'join', room, id: 'j' });
    const wes = await ws(user('wes'));
    const wesJoined = mia.nextOnRoom(room, (f) => f.type === 'presence');
    await wes.request({ action: 'join', room });
    expect(await wesJoined).toMatchObject({ type: 'presence', room, user: wes.name, state: 'joined' });

    const chat = mia.nextOnRoom(room, (f) => f.type === 'chat');
    const ack = (await wes.request({ action: 'send', room, id: 'w1', body: { text: 'hi device' } })) as Ack;
    expect(await chat).toMatchObject({
      type: 'chat',
      room,
      from: wes.name,
      seq: ack.seq,
      id: ack.id,
      ref: 'w1',
      body: { text: 'hi device' },
    });

    const left = wes.next((f) => f.type === 'presence' && f.room === room && f.state === 'left');
    await mia.close();
    expect(await left).toMatchObject({ user: mia.sub, state: 'left' });
  });
});

describe('the token in the WebSocket query (as browsers send it)', () => {
  const QUERY_KINDS: Kind[] = [
    { ...V3_WS, name: 'MQTT 3.1.1 client', tag: 'v3q', tokenIn: 'query' },
    { ...V5_WS, name: 'MQTT 5 client', tag: 'v5q', tokenIn: 'query' },
  ];

  it.each(QUERY_KINDS)('admits the $name with a valid token and refuses it with an expired one', async (kind) => {
    const sub = userOf(kind, 'bob');
    const peer = await device(kind, { sub });
    expect(await peer.request({ action: 'ping', id: 'q' })).toMatchObject({ type: 'pong', ref: 'q' });
    const refused = await refusal(kind, { sub, credential: token(sub, -60) });
    expect(refused).toMatchObject({
      errorName: REFUSAL[kind.version].connectError,
      reasonCode: REFUSAL[kind.version].connackReason,
    });
  });
});

describe('the emulator under refusals', () => {
  it('keeps a room going while clients of every kind are refused around it, then admits new ones', async () => {
    const room = nextRoom();
    const wes = await ws('wes-keep');
    await wes.request({ action: 'join', room });
    const members = [await device(V5_TCP, { sub: 'mia-keep' }), await device(V3_WS, { sub: 'olaf-keep' })];
    for (const member of members) await member.request({ action: 'join', room, id: 'j' });
    const eve3 = as(await device(V3_TCP, { sub: 'eve-keep' }), Device311);
    const eve5 = as(await device(V5_WS, { sub: 'eve-keep' }), Device5);

    const acks: Ack[] = [];
    const conversation = (async () => {
      for (let n = 1; n <= 10; n++) acks.push((await wes.request({ action: 'send', room, body: { n } })) as Ack);
    })();
    const trouble = Promise.all([
      ...KINDS.flatMap((kind) => [
        refusal(kind, { sub: 'eve-keep', credential: 'garbage' }),
        refusal(kind, { sub: 'eve-keep', credential: token('eve-keep', -60) }),
      ]),
      eve5.subscribe([topics.userRoom('mia-keep', room), topics.inbox('mia-keep')]),
      eve3.subscribe([topics.userRoom('olaf-keep', room)]),
      eve5.client.publish({ topicName: topics.announcements, qos: 1, payload: '{}' }),
      eve5.client.publish({ topicName: topics.roomSend(room), qos: 1, payload: '{"body":{}}' }),
      // Dropped by IoT (3.1.1); the SDK reconnects on its own.
      nextEvent(eve3.connection, 'interrupt').then(() => eve3.close()),
      eve3.connection.publish(topics.announcements, '{}', mqtt.QoS.AtMostOnce),
    ]);
    const [, outcomes] = await Promise.all([conversation, trouble]);
    expect(outcomes.slice(0, 8)).toEqual(KINDS.flatMap(() => [expect.any(ConnectRefused), expect.any(ConnectRefused)]));
    expect(outcomes.slice(8, 12)).toEqual([
      [NOT_AUTHORIZED, NOT_AUTHORIZED],
      [0x80],
      expect.objectContaining({ reasonCode: NOT_AUTHORIZED }),
      expect.objectContaining({ reasonCode: NOT_AUTHORIZED }),
    ]);

    // Every chat reached both MQTT members once, in order, with the seq the sender was acknowledged.
    const seqs = acks.map((a) => a.seq);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 0) + i));
    for (const member of members) {
      const last = acks[acks.length - 1] as Ack;
      await member.nextOnRoom(room, (f) => f.type === 'chat' && f.id === last.id);
      const chats = member.received.filter((m) => m.frame.type === 'chat').map((m) => (m.frame as Chat).seq);
      expect(chats).toEqual(seqs);
    }

    // And it admits new clients of every kind.
    for (const kind of KINDS) {
      const fresh = await device(kind, { sub: 'nora-keep' });
      expect(await fresh.request({ action: 'ping', id: kind.tag })).toMatchObject({ type: 'pong', ref: kind.tag });
    }
  });
});
