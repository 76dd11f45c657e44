/**
 * Issue 8, point 1: bad input, property-based. Random and adversarial frames on every WebSocket route, payloads
 * and topic names on the MQTT channel, and random publisher calls, against one running emulator (the real
 * handlers behind emulated API Gateway, IoT Core, DynamoDB and SQS).
 *
 * Every input must end in success or a typed refusal — an error frame whose code is one of ERROR_CODES and the
 * one docs/PROTOCOL.md gives (the oracle in ./support/spec.ts is written from the page, not from the validator),
 * a documented close code for frame-level violations, an MQTT refusal as IoT gives it, or a typed publisher error
 * — and never a crash, an unhandled rejection, a hung connection or a partial write. After every answer the
 * connection must still work (a ping gets its pong), and canary clients in another room chat over WebSocket and
 * MQTT throughout. At the end: no prototype polluted, no unhandled rejection, no error logged by the emulator,
 * and every room's history holds exactly the messages that were acknowledged.
 *
 * Frame-level behaviour checked here (and what AWS does):
 * - a binary frame closes with 1003: AWS documents it (API Gateway "Binary media types for WebSocket APIs":
 *   "API Gateway rejects it and disconnects the client with code 1003");
 * - a text frame that is not UTF-8 closes with 1007 (Invalid frame payload data). AWS does not document this
 *   case; RFC 6455 §8.1 requires the endpoint to fail the connection, and the emulator (`ws`) closes with 1007;
 * - a frame over 32 KB, or a message over 128 KB (all its fragments), closes with 1009, as PROTOCOL.md says.
 *
 * Replay a failure with `VIBA_FUZZ_SEED=<seed>` (the seed is printed with it); `VIBA_FUZZ_SHRINK=1` also shrinks
 * the counterexample (slow: every shrink step talks to the emulator).
 */
import { randomBytes } from 'node:crypto';
import { createDynamoDbStore, mqttConnectionId } from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import {
  APIGW_LIMITS,
  clientIdFor,
  type ErrorCode,
  IOT_LIMITS,
  isErrorCode,
  LIMITS,
  RealtimeError,
  type ServerFrame,
  topics,
} from '@viba-realtime/protocol';
import { createPublisher, fetchLocalPublisherConfig, type Publisher } from '@viba-realtime/publisher';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttPeer } from '../support/mqtt-peer.js';
import { TestClient } from '../support/ws-client.js';
import {
  adversarialClientId,
  adversarialGroup,
  adversarialRoom,
  adversarialUser,
  anyJson,
  arbitraryFrameText,
  bodyNearDepth,
  bodyNearLimit,
  bodyOfBytes,
  brokenFrame,
  deepValue,
  nestedText,
  protoPollution,
  toJsonText,
  validClientId,
  validRoom,
  validUser,
  wildString,
  wrongType,
} from './support/arbitraries.js';
import { FuzzSocket, RawMqtt, type Said, within } from './support/fuzz-socket.js';
import {
  bodyCodes,
  frameCodes,
  iotTopicProblem,
  isClientId,
  isGroup,
  isObject,
  isRoom,
  isUser,
  SERVER_TYPES,
  SUCCESS_TYPE,
} from './support/spec.js';

// ---- run settings -------------------------------------------------------------------------------------------

/** One seed for every property, so a run is reproducible; override with VIBA_FUZZ_SEED to explore. */
const SEED = Number(process.env.VIBA_FUZZ_SEED || 20_260_801);
const SHRINK = process.env.VIBA_FUZZ_SHRINK === '1';

/** Inputs per property, sized to keep the file well under a minute on 2 cores. */
const RUNS = {
  wsArbitrary: 250,
  wsBroken: 300,
  wsRooms: 80,
  wsBodyLimit: 60,
  wsBinary: 20,
  wsUtf8: 30,
  mqttRequests: 150,
  mqttRoomSend: 100,
  mqttTopics: 80,
  mqttRaw: 100,
  publisher: 300,
  publisherNames: 150,
} as const;

/** Inputs each property actually ran (reported at the end; docs/RELIABILITY.md quotes the totals). */
const tried: Record<string, number> = {};
/** How the checked answers came out: frame type, or `error:{code}`. */
const outcomes: Record<string, number> = {};

async function property<T>(
  name: string,
  arbitrary: fc.Arbitrary<T>,
  numRuns: number,
  run: (input: T) => Promise<void>,
) {
  let count = 0;
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (input) => {
        count++;
        await run(input);
      }),
      { seed: SEED, numRuns, endOnFailure: !SHRINK },
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`property "${name}" failed — replay with VIBA_FUZZ_SEED=${SEED}\n${message}`, { cause: error });
  }
  tried[name] = count;
}

const PROPERTY_TIMEOUT = 60_000;

// ---- shared state -------------------------------------------------------------------------------------------

let emulator: Emulator;
let publisher: Publisher;
let store: ReturnType<typeof createDynamoDbStore>;
let canary: Canary;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
/** The emulator's error-level log lines: a route that threw, an IoT rule whose Lambda failed, a broker bug. */
const emulatorErrors: string[] = [];
const prototypeKeys = () =>
  [Object.prototype, Array.prototype, Function.prototype, String.prototype].map((p) =>
    Object.getOwnPropertyNames(p).sort().join(','),
  );
const prototypeKeysBefore = prototypeKeys();

const sockets: FuzzSocket[] = [];
const mqttSessions: MqttSession[] = [];
const peers: (TestClient | MqttPeer)[] = [];

/** Every acknowledged message per room: seq -> what was sent. The history must hold exactly these. */
const acked = new Map<string, Map<number, { id: string; from: string; ref: string; body: string }>>();
/** The ack of each (room, sender, client id): a resend must answer the same one, marked duplicate. */
const sendAcks = new Map<string, { seq: number; id: string }>();
/** The announcement id of each (admin, client id): a repeat must answer the same one, marked duplicate. */
const announced = new Map<string, string>();

function recordAck(room: string, seq: number, message: { id: string; from: string; ref: string; body: string }) {
  let messages = acked.get(room);
  if (!messages) {
    messages = new Map();
    acked.set(room, messages);
  }
  expect(messages.has(seq), `seq ${seq} of room ${room} acknowledged twice`).toBe(false);
  messages.set(seq, message);
}

function token(sub: string, groups: string[] = []) {
  return emulator.issuer.mint({ sub, groups, tokenUse: 'id', ttlSeconds: 3600 });
}

let counter = 0;
const nextId = (prefix: string) => `${prefix}-${++counter}`;

function parseFrame(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the answer is not JSON: ${text.slice(0, 200)}`);
  }
  if (!isObject(value)) throw new Error(`the answer is not a JSON object: ${text.slice(0, 200)}`);
  return value;
}

/** What a server makes of a text: not JSON, or the parsed value. */
const NOT_JSON = Symbol('not JSON');
function parseInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

// ---- the oracle, with the state it depends on ---------------------------------------------------------------

/** Who sends: the user, the connection, whether the user is an admin. */
interface Who {
  sub: string;
  connectionId: string;
  admin: boolean;
}

/** What the answer must be: one of these error codes, or a frame of this type passing `check`. */
type Expected = { codes: ErrorCode[] } | { type: string; check?: (answer: Record<string, unknown>) => void };

/** The answer docs/PROTOCOL.md gives a request, from the oracle and the store's state just before it is sent. */
async function expectedAnswer(value: unknown, who: Who): Promise<Expected> {
  if (value === NOT_JSON) return { codes: ['bad_request'] };
  const codes = frameCodes(value);
  if (codes.length > 0) return { codes };
  const v = value as Record<string, unknown>;
  const action = v.action as string;
  const room = v.room as string;
  const type = SUCCESS_TYPE[action] as string;
  switch (action) {
    case 'join': {
      const [record, rooms, member] = await Promise.all([
        store.getRoom(room),
        store.listConnectionRooms(who.connectionId),
        store.isMember(room, who.sub),
      ]);
      const refusals: ErrorCode[] = [];
      if (!rooms.includes(room) && rooms.length >= LIMITS.maxRoomsPerConnection) refusals.push('too_many_rooms');
      if (record?.closed) refusals.push('room_closed');
      else if (record?.visibility === 'private' && record.owner !== who.sub && !member) refusals.push('forbidden');
      if (refusals.length > 0) return { codes: refusals };
      const asked = isObject(v.body) ? v.body.visibility : undefined;
      const visibility = record?.visibility ?? asked ?? 'public';
      return {
        type,
        check: (a) => expect(a).toMatchObject({ action, room, visibility, seq: record?.lastSeq ?? 0 }),
      };
    }
    case 'leave':
      return { type, check: (a) => expect(a).toMatchObject({ action, room }) };
    case 'send': {
      if (!(await store.isSubscribed(room, who.connectionId))) {
        return { codes: (await store.getRoom(room))?.closed ? ['room_closed'] : ['not_joined'] };
      }
      const key = `${room}\u0000${who.sub}\u0000${v.id}`;
      const previous = sendAcks.get(key);
      return {
        type,
        check: (a) => {
          expect(a).toMatchObject({ action, room, ref: v.id });
          if (previous) {
            expect(a).toMatchObject({ duplicate: true, seq: previous.seq, id: previous.id });
            return;
          }
          expect(a.duplicate).toBeUndefined();
          expect(Number.isInteger(a.seq) && typeof a.id === 'string').toBe(true);
          sendAcks.set(key, { seq: a.seq as number, id: a.id as string });
          recordAck(room, a.seq as number, {
            id: a.id as string,
            from: who.sub,
            ref: v.id as string,
            body: JSON.stringify(v.body),
          });
        },
      };
    }
    case 'history': {
      const record = await store.getRoom(room);
      if (record === undefined) return { type, check: (a) => expect(a).toMatchObject({ room, messages: [] }) };
      if (record.closed) return { codes: ['room_closed'] };
      if (record.visibility === 'private' && record.owner !== who.sub && !(await store.isMember(room, who.sub))) {
        return { codes: ['forbidden'] };
      }
      return { type, check: (a) => checkHistoryPage(room, a) };
    }
    case 'announce': {
      if (!who.admin) return { codes: ['forbidden'] };
      const key = `${who.sub}:${v.id}`;
      const previous = announced.get(key);
      return {
        type,
        check: (a) => {
          expect(a).toMatchObject({ action, ref: v.id });
          if (previous) {
            expect(a, `announce ${key} was made before`).toMatchObject({ duplicate: true, id: previous });
            return;
          }
          expect(a.duplicate, `announce ${key} is new, not a duplicate`).toBeUndefined();
          announced.set(key, a.id as string);
        },
      };
    }
    case 'ping':
      return { type };
    case 'inbox':
      return {
        type,
        check: (a) => expect(Array.isArray(a.notifications) && Number.isInteger(a.unread)).toBe(true),
      };
    case 'markRead':
    case 'markAllRead':
      return { type, check: (a) => expect(a.action === action && Number.isInteger(a.unread)).toBe(true) };
    case 'announcements':
      return { type, check: (a) => expect(Array.isArray(a.announcements)).toBe(true) };
  }
  throw new Error(`no expectation for ${action}`);
}

function checkHistoryPage(room: string, page: Record<string, unknown>) {
  expect(page.room).toBe(room);
  const messages = page.messages as Record<string, unknown>[];
  expect(Array.isArray(messages)).toBe(true);
  expect(messages.length).toBeLessThanOrEqual(LIMITS.historyPageMax);
  const sent = acked.get(room);
  let last = 0;
  for (const m of messages) {
    expect(m).toMatchObject({ type: 'chat', room });
    expect(m.seq as number).toBeGreaterThan(last);
    last = m.seq as number;
    // Nothing half-written: a stored message is one that was acknowledged, with the body that was sent.
    const original = sent?.get(m.seq as number);
    expect(original, `history of ${room} holds seq ${m.seq}, never acknowledged`).toBeDefined();
    expect(JSON.stringify(m.body)).toBe(original?.body);
  }
}

/** The ref an answer must carry: the request's `id` when it is a valid client id, else none. */
function refOf(value: unknown): string | undefined {
  return isObject(value) && isClientId(value.id) ? value.id : undefined;
}

/** Checks an answer against what was expected; always that it is a typed frame of ours. */
function verify(expected: Expected, answerText: string, value: unknown) {
  const answer = parseFrame(answerText);
  const outcome = answer.type === 'error' ? `error:${String(answer.code)}` : String(answer.type);
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  // Typed: one of our frame types, never API Gateway's `{"message":"Internal server error"}`.
  expect(SERVER_TYPES.has(answer.type as string), `untyped answer ${answerText.slice(0, 200)}`).toBe(true);
  expect(answer.ref).toBe(refOf(value));
  if ('codes' in expected) {
    expect(answer.type, `expected one of ${expected.codes} for ${describeInput(value)}`).toBe('error');
    expect(isErrorCode(answer.code)).toBe(true);
    expect(expected.codes, `answer ${answerText.slice(0, 300)} to ${describeInput(value)}`).toContain(answer.code);
    expect(typeof answer.message).toBe('string');
    // An error never echoes the input at length (ids and names are cut to 64 characters).
    expect(answerText.length).toBeLessThan(2048);
    return;
  }
  expect(answer.type, `answer ${answerText.slice(0, 300)} to ${describeInput(value)}`).toBe(expected.type);
  expected.check?.(answer);
}

function describeInput(value: unknown): string {
  if (value === NOT_JSON) return 'a frame that is not JSON';
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 300);
  } catch {
    return String(value).slice(0, 300);
  }
}

// ---- WebSocket sessions -------------------------------------------------------------------------------------

/** A fuzzing WebSocket connection that joined `home` (where its valid sends go). */
class WsSession {
  socket!: FuzzSocket;
  who!: Who;

  constructor(
    readonly sub: string,
    readonly groups: string[],
    readonly home: string,
  ) {}

  async open(): Promise<this> {
    const before = new Set(emulator.gateway.connectionIds());
    this.socket = await FuzzSocket.connect(emulator.url, token(this.sub, this.groups));
    sockets.push(this.socket);
    const connectionId = emulator.gateway.connectionIds().find((c) => !before.has(c));
    if (!connectionId) throw new Error('no new connection id');
    this.who = { sub: this.sub, connectionId, admin: this.groups.includes('admin') };
    const joined = await this.socket.exchange(JSON.stringify({ action: 'join', room: this.home, id: 'home' }));
    expect(joined.kind === 'frame' && parseFrame(joined.text)).toMatchObject({ type: 'ack', room: this.home });
    return this;
  }

  /** Sends one frame and checks its answer against the oracle, then that the connection still works. */
  async check(text: string): Promise<void> {
    // What the gateway receives: `ws` encodes the string as UTF-8, lone surrogates as U+FFFD.
    const received = Buffer.from(text).toString();
    if (Buffer.byteLength(text) > APIGW_LIMITS.maxFrameBytes) {
      const said = await this.socket.exchange(text);
      expect(said).toMatchObject({ kind: 'closed', code: 1009 });
      await this.open();
      return;
    }
    const value = parseInput(received);
    const expected = await expectedAnswer(value, this.who);
    const said = await this.socket.exchange(text);
    if (said.kind === 'closed') throw new Error(`closed ${said.code} '${said.reason}' after ${text.slice(0, 200)}`);
    verify(expected, said.text, value);
    const answer = parseFrame(said.text);
    // Keep under the rooms-per-connection limit: leave what the fuzz joined.
    if (answer.type === 'ack' && answer.action === 'join' && answer.room !== this.home) {
      await this.request({ action: 'leave', room: answer.room, id: nextId('leave') }, 'ack');
    }
    await this.alive();
  }

  async request(frame: Record<string, unknown>, type: string): Promise<Record<string, unknown>> {
    const said = await this.socket.exchange(JSON.stringify(frame));
    if (said.kind === 'closed') throw new Error(`closed ${said.code} on ${JSON.stringify(frame)}`);
    const answer = parseFrame(said.text);
    expect(answer, `answer to ${JSON.stringify(frame).slice(0, 200)}`).toMatchObject({ type });
    return answer;
  }

  /** The connection still works: a ping gets its pong. */
  async alive(): Promise<void> {
    const id = nextId('alive');
    expect(await this.request({ action: 'ping', id }, 'pong')).toMatchObject({ ref: id });
  }
}

// ---- MQTT sessions ------------------------------------------------------------------------------------------

type MqttOutcome =
  | { kind: 'answer'; text: string }
  | { kind: 'refused'; reasonCode: number }
  | { kind: 'closed'; reasonCode: number | undefined };

/** A fuzzing MQTT 5 connection; requests carry correlation data, so every answer is matched exactly. */
class MqttSession {
  client!: MqttClient;
  who!: Who;
  closed = false;
  disconnectCode: number | undefined;
  readonly roomFrames: { topic: string; text: string }[] = [];
  memberRooms = new Set<string>();
  #answers = new Map<string, (text: string) => void>();
  #onClose: (() => void)[] = [];

  constructor(
    readonly sub: string,
    readonly suffix: string,
  ) {}

  get clientId(): string {
    return clientIdFor(this.sub, this.suffix);
  }

  async open(): Promise<this> {
    this.closed = false;
    this.disconnectCode = undefined;
    // What the IoT policy of this connection grants `rt/rooms/{room}/send` for: the rooms the user is a member of
    // when it connects (the custom authorizer reads them then).
    this.memberRooms = new Set(await store.listUserRooms(this.sub));
    this.client = await mqtt.connectAsync(emulator.mqttUrl as string, {
      clientId: this.clientId,
      username: 'any',
      password: token(this.sub),
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
    });
    const client = this.client;
    client.on('error', () => {});
    client.on('disconnect', (packet) => {
      this.disconnectCode = packet.reasonCode ?? 0;
    });
    client.on('close', () => {
      if (client !== this.client) return;
      this.closed = true;
      for (const wake of this.#onClose.splice(0)) wake();
    });
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString();
      if (topic === topics.responses(this.sub)) {
        const correlation = packet.properties?.correlationData;
        const key = Buffer.isBuffer(correlation) ? correlation.toString('hex') : '';
        this.#answers.get(key)?.(text);
        this.#answers.delete(key);
      } else {
        this.roomFrames.push({ topic, text });
      }
    });
    const granted = await client.subscribeAsync([topics.responses(this.sub), topics.userRoomsFilter(this.sub)], {
      qos: 1,
    });
    for (const grant of granted) expect(grant.qos).toBe(1);
    this.who = { sub: this.sub, connectionId: mqttConnectionId(this.clientId), admin: false };
    mqttSessions.push(this);
    return this;
  }

  #whenClosed(): Promise<'closed'> {
    if (this.closed) return Promise.resolve('closed');
    return new Promise((resolve) => this.#onClose.push(() => resolve('closed')));
  }

  /** Publishes QoS 1 with a response topic and fresh correlation data; resolves with the refusal or the answer. */
  async publish(
    topic: string,
    payload: Buffer | string,
    options: { responseTopic?: string; userProperties?: Record<string, string> } = {},
  ): Promise<MqttOutcome> {
    if (this.closed) throw new Error('publish on a closed session');
    const correlation = randomBytes(8);
    const key = correlation.toString('hex');
    const answered = new Promise<string>((resolve) => this.#answers.set(key, resolve));
    const published = this.client
      .publishAsync(topic, payload as Buffer, {
        qos: 1,
        properties: {
          responseTopic: options.responseTopic ?? topics.responses(this.sub),
          correlationData: correlation,
          ...(options.userProperties ? { userProperties: options.userProperties } : {}),
        },
      })
      .then(
        () => 'acked' as const,
        (error: unknown) => error,
      );
    const first = await within(Promise.race([published, this.#whenClosed()]), 5_000, `PUBACK for ${topic}`);
    if (first !== 'acked') {
      const code = (first as { code?: unknown }).code;
      if (typeof code === 'number' && !this.closed) return { kind: 'refused', reasonCode: code };
      await within(this.#whenClosed(), 5_000, `close after a failed publish to ${topic}: ${String(first)}`);
      return { kind: 'closed', reasonCode: this.disconnectCode };
    }
    const second = await within(Promise.race([answered, this.#whenClosed()]), 5_000, `answer on ${topic}`);
    if (second === 'closed' && this.closed) return { kind: 'closed', reasonCode: this.disconnectCode };
    return { kind: 'answer', text: second };
  }

  /** A request on the user's requests topic, answered as expected. */
  async request(frame: Record<string, unknown>, type: string): Promise<Record<string, unknown>> {
    const outcome = await this.publish(topics.requests(this.sub), JSON.stringify(frame));
    if (outcome.kind !== 'answer') throw new Error(`${JSON.stringify(frame)}: ${JSON.stringify(outcome)}`);
    const answer = parseFrame(outcome.text);
    expect(answer, `answer to ${JSON.stringify(frame).slice(0, 200)}`).toMatchObject({ type });
    return answer;
  }

  async alive(): Promise<void> {
    const id = nextId('mqtt-alive');
    expect(await this.request({ action: 'ping', id }, 'pong')).toMatchObject({ ref: id });
  }

  /** Sends a payload to a topic whose answer the oracle decides (requests or a room's send topic). */
  async check(topic: string, payload: Buffer, value: unknown, responseTopic?: string): Promise<void> {
    const foreignResponseTopic = responseTopic !== undefined && responseTopic !== topics.responses(this.sub);
    const expected: Expected = foreignResponseTopic
      ? { codes: ['bad_request'] }
      : await expectedAnswer(value, this.who);
    const outcome = await this.publish(topic, payload, responseTopic === undefined ? {} : { responseTopic });
    if (outcome.kind !== 'answer') throw new Error(`no answer to ${describeInput(value)}: ${JSON.stringify(outcome)}`);
    verify(expected, outcome.text, value);
    const answer = parseFrame(outcome.text);
    if (answer.type === 'ack' && answer.action === 'join' && typeof answer.room === 'string') {
      await this.request({ action: 'leave', room: answer.room, id: nextId('leave') }, 'ack');
    }
    // No ping after each input, unlike WebSocket (an MQTT round trip costs ~50 ms through the rule, the Lambda and
    // the data plane): the next input's answer shows the connection still works, and each property ends with
    // a ping.
  }

  async close(): Promise<void> {
    if (!this.closed) await this.client.endAsync().catch(() => {});
  }
}

// ---- the canary ---------------------------------------------------------------------------------------------

const CANARY_ROOM = 'canary-zz9-plural-z-alpha';

/**
 * Clients that are not under attack: `canary-a` sends to a room of its own every 20 ms and waits for the ack;
 * `canary-b` (WebSocket) and `canary-m` (MQTT) must receive every message, and the MQTT one answers pings. Any
 * miss or slow answer (5 s) is recorded and fails the suite at the end.
 */
class Canary {
  readonly errors: string[] = [];
  /** Each acknowledged canary message. */
  readonly acks: { seq: number; id: string; n: number }[] = [];
  rounds = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;

  private constructor(
    readonly a: TestClient,
    readonly b: TestClient,
    readonly m: MqttPeer,
  ) {}

  static async start(): Promise<Canary> {
    const a = await TestClient.connect(emulator.url, token('canary-a'), { name: 'canary-a' });
    const b = await TestClient.connect(emulator.url, token('canary-b'), { name: 'canary-b' });
    const m = await MqttPeer.connect(emulator.mqttUrl as string, {
      sub: 'canary-m',
      suffix: 'm',
      token: token('canary-m'),
      protocolVersion: 5,
    });
    peers.push(a, b, m);
    for (const client of [a, b, m]) {
      expect(await client.request({ action: 'join', room: CANARY_ROOM })).toMatchObject({ type: 'ack' });
    }
    const canary = new Canary(a, b, m);
    canary.#loop = canary.#run();
    return canary;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#round();
      } catch (error) {
        this.errors.push(error instanceof Error ? error.message : String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #round(): Promise<void> {
    const n = ++this.rounds;
    const ack = await within(this.a.request({ action: 'send', room: CANARY_ROOM, body: { n } }), 5_000, 'canary ack');
    if (ack.type !== 'ack' || ack.action !== 'send') throw new Error(`canary send answered ${JSON.stringify(ack)}`);
    const seq = ack.seq as number;
    this.acks.push({ seq, id: ack.id as string, n });
    const isIt = (f: ServerFrame) => f.type === 'chat' && f.seq === seq;
    await within(
      Promise.all([this.b.next(isIt), this.m.nextOnRoom(CANARY_ROOM, isIt)]),
      5_000,
      `canary delivery of seq ${seq}`,
    );
    if (n % 5 === 0) {
      expect(await within(this.m.request({ action: 'ping' }), 5_000, 'canary MQTT ping')).toMatchObject({
        type: 'pong',
      });
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

// ---- setup and teardown ---------------------------------------------------------------------------------------

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  emulator = await startEmulator({
    port: 0,
    logLevel: 'error',
    log: (line) => emulatorErrors.push(line),
  });
  store = createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl));
  canary = await Canary.start();
});

afterAll(async () => {
  await canary?.stop();
  await Promise.all(sockets.map((s) => s.close()));
  await Promise.all(mqttSessions.map((s) => s.close()));
  await Promise.all(peers.map((p) => p.close()));
  publisher?.close();
  store?.destroy();
  await emulator?.close();
  process.off('unhandledRejection', onUnhandled);
  const total = Object.values(tried).reduce((n, k) => n + k, 0);
  console.log(`bad-input: seed ${SEED}, ${total} inputs: ${JSON.stringify(tried)}`);
  console.log(`bad-input: answers ${JSON.stringify(outcomes)}; canary rounds ${canary?.rounds}`);
});

// ---- WebSocket ----------------------------------------------------------------------------------------------

describe('WebSocket frames', () => {
  const HOME = 'fuzz-ws-home';
  let session: WsSession;

  beforeAll(async () => {
    // An admin, so `announce` runs to the end (and its idempotency is checked) instead of stopping at forbidden.
    session = await new WsSession('fuzz-ws', ['admin'], HOME).open();
  });

  it(
    'answers arbitrary JSON, strings and junk with a typed frame and keeps the connection',
    async () => {
      await property('ws: arbitrary frames', arbitraryFrameText, RUNS.wsArbitrary, (text) => session.check(text));
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'answers every action with broken fields exactly as PROTOCOL.md says',
    async () => {
      await property('ws: broken fields per action', brokenFrame(HOME), RUNS.wsBroken, (text) => session.check(text));
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'takes adversarial room names on every room action; valid ones work end to end, MQTT members included',
    async () => {
      const watcher = await new MqttSession('fuzz-room-watcher', 'w').open();
      await property('ws: room names', adversarialRoom, RUNS.wsRooms, async (room) => {
        await session.check(JSON.stringify({ action: 'join', room, id: nextId('j') }));
        if (!isRoom(room)) {
          for (const action of ['send', 'history', 'leave']) {
            await session.check(JSON.stringify({ action, room, id: nextId('r'), body: { x: 1 } }));
          }
          return;
        }
        // Valid: the room works end to end, for a WebSocket sender and an MQTT member (if it may enter).
        const record = await store.getRoom(room);
        if (record?.closed || record?.visibility === 'private') return;
        await session.request({ action: 'join', room, id: nextId('j') }, 'ack');
        await watcher.request({ action: 'join', room, id: nextId('j') }, 'ack');
        const text = `to ${room.slice(0, 20)}`;
        await session.check(JSON.stringify({ action: 'send', room, id: nextId('s'), body: { text } }));
        const topic = topics.userRoom(watcher.sub, room);
        await within(
          (async () => {
            while (!watcher.roomFrames.some((f) => f.topic === topic && f.text.includes(JSON.stringify(text)))) {
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          })(),
          5_000,
          `MQTT delivery in room ${room}`,
        );
        await session.check(JSON.stringify({ action: 'history', room, id: nextId('h') }));
        await session.check(JSON.stringify({ action: 'leave', room, id: nextId('l') }));
        await watcher.request({ action: 'leave', room, id: nextId('l') }, 'ack');
      });
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'takes bodies at exactly maxBodyBytes and maxBodyDepth and refuses one past, on send and announce',
    async () => {
      const body = fc.oneof(
        bodyNearLimit.map(({ bytes, body }) => {
          expect(Buffer.byteLength(JSON.stringify(body))).toBe(bytes);
          return body;
        }),
        bodyNearDepth,
      );
      const arbitrary = fc.tuple(body, fc.constantFrom('send', 'announce'));
      await property('ws: bodies at the limits', arbitrary, RUNS.wsBodyLimit, async ([body, action]) => {
        await session.check(JSON.stringify({ action, room: HOME, id: nextId('big'), body }));
      });
      // The deepest body allowed, and one level deeper.
      for (const levels of [LIMITS.maxBodyDepth, LIMITS.maxBodyDepth + 1]) {
        const text = `{"action":"send","room":"${HOME}","id":"${nextId('deep')}","body":${nestedText(levels, 'object')}}`;
        await session.check(text);
      }
    },
    PROPERTY_TIMEOUT,
  );

  it('answers a frame of exactly 32 KB and closes one byte past it with 1009', async () => {
    const ping = (bytes: number) => {
      const id = nextId('frame');
      const head = `{"action":"ping","id":"${id}","pad":"`;
      return { id, text: `${head}${'x'.repeat(bytes - head.length - 2)}"}` };
    };
    const fits = ping(APIGW_LIMITS.maxFrameBytes);
    expect(Buffer.byteLength(fits.text)).toBe(APIGW_LIMITS.maxFrameBytes);
    const said = await session.socket.exchange(fits.text);
    expect(said.kind === 'frame' && parseFrame(said.text)).toMatchObject({ type: 'pong', ref: fits.id });
    await session.check(ping(APIGW_LIMITS.maxFrameBytes + 1).text); // expects 1009, then reconnects
    await session.alive();
  });

  it('answers a message of exactly 128 KB in 32 KB fragments and closes one byte past it with 1009', async () => {
    const fragmented = async (s: WsSession, bytes: number): Promise<Said> => {
      const id = nextId('message');
      const head = `{"action":"ping","id":"${id}","pad":"`;
      const text = `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
      expect(Buffer.byteLength(text)).toBe(bytes);
      const parts = [];
      for (let at = 0; at < text.length; at += APIGW_LIMITS.maxFrameBytes) {
        parts.push(text.slice(at, at + APIGW_LIMITS.maxFrameBytes));
      }
      parts.forEach((part, i) => {
        s.socket.send(part, { fin: i === parts.length - 1 });
      });
      return s.socket.nextAnswer(5_000, `${bytes}-byte message`);
    };
    const fits = await fragmented(session, APIGW_LIMITS.maxMessageBytes);
    expect(fits.kind === 'frame' && parseFrame(fits.text)).toMatchObject({ type: 'pong' });
    const over = await fragmented(session, APIGW_LIMITS.maxMessageBytes + 1);
    expect(over).toMatchObject({ kind: 'closed', code: 1009 });
    await session.open();
    await session.alive();
  });

  it(
    'closes on a binary frame with 1003 and runs $disconnect, as API Gateway does',
    async () => {
      const bytes = fc.uint8Array({ minLength: 0, maxLength: 2048 });
      await property('ws: binary frames', bytes, RUNS.wsBinary, async (data) => {
        const s = await new WsSession('fuzz-binary', [], 'fuzz-binary-home').open();
        const said = await s.socket.exchange(Buffer.from(data), { binary: true });
        expect(said).toMatchObject({ kind: 'closed', code: 1003 });
      });
      await emulator.gateway.settled();
      expect(await store.listUserConnections('fuzz-binary')).toEqual([]);
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'closes on a text frame that is not UTF-8 with 1007 and answers one that is',
    async () => {
      // Sequences UTF-8 forbids: stray continuation bytes, overlong forms, surrogates, past U+10FFFF, cut short.
      const invalid = fc.constantFrom(
        [0x80],
        [0xbf],
        [0xc0, 0xaf],
        [0xe0, 0x80, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xfe],
        [0xff],
        [0xe2, 0x82],
      );
      const arbitrary = fc.tuple(
        fc.uint8Array({ maxLength: 64 }),
        fc.option(invalid),
        fc.uint8Array({ maxLength: 64 }),
      );
      const decoder = new TextDecoder('utf-8', { fatal: true });
      await property('ws: invalid UTF-8', arbitrary, RUNS.wsUtf8, async ([head, bad, tail]) => {
        const data = Buffer.concat([Buffer.from(head), Buffer.from(bad ?? []), Buffer.from(tail)]);
        let valid = true;
        try {
          decoder.decode(data);
        } catch {
          valid = false;
        }
        const s = await new WsSession('fuzz-utf8', [], 'fuzz-utf8-home').open();
        if (valid) {
          await s.check(data.toString());
          await s.socket.close();
          return;
        }
        const said = await s.socket.exchange(data, { binary: false });
        expect(said).toMatchObject({ kind: 'closed', code: 1007 });
      });
      await emulator.gateway.settled();
      expect(await store.listUserConnections('fuzz-utf8')).toEqual([]);
    },
    PROPERTY_TIMEOUT,
  );
});

// ---- MQTT ---------------------------------------------------------------------------------------------------

describe('MQTT topics', () => {
  const HOME = 'fuzz-mqtt-home';
  let session: MqttSession;

  beforeAll(async () => {
    // A member before connecting, so the policy grants `rt/rooms/{HOME}/send`.
    await publisher.createRoom(HOME, { visibility: 'public', members: ['fuzz-mqtt'] });
    session = await new MqttSession('fuzz-mqtt', 'f').open();
    await session.request({ action: 'join', room: HOME, id: 'home' }, 'ack');
  });

  const reopen = async () => {
    if (session.closed) {
      session = await new MqttSession('fuzz-mqtt', 'f').open();
      await session.request({ action: 'join', room: HOME, id: nextId('home') }, 'ack');
    }
  };

  it(
    'answers any payload on the requests topic on the responses topic, typed',
    async () => {
      const payload = fc.oneof(
        { weight: 4, arbitrary: arbitraryFrameText.map((t) => Buffer.from(t)) },
        { weight: 4, arbitrary: brokenFrame(HOME).map((t) => Buffer.from(t)) },
        { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) },
        // Huge: up to 120 KB, nested 30,000 to 60,000 deep (past any frame a WebSocket could carry).
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.constantFrom(30_000, 60_000), fc.constantFrom('send', 'announce', 'join', 'history'))
            .map(([levels, action]) =>
              Buffer.from(`{"action":"${action}","room":"${HOME}","id":"deep-${levels}","body":${nestedText(levels)}}`),
            ),
        },
      );
      const responseTopic = fc.option(
        fc.oneof(
          fc.constantFrom('rt/users/fuzz-mqtt/responses/x', 'rt/users/other/responses', 'rt/announcements', '$aws/x'),
          wildString(40).filter((t) => t.length > 0 && !t.includes('\u0000')),
        ),
        { freq: 4 },
      );
      await property(
        'mqtt: requests topic payloads',
        fc.tuple(payload, responseTopic),
        RUNS.mqttRequests,
        async ([bytes, replyTo]) => {
          await session.check(
            topics.requests(session.sub),
            bytes,
            parseInput(bytes.toString('utf8')),
            replyTo === null ? undefined : replyTo,
          );
        },
      );
      await session.alive();
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'answers any payload on a room send topic, and stores only what it acknowledges',
    async () => {
      const shaped = fc
        .record(
          {
            id: fc.oneof(validClientId, adversarialClientId, anyJson),
            body: fc.oneof(
              fc.dictionary(wildString(8), anyJson, { maxKeys: 4 }),
              bodyNearDepth,
              wrongType('object'),
              deepValue,
              protoPollution,
              bodyNearLimit.map((b) => b.body),
            ),
            action: fc.constantFrom('join', 'history', 'send'),
            room: adversarialRoom,
          },
          { requiredKeys: [] },
        )
        .map((v) => toJsonText(v));
      const payload = fc.oneof(
        { weight: 4, arbitrary: shaped.map((t) => Buffer.from(t)) },
        { weight: 1, arbitrary: arbitraryFrameText.map((t) => Buffer.from(t)) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)) },
      );
      await property('mqtt: room send payloads', payload, RUNS.mqttRoomSend, async (bytes) => {
        const value = parseInput(bytes.toString('utf8'));
        // The topic names the room and implies the action; only `id` and `body` come from the payload.
        const frame =
          value !== NOT_JSON && isObject(value)
            ? { action: 'send', room: HOME, id: value.id, body: value.body }
            : value;
        await session.check(topics.roomSend(HOME), bytes, frame);
      });
      await session.alive();
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'refuses adversarial topic names as IoT does: invalid ones disconnect, foreign ones get PUBACK 0x87',
    async () => {
      const sub = 'fuzz-mqtt';
      const topic = fc.oneof(
        fc.constantFrom(
          topics.requests(sub),
          topics.roomSend(HOME),
          `rt/users/${sub}/requests/..`,
          `rt/users/${sub}/+`,
          `rt/users/${sub}/#`,
          'rt/users/+/requests',
          '#',
          '+',
          '/',
          '//',
          'rt/rooms/../send',
          'rt/rooms/+/send',
          `rt/rooms/${HOME}/send/x`,
          `rt/users/${sub}/requests/a/b/c/d`,
          `${'a/'.repeat(8)}x`,
          `${'a/'.repeat(7)}x`,
          'x'.repeat(IOT_LIMITS.maxTopicBytes),
          'x'.repeat(IOT_LIMITS.maxTopicBytes + 1),
          `rt/rooms/${'é'.repeat(120)}/send`,
          topics.responses(sub),
          topics.inbox(sub),
          topics.requests('other-user'),
          topics.requests('canary-m'),
          'rt/users/__proto__/requests',
          topics.roomSend(CANARY_ROOM),
          topics.roomSend('a'.repeat(65)),
          topics.announcements,
          '$aws/events/presence/disconnected/canary-m.m',
          '$aws/events/subscriptions/subscribed/canary-m.m',
          '$aws/things/x/shadow/update',
          '$aws/rules/r/x',
          `$aws/rules/r/${'x'.repeat(300)}`,
          '$SYS/broker',
          'rt\u0000x',
          'é/日本語',
          '\ud800',
        ),
        wildString(300).filter((t) => t.length > 0),
        // Not empty: MQTT.js never sends an MQTT 5 PUBLISH with an empty topic and no alias (it waits forever);
        // the broker's answer to one is checked with a raw client below.
        fc
          .array(wildString(12), { minLength: 1, maxLength: 12 })
          .map((levels) => levels.join('/'))
          .filter((t) => t.length > 0),
        validRoom.map((room) => topics.roomSend(room)),
      );
      const closes: Record<string, number> = {};
      await property('mqtt: topic names', topic, RUNS.mqttTopics, async (name) => {
        await reopen();
        const onWire = Buffer.from(name).toString(); // lone surrogates travel as U+FFFD
        const id = nextId('topic');
        const payload = JSON.stringify({ action: 'ping', id, body: { text: 'x' } });
        // The policy allows the user's requests topic, and the send topic of each room the user was a member of
        // when this connection was made. On the first a ping; on a send topic a send of that id and body.
        const sendTo = /^rt\/rooms\/([^/]+)\/send$/.exec(onWire)?.[1];
        const allowed = onWire === topics.requests(sub) || (sendTo !== undefined && session.memberRooms.has(sendTo));
        const frame =
          sendTo === undefined ? JSON.parse(payload) : { action: 'send', room: sendTo, id, body: { text: 'x' } };
        const expected = allowed ? await expectedAnswer(frame, session.who) : undefined;
        const outcome = await session.publish(name, payload);
        if (expected !== undefined) {
          expect(outcome.kind).toBe('answer');
          verify(expected, (outcome as { text: string }).text, frame);
        } else if (onWire.startsWith('$aws/rules/')) {
          // Basic Ingest: IoT's limits apply after the prefix; our policy allows none of it either way.
          expect(['refused', 'closed']).toContain(outcome.kind);
        } else if (iotTopicProblem(onWire) !== undefined) {
          expect(outcome.kind, `invalid topic ${JSON.stringify(onWire)}`).toBe('closed');
          const code = String((outcome as { reasonCode?: number }).reasonCode);
          closes[code] = (closes[code] ?? 0) + 1;
        } else {
          expect(outcome, `topic ${JSON.stringify(onWire)} is valid but not allowed`).toEqual({
            kind: 'refused',
            reasonCode: 0x87,
          });
        }
        if (session.closed) await reopen();
        else await session.alive();
      });
      // The invalid-topic disconnects said why (MQTT 5 DISCONNECT 0x90 Topic Name invalid).
      expect(Object.keys(closes).every((code) => code === String(0x90))).toBe(true);
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'survives any well-framed MQTT packet, before and after CONNECT: it answers or disconnects, never hangs',
    async () => {
      const packet = fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }))
        .map(([first, body]) => Buffer.concat([Buffer.from([first]), remainingLength(body.length), Buffer.from(body)]));
      const arbitrary = fc.tuple(fc.boolean(), fc.array(packet, { minLength: 1, maxLength: 3 }));
      const [host, port] = hostAndPort(emulator.mqttUrl as string);
      let run = 0;
      await property('mqtt: raw packets', arbitrary, RUNS.mqttRaw, async ([connectFirst, packets]) => {
        const raw = connectFirst
          ? await RawMqtt.connect(host, port, {
              clientId: clientIdFor('fuzz-raw', String(++run)),
              password: token('fuzz-raw'),
            })
          : await RawMqtt.socket(host, port);
        try {
          for (const p of packets) raw.write(p);
          const state = await raw.pingable();
          // Before CONNECT nothing may be served.
          if (!connectFirst) expect(state).toBe('closed');
        } finally {
          raw.close();
        }
      });
    },
    PROPERTY_TIMEOUT,
  );

  it('disconnects a raw PUBLISH whose topic is empty or not UTF-8', async () => {
    const [host, port] = hostAndPort(emulator.mqttUrl as string);
    const publish = (topic: Buffer) => {
      const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from('{}')]);
      return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body]);
    };
    for (const topic of [
      Buffer.alloc(0),
      Buffer.from([0x72, 0x74, 0x2f, 0xff, 0xfe]),
      Buffer.from([0xed, 0xa0, 0x80]),
    ]) {
      const raw = await RawMqtt.connect(host, port, {
        clientId: clientIdFor('fuzz-raw', 'topic'),
        password: token('fuzz-raw'),
      });
      try {
        raw.write(publish(topic));
        expect(await raw.pingable()).toBe('closed');
      } finally {
        raw.close();
      }
    }
  });

  it('takes a payload of exactly 128 KB and disconnects one byte past it (0x95)', async () => {
    await reopen();
    const ping = (bytes: number) => {
      const id = nextId('payload');
      const head = `{"action":"ping","id":"${id}","pad":"`;
      return { id, text: `${head}${'x'.repeat(bytes - head.length - 2)}"}` };
    };
    const fits = ping(IOT_LIMITS.maxPayloadBytes);
    expect(Buffer.byteLength(fits.text)).toBe(IOT_LIMITS.maxPayloadBytes);
    const answered = await session.publish(topics.requests(session.sub), fits.text);
    expect(answered.kind === 'answer' && parseFrame(answered.text)).toMatchObject({ type: 'pong', ref: fits.id });
    const over = await session.publish(topics.requests(session.sub), ping(IOT_LIMITS.maxPayloadBytes + 1).text);
    expect(over).toEqual({ kind: 'closed', reasonCode: 0x95 });
    await reopen();
    await session.alive();
  });

  it('regression: a room send whose body is nested 14,000 deep is answered bad_request', async () => {
    await reopen();
    // Was: iot-ingress re-serialized the payload to find its ref, JSON.stringify overflowed the stack, the Lambda
    // threw, and the client got no answer at all.
    const id = nextId('abyss');
    const payload = `{"id":"${id}","body":{"a":${nestedText(14_000)}}}`;
    const outcome = await session.publish(topics.roomSend(HOME), payload);
    expect(outcome.kind === 'answer' && parseFrame(outcome.text)).toMatchObject({
      type: 'error',
      code: 'bad_request',
      ref: id,
    });
    const deepId = `{"id":${nestedText(14_000)},"body":{}}`;
    const second = await session.publish(topics.roomSend(HOME), deepId);
    expect(second.kind === 'answer' && parseFrame(second.text)).toMatchObject({ type: 'error', code: 'invalid_id' });
    await session.alive();
  });
});

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

function hostAndPort(url: string): [string, number] {
  const parsed = new URL(url);
  return [parsed.hostname, Number(parsed.port)];
}

// ---- publisher ----------------------------------------------------------------------------------------------

describe('publisher calls', () => {
  const METHODS = ['notify', 'announce', 'sendToRoom', 'createRoom', 'grant', 'revoke', 'closeRoom'] as const;
  type Method = (typeof METHODS)[number];

  const cyclic = () => {
    const body: Record<string, unknown> = { text: 'loop' };
    body.self = body;
    body.again = body;
    return body;
  };
  /** Each argument of a call is valid (mostly) or broken (one time in three), so most refusals have one cause. */
  const either = <T, U>(valid: fc.Arbitrary<T>, broken: fc.Arbitrary<U>) =>
    fc.oneof({ weight: 2, arbitrary: valid }, { weight: 1, arbitrary: broken });

  const body = either(
    fc.oneof(
      fc.dictionary(wildString(8), anyJson, { maxKeys: 4 }),
      protoPollution,
      fc.constant({ a: undefined, b: 1 }),
      fc.constantFrom(LIMITS.maxBodyDepth - 1, LIMITS.maxBodyDepth).map((n) => JSON.parse(nestedText(n, 'object'))),
    ),
    fc.oneof(
      bodyNearLimit.map((b) => b.body),
      wrongType('object'),
      fc.constantFrom(LIMITS.maxBodyDepth + 1, 5_000).map((n) => JSON.parse(nestedText(n, 'object')) as unknown),
      fc
        .constantFrom<() => unknown>(
          () => ({ n: 10n }),
          cyclic,
          () => ({ a: Number.POSITIVE_INFINITY }),
          () => ({ a: Number.NaN }),
        )
        .map((make) => make()),
    ),
  );
  const userPool = ['pub-u1', 'pub-u2', '__proto__', 'a'.repeat(128)];
  const someUsers = fc.oneof(
    fc.constantFrom(...userPool),
    fc.array(fc.oneof(fc.constantFrom(...userPool), validUser), { minLength: 1, maxLength: 4 }),
    fc.constant(Array(LIMITS.maxNotifyRecipients).fill('pub-u1')),
  );
  const userIds = either(
    someUsers,
    fc.oneof(
      adversarialUser,
      fc.array(adversarialUser, { minLength: 1, maxLength: 4 }),
      fc.constantFrom(Array(LIMITS.maxNotifyRecipients + 1).fill('pub-u1'), []),
      wrongType('string'),
      fc.constantFrom(null, undefined),
    ),
  );
  const roomPool = ['pub-r1', 'pub-r2', 'pub-r3'];
  const room = either(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...roomPool) },
      { weight: 1, arbitrary: fc.stringMatching(/^pub-[a-z0-9]{1,8}$/) },
    ),
    fc.oneof(adversarialRoom, wrongType('string')),
  );
  const clientId = either(validClientId, fc.oneof(adversarialClientId, wrongType('string')));
  /** Options: absent, null (ignored), or some of `fields`. */
  const options = (fields: Record<string, fc.Arbitrary<unknown>>) =>
    fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom(undefined, null) },
      { weight: 4, arbitrary: fc.record(fields, { requiredKeys: [] }) },
    );
  const retention = either(
    fc.integer({ min: 60, max: LIMITS.maxNotificationRetentionSeconds }),
    fc.constantFrom(59, LIMITS.maxNotificationRetentionSeconds + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3600'),
  );
  const group = either(fc.constantFrom('beta', 'ops', 'a'.repeat(64)), fc.oneof(adversarialGroup, wrongType('string')));
  const user = either(
    fc.oneof(fc.constantFrom(...userPool), validUser),
    fc.oneof(adversarialUser, wrongType('string')),
  );
  const visibility = either(fc.constantFrom('public', 'private'), fc.oneof(wildString(10), anyJson));
  const members = either(someUsers.filter(Array.isArray), userIds);

  const call: fc.Arbitrary<{ method: Method; args: unknown[] }> = fc.oneof(
    fc
      .tuple(userIds, body, options({ key: clientId, retentionSeconds: retention }))
      .map((args) => ({ method: 'notify' as const, args })),
    fc.tuple(body, options({ group, key: clientId })).map((args) => ({ method: 'announce' as const, args })),
    fc
      .tuple(room, body, options({ from: user, id: clientId }))
      .map((args) => ({ method: 'sendToRoom' as const, args })),
    fc
      .tuple(room, options({ visibility, owner: user, members }))
      .map((args) => ({ method: 'createRoom' as const, args })),
    fc.tuple(room, userIds).map((args) => ({ method: 'grant' as const, args })),
    fc.tuple(room, userIds).map((args) => ({ method: 'revoke' as const, args })),
    // Closes only one of the pool's rooms, so the others keep taking sends and grants.
    either(
      fc.oneof(fc.constant('pub-r3'), fc.stringMatching(/^pub-[a-z0-9]{1,8}$/)),
      fc.oneof(adversarialRoom, anyJson),
    ).map((r) => ({ method: 'closeRoom' as const, args: [r] })),
  );

  /** Codes the user ids of a call may be refused with ("1 to maxNotifyRecipients of [A-Za-z0-9_-]{1,128}"). */
  function userCodes(value: unknown): ErrorCode[] {
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list) || list.length === 0) return ['invalid_user'];
    const codes: ErrorCode[] = [];
    if (list.length > LIMITS.maxNotifyRecipients) codes.push('too_many_recipients');
    if (!list.every(isUser)) codes.push('invalid_user');
    return codes;
  }

  const validUsers = (value: unknown): string[] =>
    [...new Set((typeof value === 'string' ? [value] : Array.isArray(value) ? value : []).filter(isUser))].slice(0, 3);

  const inboxSize = async (sub: string) =>
    (await store.listNotifications(sub, { limit: 100, unreadOnly: false })).notifications.length;

  /** The codes validation may refuse a call with (empty: valid input), from the publisher's documented rules. */
  function validationCodes(method: Method, args: unknown[]): ErrorCode[] {
    const o = (i: number) => (isObject(args[i]) ? args[i] : {}) as Record<string, unknown>;
    const codes: ErrorCode[] = [];
    const roomCode = (r: unknown) => {
      if (!isRoom(r)) codes.push('invalid_room');
    };
    switch (method) {
      case 'notify': {
        codes.push(...userCodes(args[0]), ...bodyCodes(args[1]));
        const { key, retentionSeconds: r } = o(2);
        if (key !== undefined && !isClientId(key)) codes.push('invalid_id');
        const validRetention =
          r === undefined ||
          (typeof r === 'number' && Number.isInteger(r) && r >= 60 && r <= LIMITS.maxNotificationRetentionSeconds);
        if (!validRetention) codes.push('bad_request');
        break;
      }
      case 'announce': {
        codes.push(...bodyCodes(args[0]));
        const { group, key } = o(1);
        if (group !== undefined && !isGroup(group)) codes.push('invalid_group');
        if (key !== undefined && !isClientId(key)) codes.push('invalid_id');
        break;
      }
      case 'sendToRoom': {
        roomCode(args[0]);
        codes.push(...bodyCodes(args[1]));
        const { from, id } = o(2);
        if (from !== undefined && !isUser(from)) codes.push('invalid_user');
        if (id !== undefined && !isClientId(id)) codes.push('invalid_id');
        break;
      }
      case 'createRoom': {
        roomCode(args[0]);
        const { visibility, owner, members } = o(1);
        if (visibility !== undefined && visibility !== 'public' && visibility !== 'private') codes.push('bad_request');
        if (owner !== undefined && !isUser(owner)) codes.push('invalid_user');
        // `members` is a list (unlike grant's user ids, a single string is not one).
        const none = members === undefined || (Array.isArray(members) && members.length === 0);
        if (!none) codes.push(...(Array.isArray(members) ? userCodes(members) : ['invalid_user' as const]));
        break;
      }
      case 'grant':
      case 'revoke':
        codes.push(...userCodes(args[1]));
        roomCode(args[0]);
        break;
      case 'closeRoom':
        roomCode(args[0]);
        break;
    }
    return codes;
  }

  /** Makes one publisher call and checks it against the oracle and the store (see the property below). */
  async function checkCall({ method, args }: { method: Method; args: unknown[] }): Promise<void> {
    const codes = validationCodes(method, args);
    const r = method !== 'notify' && method !== 'announce' && isRoom(args[0]) ? (args[0] as string) : undefined;
    const before = r === undefined ? undefined : await store.getRoom(r);
    const users = validUsers(method === 'notify' ? args[0] : method === 'createRoom' ? o1members(args) : args[1]);
    const inboxBefore = method === 'notify' ? await Promise.all(users.map(inboxSize)) : [];
    const membersBefore = r === undefined ? [] : await Promise.all(users.map((u) => store.isMember(r, u)));
    const since = Date.now();

    let result: unknown;
    let error: unknown;
    try {
      result = await within(
        (publisher[method] as (...a: unknown[]) => Promise<unknown>)(...args),
        10_000,
        `publisher.${method}`,
      );
    } catch (caught) {
      error = caught;
    }
    const what = `publisher.${method}(${describeArgs(args)})`;
    if (error !== undefined && !(error instanceof RealtimeError)) {
      throw new Error(`${what} threw an untyped ${String(error)}`, { cause: error });
    }
    const code = (error as RealtimeError | undefined)?.code;
    const outcome = `publisher:${code ?? 'ok'}`;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;

    // State decides what validation does not: unknown or closed rooms.
    const stateCodes: ErrorCode[] = [];
    if (method === 'sendToRoom' || method === 'grant' || method === 'revoke' || method === 'closeRoom') {
      if (before === undefined) stateCodes.push('unknown_room');
    }
    if ((method === 'sendToRoom' || method === 'grant' || method === 'createRoom') && before?.closed) {
      stateCodes.push('room_closed');
    }
    if (codes.length > 0) {
      expect(code, `${what} must be refused with one of ${codes}`).toBeDefined();
      expect(codes, what).toContain(code);
    } else if (stateCodes.length > 0) {
      expect(stateCodes, what).toContain(code);
    } else {
      expect(error, `${what} must succeed`).toBeUndefined();
    }
    if (code !== undefined) expect(isErrorCode(code) && code !== 'internal').toBe(true);

    // Nothing written on a refusal; exactly what was asked on success.
    const after = r === undefined ? undefined : await store.getRoom(r);
    if (error !== undefined) {
      expect(after?.lastSeq, `${what} refused but the room's seq moved`).toBe(before?.lastSeq);
      if (before === undefined) expect(after, `${what} refused but created the room`).toBeUndefined();
      if (method === 'notify') expect(await Promise.all(users.map(inboxSize))).toEqual(inboxBefore);
      if (r !== undefined && (method === 'grant' || method === 'createRoom')) {
        expect(await Promise.all(users.map((u) => store.isMember(r, u)))).toEqual(membersBefore);
      }
      if (method === 'announce') {
        const group = isObject(args[1]) && isGroup(args[1].group) ? [`group.${args[1].group}`] : [];
        const listed = await store.listAnnouncements(['all', ...group], { since, limit: 10 });
        expect(listed.announcements, `${what} refused but announced`).toEqual([]);
      }
      return;
    }
    if (method === 'sendToRoom' && r !== undefined) {
      const sent = result as { id: string; seq: number; duplicate: boolean };
      const o = isObject(args[2]) ? args[2] : {};
      const from = (o.from as string | undefined) ?? 'backend';
      const key = `${r}\u0000${from}\u0000${o.id as string}`;
      if (o.id !== undefined && sendAcks.has(key)) {
        expect(sent).toMatchObject({ duplicate: true, seq: sendAcks.get(key)?.seq });
      } else {
        expect(sent.duplicate).toBe(false);
        if (o.id !== undefined) sendAcks.set(key, { seq: sent.seq, id: sent.id });
        recordAck(r, sent.seq, { id: sent.id, from, ref: (o.id as string) ?? '', body: JSON.stringify(args[1]) });
      }
    }
    if (method === 'createRoom' && r !== undefined) {
      expect((result as { created: boolean }).created).toBe(before === undefined);
    }
    if (method === 'grant' && r !== undefined) {
      expect(await Promise.all(users.map((u) => store.isMember(r, u)))).toEqual(users.map(() => true));
    }
    if (method === 'notify') {
      const outcomes = result as { userId: string; duplicate: boolean }[];
      const sizes = await Promise.all(users.map(inboxSize));
      users.forEach((u, i) => {
        const outcome = outcomes.find((x) => x.userId === u);
        expect(outcome, `${what}: no outcome for ${u}`).toBeDefined();
        const grew = Math.min(100, (inboxBefore[i] as number) + (outcome?.duplicate ? 0 : 1));
        expect(sizes[i]).toBe(grew);
      });
    }
  }

  it(
    'resolves or rejects every call with a typed error, and writes nothing when it refuses',
    async () => {
      await property('publisher: random calls', call, RUNS.publisher, checkCall);
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'refuses near-miss user ids, room names, group names and keys, each in an otherwise valid call',
    async () => {
      // One character outside the pattern, among valid ones: what tells a right pattern from a loose one.
      const nearMiss = (valid: RegExp, bad: string) =>
        fc
          .tuple(fc.stringMatching(valid), fc.constantFrom(...bad), fc.stringMatching(valid))
          .map(([a, c, b]) => `${a}${c}${b}`);
      const nearUser = nearMiss(/^[A-Za-z0-9_-]{0,20}$/, '.:/+#$ é*');
      const nearRoom = nearMiss(/^[A-Za-z0-9_.-]{0,20}$/, ':/+#$ é*%');
      const nearId = nearMiss(/^[A-Za-z0-9_.:-]{0,20}$/, '/+#$ é*%');
      const text = { text: 'near miss' };
      const nameCall: fc.Arbitrary<{ method: Method; args: unknown[] }> = fc.oneof(
        nearUser.map((u) => ({ method: 'notify' as const, args: [u, text] })),
        nearUser.map((u) => ({ method: 'notify' as const, args: [['pub-u1', u], text] })),
        nearUser.map((u) => ({ method: 'grant' as const, args: ['pub-r1', [u]] })),
        nearUser.map((u) => ({ method: 'revoke' as const, args: ['pub-r1', u] })),
        nearUser.map((u) => ({ method: 'sendToRoom' as const, args: ['pub-r1', text, { from: u }] })),
        nearUser.map((u) => ({ method: 'createRoom' as const, args: ['pub-r2', { owner: u }] })),
        nearUser.map((u) => ({ method: 'createRoom' as const, args: ['pub-r2', { members: ['pub-u2', u] }] })),
        nearRoom.map((r) => ({ method: 'createRoom' as const, args: [r] })),
        nearRoom.map((r) => ({ method: 'sendToRoom' as const, args: [r, text] })),
        nearRoom.map((r) => ({ method: 'grant' as const, args: [r, 'pub-u1'] })),
        nearRoom.map((r) => ({ method: 'closeRoom' as const, args: [r] })),
        nearRoom.map((g) => ({ method: 'announce' as const, args: [text, { group: g }] })),
        nearId.map((k) => ({ method: 'notify' as const, args: ['pub-u1', text, { key: k }] })),
        nearId.map((k) => ({ method: 'announce' as const, args: [text, { key: k }] })),
        nearId.map((k) => ({ method: 'sendToRoom' as const, args: ['pub-r1', text, { id: k }] })),
      );
      await property('publisher: near-miss names', nameCall, RUNS.publisherNames, checkCall);
    },
    PROPERTY_TIMEOUT,
  );

  function o1members(args: unknown[]): unknown {
    return isObject(args[1]) ? args[1].members : undefined;
  }

  function describeArgs(args: unknown[]): string {
    return args
      .map((a) => {
        try {
          return (JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(a)).slice(0, 120);
        } catch {
          return '<cyclic>';
        }
      })
      .join(', ');
  }

  it('regression: a cyclic or BigInt body is refused with a typed error instead of hanging or throwing', async () => {
    await publisher.createRoom('pub-regress', { visibility: 'public' });
    const loop: Record<string, unknown> = { text: 'loop' };
    loop.self = loop;
    // Was: assertBody walked the cycle forever (the process hung, its memory growing without bound).
    await expect(within(publisher.sendToRoom('pub-regress', loop), 5_000, 'cyclic body')).rejects.toMatchObject({
      code: 'bad_request',
    });
    const wide: Record<string, unknown> = {};
    wide.a = wide;
    wide.b = wide;
    await expect(within(publisher.notify('pub-u1', wide), 5_000, 'cyclic body')).rejects.toMatchObject({
      code: 'bad_request',
    });
    // Was: JSON.stringify's TypeError "Do not know how to serialize a BigInt", not a ValidationError.
    await expect(publisher.announce({ n: 10n } as never)).rejects.toMatchObject({ code: 'bad_request' });
    expect((await store.getRoom('pub-regress'))?.lastSeq).toBe(0);
  });

  it('regression: null options are ignored, null members and a null id refused, never a TypeError', async () => {
    // Was: `options.visibility` / `options.from` / `options.members.length` of null threw a TypeError.
    await expect(publisher.createRoom('pub-null-options', null as never)).resolves.toMatchObject({ created: true });
    await expect(publisher.sendToRoom('pub-null-options', { text: 'hi' }, null as never)).resolves.toMatchObject({
      seq: 1,
    });
    await expect(publisher.createRoom('pub-null-members', { members: null as never })).rejects.toMatchObject({
      code: 'invalid_user',
    });
    await expect(publisher.createRoom('pub-empty-members', { members: '' as never })).rejects.toMatchObject({
      code: 'invalid_user',
    });
    expect(await store.getRoom('pub-null-members')).toBeUndefined();
    // Was: a null visibility silently made the room private; a null owner was already refused.
    await expect(publisher.createRoom('pub-null-visibility', { visibility: null as never })).rejects.toMatchObject({
      code: 'bad_request',
    });
    expect(await store.getRoom('pub-null-visibility')).toBeUndefined();
    // Was: a null `id` was replaced by a generated one, so a retry with the same (null) id stored the message again.
    await expect(
      publisher.sendToRoom('pub-null-options', { text: 'again' }, { id: null as never }),
    ).rejects.toMatchObject({ code: 'invalid_id' });
    expect((await store.getRoom('pub-null-options'))?.lastSeq).toBe(1);
    expect(await store.getRoom('pub-empty-members')).toBeUndefined();
  });
});

describe('regressions found by the properties', () => {
  it('announce: two different long ids of one admin are two announcements, not a duplicate', async () => {
    // Was: the idempotency key `${sub}:${id}` was cut to 64 characters, so two ids sharing their first
    // 64 - sub.length - 1 characters collided and the second announcement was answered `duplicate` and never sent.
    const s = await new WsSession('admin-with-a-long-sub-0123456789', ['admin'], 'regress-announce').open();
    const shared = 'a'.repeat(40);
    const first = await s.request({ action: 'announce', id: `${shared}-1`, body: { text: 'first' } }, 'ack');
    const second = await s.request({ action: 'announce', id: `${shared}-2`, body: { text: 'second' } }, 'ack');
    expect(first.duplicate).toBeUndefined();
    expect(second.duplicate).toBeUndefined();
    expect(second.id).not.toBe(first.id);
    // A real repeat is still recognised.
    const again = await s.request({ action: 'announce', id: `${shared}-2`, body: { text: 'second' } }, 'ack');
    expect(again).toMatchObject({ duplicate: true, id: second.id });
    await s.socket.close();
  });
});

describe('regression: pages of large items fit one message', () => {
  it('cuts inbox and announcements pages to 128 KB with a cursor, on WebSocket and MQTT', async () => {
    // Was: a page of 100 items of 16 KiB bodies was ~1.6 MB; API Gateway answered `Internal server error`
    // (untyped) and IoT refused the publish, so an MQTT client got no answer at all.
    const big = bodyOfBytes(LIMITS.maxBodyBytes, 'x');
    for (let i = 0; i < 12; i++) await publisher.notify('fuzz-pages', big);
    const before = Date.now();
    // To everyone: MQTT connections read the `all` audience only (IoT's lifecycle events carry no groups).
    for (let i = 0; i < 12; i++) await publisher.announce(big);
    const ws = await new WsSession('fuzz-pages', [], 'fuzz-pages-home').open();
    const seen = new Set<string>();
    let cursor: Record<string, unknown> | undefined;
    for (let page = 0; page < 5; page++) {
      const id = nextId('inbox');
      const said = await ws.socket.exchange(JSON.stringify({ action: 'inbox', id, body: { limit: 100, ...cursor } }));
      expect(said.kind).toBe('frame');
      const text = (said as { text: string }).text;
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(APIGW_LIMITS.maxMessageBytes);
      const answer = parseFrame(text);
      expect(answer).toMatchObject({ type: 'inbox', ref: id });
      for (const n of answer.notifications as { id: string }[]) seen.add(n.id);
      cursor = answer.next as Record<string, unknown> | undefined;
      if (cursor === undefined) break;
    }
    expect(seen.size).toBe(12);

    const mqttSession = await new MqttSession('fuzz-pages', 'p').open();
    const outcome = await mqttSession.publish(
      topics.requests('fuzz-pages'),
      JSON.stringify({ action: 'announcements', id: 'ann', body: { since: before, limit: 100 } }),
    );
    expect(outcome.kind).toBe('answer');
    const page = parseFrame((outcome as { text: string }).text);
    expect(page).toMatchObject({ type: 'announcements', ref: 'ann' });
    expect((page.announcements as unknown[]).length).toBeLessThan(12);
    expect(page.next).toMatchObject({ after: expect.any(String) });
  });
});

// ---- what must hold after all of it -------------------------------------------------------------------------

describe('after every property', () => {
  it('kept the canary served, polluted nothing, left no rejection or error, and stored only acked messages', async () => {
    await canary.stop();
    expect(canary.errors).toEqual([]);
    expect(canary.rounds).toBeGreaterThan(20);
    recordCanary();

    expect({} as Record<string, unknown>).not.toHaveProperty('polluted');
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(prototypeKeys()).toEqual(prototypeKeysBefore);
    expect(unhandled).toEqual([]);
    expect(emulatorErrors).toEqual([]);

    // Every room's stored history is exactly what was acknowledged: no half-written message, none lost.
    for (const [room, messages] of acked) {
      const stored = [];
      let after = 0;
      for (;;) {
        const page = await store.listMessages(room, { after, limit: 100 });
        stored.push(...page.messages);
        if (page.messages.length === 0 || page.next === undefined) break;
        after = (page.messages[page.messages.length - 1] as { seq: number }).seq;
      }
      expect(
        stored.map((m) => m.seq).sort((a, b) => a - b),
        `history of ${room}`,
      ).toEqual([...messages.keys()].sort((a, b) => a - b));
      for (const m of stored) {
        const sent = messages.get(m.seq);
        expect({ id: m.id, from: m.from, body: JSON.stringify(m.body) }).toEqual({
          id: sent?.id,
          from: sent?.from,
          body: sent?.body,
        });
      }
    }
  });
});

function recordCanary() {
  const messages = new Map<number, { id: string; from: string; ref: string; body: string }>();
  for (const { seq, id, n } of canary.acks)
    messages.set(seq, { id, from: 'canary-a', ref: '', body: JSON.stringify({ n }) });
  acked.set(CANARY_ROOM, messages);
}
