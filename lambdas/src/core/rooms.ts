/**
 * Joining, leaving and reading rooms. A room is created by its first `join` (public unless asked
 * otherwise) and owned by that user. Private rooms admit members only; membership is granted by the
 * owner's backend (issue: backend publisher) or by creating the room.
 */
import {
  type AckFrame,
  ForbiddenError,
  type HistoryFrame,
  type HistoryPageFrame,
  type JoinFrame,
  type LeaveFrame,
  LIMITS,
  TooManyRoomsError,
} from '@viba-realtime/protocol';
import { connectionExpiresAt } from './connections.js';
import type { Caller, CoreDeps } from './deps.js';
import { announcePresence } from './fanout.js';
import type { RoomRecord, StoredMessage } from './ports.js';
import { toChatFrame } from './send.js';

/** Public rooms admit anyone signed in; private rooms their owner and members. */
async function assertMayEnter(deps: CoreDeps, room: RoomRecord, sub: string): Promise<void> {
  if (room.visibility === 'public' || room.owner === sub) return;
  if (await deps.store.isMember(room.room, sub)) return;
  throw new ForbiddenError(`Room "${room.room}" is private and you are not a member.`, {
    details: { room: room.room },
  });
}

export async function join(deps: CoreDeps, caller: Caller, frame: JoinFrame): Promise<AckFrame> {
  const { store } = deps;
  const joined = await store.listConnectionRooms(caller.connectionId);
  const already = joined.includes(frame.room);
  if (!already && joined.length >= LIMITS.maxRoomsPerConnection) {
    throw new TooManyRoomsError(LIMITS.maxRoomsPerConnection);
  }

  let room = await store.getRoom(frame.room);
  if (room === undefined) {
    const created = await store.createRoom({
      room: frame.room,
      visibility: frame.body?.visibility ?? 'public',
      owner: caller.sub,
      createdAt: deps.clock(),
    });
    room = created.room;
  }
  await assertMayEnter(deps, room, caller.sub);
  if (room.visibility === 'public') await store.addMember(frame.room, caller.sub);

  if (!already) {
    await store.subscribe(
      { room: frame.room, connectionId: caller.connectionId, sub: caller.sub },
      connectionExpiresAt(caller.connectedAt),
    );
    await announcePresence(deps, frame.room, caller.sub, 'joined', caller.connectionId);
  }
  return {
    type: 'ack',
    action: 'join',
    ...(frame.id === undefined ? {} : { ref: frame.id }),
    room: frame.room,
    seq: room.lastSeq,
    visibility: room.visibility,
    ts: deps.clock(),
  };
}

export async function leave(deps: CoreDeps, caller: Caller, frame: LeaveFrame): Promise<AckFrame> {
  const wasJoined = await deps.store.isSubscribed(frame.room, caller.connectionId);
  if (wasJoined) {
    await deps.store.unsubscribe(frame.room, caller.connectionId);
    await announcePresence(deps, frame.room, caller.sub, 'left', caller.connectionId);
  }
  return {
    type: 'ack',
    action: 'leave',
    ...(frame.id === undefined ? {} : { ref: frame.id }),
    room: frame.room,
    ts: deps.clock(),
  };
}

/** Reads a page of a room's history. Public rooms are readable by anyone signed in; private rooms only by
 * members. A room that does not exist has an empty history. */
export async function history(deps: CoreDeps, caller: Caller, frame: HistoryFrame): Promise<HistoryPageFrame> {
  const ref = frame.id === undefined ? {} : { ref: frame.id };
  const room = await deps.store.getRoom(frame.room);
  if (room === undefined) return { type: 'history', ...ref, room: frame.room, messages: [] };
  await assertMayEnter(deps, room, caller.sub);
  const page = await deps.store.listMessages(frame.room, {
    ...(frame.body?.after === undefined ? {} : { after: frame.body.after }),
    ...(frame.body?.before === undefined ? {} : { before: frame.body.before }),
    limit: frame.body?.limit ?? LIMITS.historyPageDefault,
  });
  return {
    type: 'history',
    ...ref,
    room: frame.room,
    messages: page.messages.map((m: StoredMessage) => toChatFrame(m)),
    ...(page.next === undefined ? {} : { next: page.next }),
  };
}
