/**
 * Connection lifecycle: `$connect` records who is connected, `$disconnect` removes the connection, its
 * room subscriptions, and tells the rooms' other connections that the user left.
 */
import { APIGW_LIMITS } from '@viba-realtime/protocol';
import type { Caller, CoreDeps } from './deps.js';
import { announcePresence } from './fanout.js';

/** Slack past API Gateway's 2-hour cut before a connection record expires on its own (TTL). */
const CONNECTION_TTL_MARGIN_SECONDS = 10 * 60;

/** Epoch seconds after which the records of a connection opened at `connectedAt` (ms) are stale. */
export function connectionExpiresAt(connectedAt: number): number {
  return Math.ceil((connectedAt + APIGW_LIMITS.maxConnectionMs) / 1000) + CONNECTION_TTL_MARGIN_SECONDS;
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
    expiresAt: connectionExpiresAt(caller.connectedAt),
  });
}

export async function disconnect(deps: CoreDeps, connectionId: string, sub: string | undefined): Promise<void> {
  const rooms = await deps.store.deleteConnection(connectionId);
  if (sub === undefined) return;
  for (const room of rooms) await announcePresence(deps, room, sub, 'left', connectionId);
}
