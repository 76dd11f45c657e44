/**
 * Connection lifecycle: `$connect` records who is connected, `$disconnect` removes the connection, its
 * room subscriptions, and tells the rooms' other connections that the user left.
 */
import { APIGW_LIMITS, CLIENT_ID_SEPARATOR, IOT_LIMITS } from '@viba-realtime/protocol';
import type { Caller, CoreDeps } from './deps.js';
import { announcePresence } from './fanout.js';
import type { ConnectionLifecycle } from './ports.js';

/** Slack past API Gateway's 2-hour cut before a connection record expires on its own (TTL). */
const CONNECTION_TTL_MARGIN_SECONDS = 10 * 60;

/** Prefix of the connection ids of MQTT clients, so one store and one fan-out serve both channels. */
export const MQTT_CONNECTION_PREFIX = 'mqtt:';

/** The connection id of an MQTT client: `mqtt:{clientId}` (IoT has no connection id of its own). */
export function mqttConnectionId(clientId: string): string {
  return `${MQTT_CONNECTION_PREFIX}${clientId}`;
}

/** Whether a connection id is an MQTT client's (see {@link mqttConnectionId}). */
export function isMqttConnectionId(connectionId: string): boolean {
  return connectionId.startsWith(MQTT_CONNECTION_PREFIX);
}

/**
 * The user an MQTT client id belongs to: its part before `CLIENT_ID_SEPARATOR` (see `clientIdFor`). Subs
 * cannot contain the separator and the IoT policy lets a user connect only with their own ids, so no lookup
 * is needed.
 */
export function subOfClientId(clientId: string): string {
  const at = clientId.indexOf(CLIENT_ID_SEPARATOR);
  return at === -1 ? clientId : clientId.slice(0, at);
}

/**
 * Epoch seconds after which the records of a connection opened at `connectedAt` (ms) are stale: API
 * Gateway cuts WebSocket connections at 2 hours; an MQTT connection lives at most the custom authorizer's
 * longest `disconnectAfterInSeconds` (24 hours).
 */
export function connectionExpiresAt(connectedAt: number, connectionId?: string): number {
  const longest =
    connectionId !== undefined && isMqttConnectionId(connectionId)
      ? IOT_LIMITS.maxAuthorizerSeconds * 1000
      : APIGW_LIMITS.maxConnectionMs;
  return Math.ceil((connectedAt + longest) / 1000) + CONNECTION_TTL_MARGIN_SECONDS;
}

export async function connect(deps: CoreDeps, caller: Caller): Promise<void> {
  await deps.store.putConnection({
    connectionId: caller.connectionId,
    sub: caller.sub,
    username: caller.username,
    groups: caller.groups,
    channel: 'ws',
    connectedAt: caller.connectedAt,
    tokenExp: caller.tokenExp,
    expiresAt: connectionExpiresAt(caller.connectedAt, caller.connectionId),
  });
}

export async function disconnect(deps: CoreDeps, connectionId: string, sub: string | undefined): Promise<void> {
  const rooms = await deps.store.deleteConnection(connectionId);
  if (sub === undefined) return;
  for (const room of rooms) await announcePresence(deps, room, sub, 'left', connectionId);
}

/** What an IoT lifecycle event tells about an MQTT session. */
export interface MqttSessionEvent {
  clientId: string;
  /** IoT's per-client-id `versionNumber` and the event's `timestamp` (epoch ms). */
  lifecycle: ConnectionLifecycle;
}

/**
 * Records an MQTT client as connected (IoT's `connected` lifecycle event). Conditional on the event's
 * version, so a late or repeated event never overwrites a newer session; returns whether it wrote. The
 * lifecycle event carries neither username nor groups nor the token's expiry: the user is the client id's
 * `sub`, and the custom authorizer's `disconnectAfterInSeconds` (never past the token's expiry) bounds the
 * connection, so `tokenExp` is that bound's longest possible value and no request checks it.
 */
export async function mqttConnected(deps: CoreDeps, event: MqttSessionEvent): Promise<boolean> {
  const sub = subOfClientId(event.clientId);
  const connectionId = mqttConnectionId(event.clientId);
  const connectedAt = event.lifecycle.timestamp;
  return deps.store.putConnection({
    connectionId,
    sub,
    username: sub,
    groups: [],
    channel: 'mqtt',
    connectedAt,
    tokenExp: Math.ceil(connectedAt / 1000) + IOT_LIMITS.maxAuthorizerSeconds,
    expiresAt: connectionExpiresAt(connectedAt, connectionId),
    lifecycle: event.lifecycle,
  });
}

/**
 * Ends an MQTT session (IoT's `disconnected` lifecycle event): unless a newer session of the client id is
 * recorded, removes its subscriptions and tells the rooms' other connections that the user left. Returns
 * whether the event was applied (false for a stale one). IoT never answers 410 for MQTT, so this event is
 * what cleans MQTT subscriptions up.
 */
export async function mqttDisconnected(deps: CoreDeps, event: MqttSessionEvent): Promise<boolean> {
  const sub = subOfClientId(event.clientId);
  const connectionId = mqttConnectionId(event.clientId);
  // The mark outlives any late `connected` of this session: IoT delivers those within minutes, not a day.
  const expiresAt = connectionExpiresAt(event.lifecycle.timestamp, connectionId);
  const rooms = await deps.store.markConnectionGone(connectionId, event.lifecycle, expiresAt);
  if (rooms === undefined) return false;
  for (const room of rooms) await announcePresence(deps, room, sub, 'left', connectionId);
  return true;
}
