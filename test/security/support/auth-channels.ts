/**
 * The ways a client reaches the emulator's edge, each with the raw answer the edge gives: the HTTP status of a
 * refused API Gateway WebSocket upgrade, the CONNACK code of a refused MQTT CONNECT (IoT Core over TCP and over
 * WebSocket, MQTT 3.1.1 and 5). Nothing in between (no SDK), so the suites see the wire as any client does.
 */
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { Emulator } from '@viba-realtime/local';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import WebSocket from 'ws';

/** Where a credential goes on the way in. `null` values are left out. */
export interface Presentation {
  /** Query parameters of the upgrade URL (API Gateway's or IoT's `/mqtt`). */
  query?: Record<string, string>;
  /** Extra HTTP headers of the upgrade. */
  headers?: Record<string, string>;
  /** `Sec-WebSocket-Protocol` values (API Gateway only: MQTT over WebSocket must offer `mqtt`). */
  protocols?: string[];
  /** MQTT CONNECT username and password (MQTT only). */
  username?: string;
  password?: string;
}

/** One way in. */
export interface Channel {
  /** Table name, e.g. `MQTT 5 / WebSocket`. */
  name: string;
  /** Short and sub-safe: part of the user names of the channel's cases. */
  tag: string;
  kind: 'ws' | 'mqtt';
  transport: 'tcp' | 'ws';
  version?: 4 | 5;
  /** Where this channel carries a token normally (what the authorizer reads). */
  present(token: string): Presentation;
  /** Where this channel does NOT read a token: the "token in a header the route does not read" attack. */
  misplace(token: string): Presentation;
}

/** What the edge answered. */
export type EdgeAnswer =
  | { accepted: true; close: () => Promise<void> }
  | { accepted: false; status?: number; connack?: number };

/** MQTT.js's view of a refused CONNECT: 3.1.1 return code 5, MQTT 5 reason code 0x87. */
export const NOT_AUTHORIZED = { 4: 5, 5: 0x87 } as const;

export const CHANNELS: Channel[] = [
  {
    name: 'API Gateway WebSocket (?token=)',
    tag: 'gw',
    kind: 'ws',
    transport: 'ws',
    present: (token) => ({ query: { token } }),
    // A browser app might try the subprotocol list (the only header it can set), a Node client a header of
    // its own choosing or a differently named query parameter: the authorizer reads none of them.
    misplace: (token) => ({
      protocols: ['bearer', token],
      headers: { 'X-Token': token, Cookie: `token=${token}` },
      query: { access_token: token, id_token: token },
    }),
  },
  {
    name: 'API Gateway WebSocket (Authorization: Bearer)',
    tag: 'gwh',
    kind: 'ws',
    transport: 'ws',
    present: (token) => ({ headers: { Authorization: `Bearer ${token}` } }),
    misplace: (token) => ({
      headers: { 'Proxy-Authorization': `Bearer ${token}`, 'X-Amz-Security-Token': token, 'X-Token': token },
    }),
  },
  {
    name: 'MQTT 3.1.1 / TCP',
    tag: 'm4t',
    kind: 'mqtt',
    transport: 'tcp',
    version: 4,
    present: (token) => ({ username: 'any', password: token }),
    // The token where the username goes: IoT's authorizer reads only the password.
    misplace: (token) => ({ username: token }),
  },
  {
    name: 'MQTT 5 / TCP',
    tag: 'm5t',
    kind: 'mqtt',
    transport: 'tcp',
    version: 5,
    present: (token) => ({ username: 'any', password: token }),
    misplace: (token) => ({ username: token }),
  },
  {
    name: 'MQTT 3.1.1 / WebSocket (Authorization: Bearer)',
    tag: 'm4w',
    kind: 'mqtt',
    transport: 'ws',
    version: 4,
    present: (token) => ({ username: 'any', headers: { Authorization: `Bearer ${token}` } }),
    misplace: (token) => ({ username: token, headers: { 'X-Token': token }, query: { access_token: token } }),
  },
  {
    name: 'MQTT 5 / WebSocket (token in ?token=)',
    tag: 'm5w',
    kind: 'mqtt',
    transport: 'ws',
    version: 5,
    present: (token) => ({ query: { token } }),
    misplace: (token) => ({ headers: { 'X-Token': token, Cookie: `token=${token}` }, query: { id_token: token } }),
  },
];

function withQuery(base: string, query: Record<string, string> | undefined): string {
  const url = new URL(base);
  for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value);
  return url.toString();
}

/** Opens an API Gateway WebSocket; resolves with the refusal status, or an open connection to close. */
export function knockWs(url: string, presentation: Presentation): Promise<EdgeAnswer> {
  const socket = new WebSocket(withQuery(url, presentation.query), presentation.protocols ?? [], {
    headers: presentation.headers ?? {},
  });
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_request, response) => {
      resolve({ accepted: false, status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('open', () =>
      resolve({
        accepted: true,
        close: () =>
          new Promise<void>((done) => {
            socket.once('close', () => done());
            socket.close();
          }),
      }),
    );
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.OPEN) reject(error);
    });
  });
}

/** MQTT.js options for a CONNECT as `clientId` with this presentation. No reconnects. */
export function mqttOptions(clientId: string, version: 4 | 5, presentation: Presentation): IClientOptions {
  return {
    clientId,
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...(presentation.username === undefined ? {} : { username: presentation.username }),
    ...(presentation.password === undefined ? {} : { password: presentation.password }),
    ...(presentation.headers ? { wsOptions: { headers: presentation.headers } } : {}),
  };
}

/** Sends an MQTT CONNECT; resolves with the CONNACK refusal code, or an open client to close. */
export function knockMqtt(
  url: string,
  clientId: string,
  version: 4 | 5,
  presentation: Presentation,
): Promise<EdgeAnswer & { client?: MqttClient }> {
  const client = mqtt.connect(withQuery(url, presentation.query), mqttOptions(clientId, version, presentation));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve({ accepted: true, client, close: () => client.endAsync() }));
    client.once('error', (error) => {
      client.end(true);
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'number') resolve({ accepted: false, connack: code });
      else reject(error);
    });
    client.once('close', () => {
      client.end(true);
      resolve({ accepted: false });
    });
  });
}

/** Knocks on `channel` of `emulator` with `presentation` (MQTT: as `clientId`). */
export function knock(emulator: Emulator, channel: Channel, clientId: string, presentation: Presentation) {
  if (channel.kind === 'ws') return knockWs(emulator.url, presentation);
  const url = channel.transport === 'tcp' ? emulator.mqttUrl : emulator.mqttWsUrl;
  if (!url) throw new Error(`the emulator runs no MQTT over ${channel.transport}`);
  return knockMqtt(url, clientId, channel.version ?? 5, presentation);
}

/** Every item of the emulator's table whose JSON mentions `needle` (keys, subs, client ids...). */
export async function itemsMentioning(emulator: Emulator, needle: string): Promise<Record<string, unknown>[]> {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    const found: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({ TableName: emulator.tableName, ...(start ? { ExclusiveStartKey: start as never } : {}) }),
      );
      for (const item of page.Items ?? []) if (JSON.stringify(item).includes(needle)) found.push(item);
      start = page.LastEvaluatedKey;
    } while (start);
    return found;
  } finally {
    client.destroy();
  }
}
