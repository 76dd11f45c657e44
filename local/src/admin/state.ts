/**
 * What the console shows, read where it lives: live connections from the gateway and the broker (who is
 * connected right now), their users, groups, tokens and rooms from the store the handlers write (through the
 * AWS SDK, as the handlers read it), rooms from the table.
 *
 * Listing every room needs a Scan, which the handlers' store never does (DynamoDB has no cheap "all rooms");
 * the console is a development tool on the emulator's own table, so it scans, a bounded number of pages.
 */
import { type DynamoDBClient, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDbStore,
  isMqttConnectionId,
  mapWithConcurrency,
  mqttConnectionId,
  subOfClientId,
} from '@viba-realtime/lambdas';
import { keys, TABLE } from '@viba-realtime/protocol';
import type { Broker } from '../broker/broker.js';
import { ReasonCode } from '../broker/limits.js';
import type { WebSocketGateway } from '../gateway/websocket-gateway.js';
import type { IotCore } from '../iot/iot-core.js';
import { AdminNotFoundError } from './errors.js';
import { CONSOLE_USER_AGENT, type ConnectionView, type RoomDetail, type RoomSummary } from './types.js';

/** Where the state is read from. */
export interface StateSources {
  gateway: WebSocketGateway;
  broker: Broker | undefined;
  iot: IotCore | undefined;
  store: DynamoDbStore;
  dynamodb: DynamoDBClient;
  tableName: string;
}

/** Connections listed at most, so a benchmark's thousands don't turn a console refresh into thousands of reads. */
export const MAX_LISTED_CONNECTIONS = 500;
/** Scan pages read at most for the room list. */
const MAX_SCAN_PAGES = 20;
/** Store reads in flight at once while listing connections. */
const READ_CONCURRENCY = 16;
/** Messages a room's detail shows. */
export const ROOM_MESSAGES = 50;

/** The live connections of both channels, oldest first. */
export async function listConnections(sources: StateSources): Promise<ConnectionView[]> {
  const { gateway, broker, iot, store } = sources;
  const ws = gateway.connectionIds().map((id) => ({ channel: 'ws' as const, id }));
  const mqtt = (broker?.clients() ?? []).map((client) => ({ channel: 'mqtt' as const, id: client.clientId }));
  const listed = [...ws, ...mqtt].slice(0, MAX_LISTED_CONNECTIONS);
  const views = await mapWithConcurrency(listed, READ_CONCURRENCY, async ({ channel, id }) => {
    if (channel === 'ws') {
      const status = gateway.status(id);
      if (!status) return undefined;
      // A failing read (an injected DynamoDB fault) leaves the connection listed, without what the store knows.
      const [record, rooms] = await Promise.all([
        store.getConnection(id).catch(() => undefined),
        store.listConnectionRooms(id).catch(() => []),
      ]);
      const view: ConnectionView = {
        connectionId: id,
        channel,
        user: record?.sub ?? gateway.userOf(id),
        groups: record?.groups ?? [],
        connectedAt: status.connectedAt,
        lastActiveAt: status.lastActiveAt,
        rooms,
        sourceIp: status.sourceIp,
        console: status.userAgent === CONSOLE_USER_AGENT,
      };
      if (record?.username && record.username !== record.sub) view.username = record.username;
      if (record) view.tokenExp = record.tokenExp;
      if (status.userAgent !== undefined) view.userAgent = status.userAgent;
      return view;
    }
    const client = broker?.client(id);
    if (!client) return undefined;
    const connectionId = mqttConnectionId(id);
    const session = iot?.session(id);
    const rooms = await store.listConnectionRooms(connectionId).catch(() => []);
    const view: ConnectionView = {
      connectionId,
      channel,
      clientId: id,
      user: subOfClientId(id),
      groups: [],
      connectedAt: client.connectedAt,
      rooms,
      transport: client.transport,
      protocol: client.protocolVersion === 5 ? '5' : '3.1.1',
      console: false,
    };
    if (session) {
      view.lastActiveAt = session.lastActiveAt;
      view.tokenExp = Math.floor(session.disconnectAt / 1000);
    }
    if (client.remoteAddress) view.sourceIp = client.remoteAddress.replace(/^::ffff:/, '');
    return view;
  });
  return views
    .flatMap((result) => (result.status === 'fulfilled' && result.value ? [result.value] : []))
    .sort((a, b) => a.connectedAt - b.connectedAt);
}

/**
 * Disconnects a connection as the backend's `disconnectUser` would: WebSocket through `@connections`'s
 * `DELETE` semantics (`$disconnect` then runs), MQTT as IoT's `DeleteConnection` (the `disconnected` lifecycle
 * event then runs the presence rule).
 * @throws {AdminNotFoundError} no such live connection
 */
export async function disconnectConnection(sources: StateSources, connectionId: string): Promise<void> {
  if (isMqttConnectionId(connectionId)) {
    const client = sources.broker?.client(connectionId.slice(mqttConnectionId('').length));
    if (!client) throw new AdminNotFoundError(`No MQTT client ${connectionId} is connected.`);
    await client.disconnect(ReasonCode.AdministrativeAction, 'API_INITIATED_DISCONNECT');
    return;
  }
  if (!sources.gateway.disconnect(connectionId))
    throw new AdminNotFoundError(`No WebSocket connection ${connectionId} is open.`);
}

function attr(item: Record<string, { S?: string; N?: string; BOOL?: boolean }>, name: string) {
  return item[name];
}

/** Every room in the table, by name. */
export async function listRooms(sources: StateSources): Promise<RoomSummary[]> {
  const rooms: RoomSummary[] = [];
  let start: ScanCommandOutput['LastEvaluatedKey'];
  for (let page = 0; page < MAX_SCAN_PAGES; page++) {
    const output: ScanCommandOutput = await sources.dynamodb.send(
      new ScanCommand({
        TableName: sources.tableName,
        FilterExpression: 'begins_with(#pk, :room) AND #sk = :meta',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
        ExpressionAttributeValues: { ':room': { S: keys.room('').pk }, ':meta': { S: keys.room('').sk } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of output.Items ?? []) {
      const room = attr(item, 'room')?.S;
      if (room === undefined) continue;
      rooms.push({
        room,
        visibility: attr(item, 'visibility')?.S === 'private' ? 'private' : 'public',
        owner: attr(item, 'owner')?.S ?? '',
        createdAt: Number(attr(item, 'createdAt')?.N ?? 0),
        lastSeq: Number(attr(item, 'lastSeq')?.N ?? 0),
        closed: attr(item, 'closed')?.BOOL === true,
      });
    }
    start = output.LastEvaluatedKey;
    if (!start) break;
  }
  return rooms.sort((a, b) => (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
}

/**
 * A room with its members, who is subscribed to it now, and its latest messages.
 * @throws {AdminNotFoundError} no such room
 */
export async function readRoom(sources: StateSources, room: string): Promise<RoomDetail> {
  const { store } = sources;
  const record = await store.getRoom(room);
  if (!record) throw new AdminNotFoundError(`Room "${room}" does not exist.`);
  const [members, subscriptions, page] = await Promise.all([
    store.listRoomMembers(room),
    store.listRoomSubscriptions(room),
    store.listMessages(room, { limit: ROOM_MESSAGES }),
  ]);
  const online = new Map<string, string[]>();
  for (const subscription of subscriptions) {
    online.set(subscription.sub, [...(online.get(subscription.sub) ?? []), subscription.connectionId]);
  }
  return {
    room: record.room,
    visibility: record.visibility,
    owner: record.owner,
    createdAt: record.createdAt,
    lastSeq: record.lastSeq,
    closed: record.closed === true,
    members: [...members].sort(),
    online: [...online]
      .map(([user, connectionIds]) => ({ user, connectionIds }))
      .sort((a, b) => (a.user < b.user ? -1 : 1)),
    messages: page.messages.map((m) => ({ seq: m.seq, id: m.id, from: m.from, ts: m.ts, body: m.body })),
  };
}
