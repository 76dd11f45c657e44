/** An MQTT.js client of the MQTT channel, shaped like the WebSocket `TestClient`: frames by topic, awaited. */
import type { ServerFrame } from '@viba-realtime/protocol';
import { clientIdFor, TOKEN_QUERY_PARAM, topics } from '@viba-realtime/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { FrameWithOptionalId } from './ws-client.js';

interface Received {
  topic: string;
  frame: ServerFrame;
}

/** How {@link MqttPeer.connect} reaches the broker and presents the token. */
export interface MqttPeerOptions {
  sub: string;
  suffix: string;
  token: string;
  protocolVersion: 4 | 5;
  /** Subscribe to the user's responses and rooms topics after connecting. @default true */
  subscribe?: boolean;
  /**
   * Where the token goes: the CONNECT password (any MQTT client), or the `?token=` query of the WebSocket
   * upgrade, as browsers send it (they cannot set headers); only for a `ws://` URL. @default 'password'
   */
  tokenIn?: 'password' | 'query';
}

interface Waiter {
  predicate: (message: Received) => boolean;
  resolve: (message: Received) => void;
}

export class MqttPeer {
  /** Every message received, in order. */
  readonly received: Received[] = [];
  #unread: Received[] = [];
  #waiters: Waiter[] = [];
  #counter = 0;

  private constructor(
    readonly client: MqttClient,
    readonly sub: string,
    readonly clientId: string,
  ) {
    client.on('message', (topic, payload) => {
      const message = { topic, frame: JSON.parse(payload.toString()) as ServerFrame };
      this.received.push(message);
      const waiter = this.#waiters.find((w) => w.predicate(message));
      if (waiter) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      } else {
        this.#unread.push(message);
      }
    });
  }

  /**
   * Connects as `clientIdFor(sub, suffix)` with the token as password (or in the WebSocket URL's query, see
   * {@link MqttPeerOptions.tokenIn}) and subscribes to the user's responses and rooms topics (unless
   * `subscribe` is false). `url` is `mqtt://` (TCP) or `ws://.../mqtt` (MQTT over WebSocket).
   */
  static async connect(url: string, options: MqttPeerOptions): Promise<MqttPeer> {
    const clientId = clientIdFor(options.sub, options.suffix);
    const client = await mqtt.connectAsync(target(url, options), { clientId, ...connectOptions(options) });
    const peer = new MqttPeer(client, options.sub, clientId);
    if (options.subscribe !== false) {
      const granted = await client.subscribeAsync(
        [topics.responses(options.sub), topics.userRoomsFilter(options.sub)],
        { qos: 1 },
      );
      for (const grant of granted) if (grant.qos !== 1) throw new Error(`subscription refused: ${grant.topic}`);
    }
    return peer;
  }

  /**
   * Connects as {@link connect} would, expecting a refusal: resolves with the CONNACK code MQTT.js reports
   * (3.1.1 return code, e.g. 5 Not authorized; MQTT 5 reason code, e.g. 0x87), or `undefined` when the
   * connection closed without one. Rejects if the CONNECT was accepted.
   */
  static refusal(url: string, options: Omit<MqttPeerOptions, 'subscribe'>): Promise<number | undefined> {
    const client = mqtt.connect(target(url, options), {
      clientId: clientIdFor(options.sub, options.suffix),
      ...connectOptions(options),
    });
    return new Promise((resolve, reject) => {
      client.once('connect', () => {
        client.end(true);
        reject(new Error('the CONNECT was accepted'));
      });
      client.once('error', (error) => {
        client.end(true);
        // A CONNACK refusal carries a numeric code; a socket error (ECONNREFUSED, ...) a string one.
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'number') resolve(code);
        else reject(error);
      });
      client.once('close', () => {
        client.end(true);
        resolve(undefined);
      });
    });
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
    await this.client.publishAsync(topics.requests(this.sub), JSON.stringify({ ...frame, id }), { qos: 1 });
    return answer;
  }

  /** Ends the connection (a clean DISCONNECT) and waits until it is closed. */
  async close(): Promise<void> {
    if (this.client.disconnected) return;
    await this.client.endAsync();
  }
}

/** The URL to connect to: with the token in the query when it goes there. */
function target(url: string, options: Pick<MqttPeerOptions, 'token' | 'tokenIn'>): string {
  if (options.tokenIn !== 'query') return url;
  const withToken = new URL(url);
  withToken.searchParams.set(TOKEN_QUERY_PARAM, options.token);
  return withToken.toString();
}

function connectOptions(options: Pick<MqttPeerOptions, 'token' | 'tokenIn' | 'protocolVersion'>) {
  return {
    username: 'any',
    ...(options.tokenIn === 'query' ? {} : { password: options.token }),
    protocolVersion: options.protocolVersion,
    // No reconnects: a refused or dropped client stays so, and the test sees why.
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  };
}
