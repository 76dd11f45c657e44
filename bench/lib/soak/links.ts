/**
 * One connection of one soak client, on either channel, behind one small interface: it carries client frames
 * out and server frames in, and says how it ended. Raw `ws` and MQTT.js, no SDK in between, so every frame the
 * service sends is seen and counted (the SDK would drop duplicates before anyone could count them).
 */
import type { ServerFrame } from '@viba-realtime/protocol';
import { clientIdFor, topics } from '@viba-realtime/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import WebSocket from 'ws';

/** The three ways a soak client reaches the service. */
export type Channel = 'websocket' | 'mqtt-tcp' | 'mqtt-ws';

export const CHANNELS: readonly Channel[] = ['websocket', 'mqtt-tcp', 'mqtt-ws'];

/** Where the service listens. */
export interface LinkEndpoints {
  /** `ws://host:port/local` */
  url: string;
  /** `mqtt://host:port` */
  mqttUrl: string;
  /** `ws://host:port/mqtt` */
  mqttWsUrl: string;
}

/** What a link was opened as. */
export interface LinkIdentity {
  sub: string;
  token: string;
  channel: Channel;
  /** MQTT protocol level (MQTT channels only). */
  protocolVersion: 4 | 5;
}

/** A connection attempt that did not end in an open link. `reason` is what the report groups by. */
export class ConnectRefusedError extends Error {
  override readonly name = 'ConnectRefusedError';
  constructor(
    /** e.g. `http-503`, `connack-5`, `timeout`, `ECONNRESET`, `closed`. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`connect refused: ${reason}`, options);
  }
}

/** An open connection. */
export interface Link {
  readonly channel: Channel;
  /** Sends a client frame (WebSocket: a text frame; MQTT: a QoS 1 publish to the user's requests topic). */
  send(frame: Record<string, unknown>): void;
  /** Resolves once the connection is closed, by either side. */
  readonly closed: Promise<void>;
  /** A clean close (WebSocket close handshake, MQTT DISCONNECT); resolves when closed. */
  close(): Promise<void>;
  /** Cuts the socket with no close frame or DISCONNECT, as a lost network would. */
  cut(): void;
}

/** Where a received frame came from: the answer to a request, or pushed (room traffic, notifications). */
export type FrameSink = (frame: ServerFrame, pushed: boolean) => void;

const CONNECT_TIMEOUT_MS = 60_000;

/** Frame types that answer a request (they carry its id as `ref`). */
const ANSWER_TYPES: ReadonlySet<string> = new Set(['ack', 'error', 'history', 'pong', 'inbox', 'announcements']);

/** Opens a link on the identity's channel; rejects with {@link ConnectRefusedError}. */
export function openLink(endpoints: LinkEndpoints, identity: LinkIdentity, sink: FrameSink): Promise<Link> {
  return identity.channel === 'websocket'
    ? openWebSocket(endpoints.url, identity, sink)
    : openMqtt(identity.channel === 'mqtt-tcp' ? endpoints.mqttUrl : endpoints.mqttWsUrl, identity, sink);
}

function parse(data: Buffer | string): ServerFrame | undefined {
  try {
    const frame: unknown = JSON.parse(data.toString());
    return typeof frame === 'object' && frame !== null ? (frame as ServerFrame) : undefined;
  } catch {
    return undefined;
  }
}

function openWebSocket(url: string, identity: LinkIdentity, sink: FrameSink): Promise<Link> {
  const socket = new WebSocket(`${url}?token=${encodeURIComponent(identity.token)}`, {
    handshakeTimeout: CONNECT_TIMEOUT_MS,
    perMessageDeflate: false,
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      socket.terminate();
      reject(new ConnectRefusedError(reason, { cause }));
    };
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      fail(`http-${response.statusCode ?? 0}`);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      fail(error.message.includes('timed out') ? 'timeout' : (error.code ?? error.message), error);
    });
    void closed.then(() => fail('closed'));
    socket.once('open', () => {
      settled = true;
      socket.on('message', (data: Buffer, isBinary) => {
        const frame = isBinary ? undefined : parse(data);
        // A frame that is not ours is counted by the sink as unknown.
        sink(frame ?? ({ type: 'unparsable' } as unknown as ServerFrame), !isAnswer(frame));
      });
      resolve({
        channel: 'websocket',
        closed,
        send: (frame) => {
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
        },
        close: async () => {
          if (socket.readyState !== WebSocket.CLOSED) socket.close(1000);
          await closed;
        },
        cut: () => socket.terminate(),
      });
    });
  });
}

function isAnswer(frame: ServerFrame | undefined): boolean {
  return frame !== undefined && ANSWER_TYPES.has(frame.type) && 'ref' in frame && frame.ref !== undefined;
}

/**
 * The MQTT client id of a soak user: one stable id per user, as the SDK keeps per device, so a reconnect takes
 * the same id over (the case IoT's late lifecycle events make hard). Its connection id in the store is
 * `mqtt:{clientId}`.
 */
export function soakMqttClientId(sub: string): string {
  return clientIdFor(sub, 'soak');
}

async function openMqtt(url: string, identity: LinkIdentity, sink: FrameSink): Promise<Link> {
  const clientId = soakMqttClientId(identity.sub);
  const client: MqttClient = mqtt.connect(url, {
    clientId,
    username: 'soak',
    password: identity.token,
    protocolVersion: identity.protocolVersion,
    // The soak reconnects itself, after counting why the link ended.
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    clean: true,
  });
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  const responses = topics.responses(identity.sub);
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error & { code?: unknown }) => {
        client.off('connect', onConnect);
        reject(
          new ConnectRefusedError(
            typeof error.code === 'number' ? `connack-${error.code}` : String(error.code ?? error.message),
            { cause: error },
          ),
        );
      };
      const onConnect = () => {
        client.off('error', onError);
        resolve();
      };
      client.once('error', onError);
      client.once('connect', onConnect);
      void closed.then(() => onError(Object.assign(new Error('closed'), { code: 'closed' })));
    });
    // Errors after the CONNACK end in 'close', which the owner of the link handles; without a listener an
    // 'error' event would be thrown.
    client.on('error', () => {});
    const granted = await client.subscribeAsync(
      [responses, topics.userRoomsFilter(identity.sub), topics.inbox(identity.sub)],
      { qos: 1 },
    );
    const refused = granted.find((grant) => grant.qos !== 1);
    if (refused) throw new ConnectRefusedError(`suback-${refused.qos}`);
  } catch (error) {
    client.end(true);
    throw error instanceof ConnectRefusedError ? error : new ConnectRefusedError('subscribe', { cause: error });
  }
  client.on('message', (topic, payload) => {
    const frame = parse(payload);
    sink(frame ?? ({ type: 'unparsable' } as unknown as ServerFrame), topic !== responses);
  });
  const requests = topics.requests(identity.sub);
  return {
    channel: identity.channel,
    closed,
    send: (frame) => {
      // A publish that fails because the link closed is seen by the request's owner through `closed`.
      if (client.connected) client.publish(requests, JSON.stringify(frame), { qos: 1 }, () => {});
    },
    close: async () => {
      if (!client.disconnected) await client.endAsync();
      await closed;
    },
    cut: () => {
      client.stream.destroy();
    },
  };
}
