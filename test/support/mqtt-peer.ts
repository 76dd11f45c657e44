/** An MQTT.js client of the MQTT channel, shaped like the WebSocket `TestClient`: frames by topic, awaited. */
import type { ServerFrame } from '@viba-realtime/protocol';
import { clientIdFor, topics } from '@viba-realtime/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { FrameWithOptionalId } from './ws-client.js';

interface Received {
  topic: string;
  frame: ServerFrame;
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
   * Connects as `clientIdFor(sub, suffix)` with the token as password and subscribes to the user's responses
   * and rooms topics (unless `subscribe` is false).
   */
  static async connect(
    url: string,
    options: { sub: string; suffix: string; token: string; protocolVersion: 4 | 5; subscribe?: boolean },
  ): Promise<MqttPeer> {
    const clientId = clientIdFor(options.sub, options.suffix);
    const client = await mqtt.connectAsync(url, {
      clientId,
      username: 'any',
      password: options.token,
      protocolVersion: options.protocolVersion,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
    });
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
