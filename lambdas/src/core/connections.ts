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

/**
 * How long an MQTT subscription lives while no `connected` event vouches for its session: one made by a
 * request that IoT's rules ran after the session's `disconnected` (a client that publishes a join and
 * disconnects at once), or by a new session whose `connected` is not recorded yet. IoT sends lifecycle events
 * within seconds; a live session's `connected` then extends the subscription to the connection's own expiry,
 * and an orphan is gone (from fan-out and presence) after this instead of after a day.
 */
export const MQTT_PENDING_SUBSCRIPTION_SECONDS = 5 * 60;

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
  const recorded = await deps.store.putConnection({
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
  // The session's joins may have run before this event: their subscriptions were pending (see
  // confirmMqttSubscription) and now last as long as the connection.
  if (recorded) await deps.store.setSubscriptionsExpiry(connectionId, connectionExpiresAt(connectedAt, connectionId));
  return recorded;
}

/**
 * Run by a `join` of an MQTT connection after its subscription is written. IoT's rules give no order between
 * a client's requests and its lifecycle events, and no session id to tell which session sent a request: a
 * join can run after its session's `disconnected` was applied, and no later event would remove what it
 * wrote. So unless a recorded `connected` vouches for the connection, the subscription is made pending
 * ({@link MQTT_PENDING_SUBSCRIPTION_SECONDS}); the record is read again afterwards, because a `connected`
 * applied in between extended the subscriptions before this shortened it.
 */
export async function confirmMqttSubscription(deps: CoreDeps, room: string, caller: Caller): Promise<void> {
  const { store } = deps;
  if ((await store.getConnection(caller.connectionId)) !== undefined) return;
  const pendingUntil = Math.ceil(deps.clock() / 1000) + MQTT_PENDING_SUBSCRIPTION_SECONDS;
  await store.setSubscriptionsExpiry(caller.connectionId, pendingUntil, room);
  const record = await store.getConnection(caller.connectionId);
  if (record !== undefined) {
    await store.setSubscriptionsExpiry(
      caller.connectionId,
      connectionExpiresAt(record.connectedAt, caller.connectionId),
      room,
    );
  }
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
  const pendingUntil = Math.ceil(deps.clock() / 1000) + MQTT_PENDING_SUBSCRIPTION_SECONDS;
  const gone = await deps.store.markConnectionGone(connectionId, event.lifecycle, expiresAt, pendingUntil);
  if (gone === undefined) return false;
  if (gone.pending > 0) {
    // A newer session's `connected` applied while this ran extended its subscriptions before this made them
    // pending, and they would then lapse after MQTT_PENDING_SUBSCRIPTION_SECONDS on a live connection: the
    // record is read again, as in confirmMqttSubscription (a race of reconnect storms, seen while tracing
    // bench/soak.ts's lost subscriptions). Without pending subscriptions there is nothing to extend.
    const newer = await deps.store.getConnection(connectionId);
    if (newer !== undefined)
      await deps.store.setSubscriptionsExpiry(connectionId, connectionExpiresAt(newer.connectedAt, connectionId));
  }
  for (const room of gone.rooms) await announcePresence(deps, room, sub, 'left', connectionId);
  return true;
}
