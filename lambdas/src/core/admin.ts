/**
 * Room management and disconnects for the app's backend (the publisher): things no client may do. Each
 * validates its input and names what is wrong with a typed error; none leaves half-written state that a
 * repeat of the same call would not finish.
 */
import {
  assertRoomName,
  assertUserId,
  BACKEND_SENDER,
  type ErrorFrame,
  LIMITS,
  RoomClosedError,
  type RoomVisibility,
  TooManyRecipientsError,
  UnknownRoomError,
  ValidationError,
} from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import type { CoreDeps } from './deps.js';
import { announcePresence, deliverTo } from './fanout.js';
import type { RoomRecord } from './ports.js';

/** Users one grant or revoke may name (the same bound as a notify). */
const MAX_USERS_PER_CALL = LIMITS.maxNotifyRecipients;

function assertUserIds(userIds: readonly string[]): string[] {
  if (!Array.isArray(userIds) || userIds.length === 0)
    throw new ValidationError('invalid_user', 'Give at least one user id.');
  if (userIds.length > MAX_USERS_PER_CALL) throw new TooManyRecipientsError(userIds.length, MAX_USERS_PER_CALL);
  for (const userId of userIds) assertUserId(userId);
  return [...new Set(userIds)];
}

async function existingRoom(deps: CoreDeps, room: string): Promise<RoomRecord> {
  assertRoomName(room);
  const record = await deps.store.getRoom(room);
  if (record === undefined) throw new UnknownRoomError(room);
  return record;
}

/** Options of {@link createRoom}. */
export interface CreateRoomOptions {
  /** Default `private`: rooms a backend creates are usually for chosen members. */
  visibility?: RoomVisibility;
  /** The owner's `sub`; default `backend` (no user owns it). */
  owner?: string;
  /** Members granted in the same call. */
  members?: readonly string[];
}

/**
 * Creates a room, or finds it if it exists (then its visibility and owner are kept as they are), and grants
 * the given members. Returns the room as stored and whether this call created it.
 */
export async function createRoom(
  deps: CoreDeps,
  room: string,
  options: CreateRoomOptions = {},
): Promise<{ room: RoomRecord; created: boolean }> {
  assertRoomName(room);
  // Only a missing visibility defaults: a null one is refused like any other bad value (as a null owner is).
  const visibility = options.visibility === undefined ? 'private' : options.visibility;
  if (visibility !== 'public' && visibility !== 'private') {
    throw new ValidationError('bad_request', 'visibility must be "public" or "private".');
  }
  if (options.owner !== undefined) assertUserId(options.owner);
  // No members: none given, or an empty list. Anything else (null, a string) is checked, and refused, as user ids.
  const none = options.members === undefined || (Array.isArray(options.members) && options.members.length === 0);
  const members = none ? [] : assertUserIds(options.members as readonly string[]);
  const result = await deps.store.createRoom({
    room,
    visibility,
    owner: options.owner ?? BACKEND_SENDER,
    createdAt: deps.clock(),
  });
  if (result.room.closed) throw new RoomClosedError(room);
  await mapWithConcurrency(members, 16, (sub) => deps.store.addMember(room, sub));
  deps.log.info('room created by the backend', { room, created: result.created, members: members.length });
  return result;
}

/** Makes users members of a room (what a private room requires to join). Idempotent. */
export async function grant(deps: CoreDeps, room: string, userIds: readonly string[]): Promise<void> {
  const users = assertUserIds(userIds);
  const record = await existingRoom(deps, room);
  if (record.closed) throw new RoomClosedError(room);
  const results = await mapWithConcurrency(users, 16, (sub) => deps.store.addMember(room, sub));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  deps.log.info('members granted', { room, users: users.length });
}

/**
 * Takes membership away, and unsubscribes the users' connections from the room at once (their rooms are
 * told they left): a revoked user receives nothing more from the room, public or private. In a public room
 * they may join again; to keep them out, make the room private. Idempotent.
 */
export async function revoke(deps: CoreDeps, room: string, userIds: readonly string[]): Promise<number> {
  const users = new Set(assertUserIds(userIds));
  await existingRoom(deps, room);
  for (const sub of users) await deps.store.removeMember(room, sub);
  const subscriptions = (await deps.store.listRoomSubscriptions(room)).filter((s) => users.has(s.sub));
  for (const s of subscriptions) {
    await deps.store.unsubscribe(room, s.connectionId);
    await announcePresence(deps, room, s.sub, 'left', s.connectionId);
  }
  deps.log.info('members revoked', { room, users: users.size, connections: subscriptions.length });
  return subscriptions.length;
}

/**
 * Closes a room for good: no more joins or sends (`room_closed`). Every connection in it gets a
 * `room_closed` error frame naming the room, then is unsubscribed. History stays readable to members until
 * it expires. Returns how many connections were in the room.
 */
export async function closeRoom(deps: CoreDeps, room: string): Promise<number> {
  assertRoomName(room);
  if (!(await deps.store.closeRoom(room))) throw new UnknownRoomError(room);
  const subscriptions = await deps.store.listRoomSubscriptions(room);
  const error = new RoomClosedError(room);
  const frame: ErrorFrame = { type: 'error', code: error.code, message: error.message, room };
  await deliverTo(deps, frame, subscriptions, { room, closing: true });
  for (const s of subscriptions) await deps.store.unsubscribe(room, s.connectionId);
  deps.log.info('room closed by the backend', { room, connections: subscriptions.length });
  return subscriptions.length;
}

/**
 * Disconnects every connection of a user on both channels (WebSocket: `@connections` DELETE, whose
 * `$disconnect` cleans up; MQTT: IoT's DeleteConnection, whose lifecycle event cleans up). The user can
 * reconnect with a valid token: revoke the token in Cognito to keep them out. Returns the connections closed.
 */
export async function disconnectUser(deps: CoreDeps, userId: string): Promise<number> {
  assertUserId(userId);
  const connections = await deps.store.listUserConnections(userId);
  const results = await mapWithConcurrency(connections, 16, (c) => deps.delivery.close(c.connectionId));
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) {
    deps.log.error('some connections could not be closed', { userId, failed: failed.length });
    throw (failed[0] as PromiseRejectedResult).reason;
  }
  deps.log.info('user disconnected by the backend', { userId, connections: connections.length });
  return connections.length;
}
