/**
 * Joining, leaving and reading rooms. A room is created by its first `join` (public unless asked
 * otherwise) and owned by that user. Private rooms admit members only; membership is granted by the
 * owner's backend (issue: backend publisher) or by creating the room.
 */
import {
  type AckFrame,
  type ChatFrame,
  ForbiddenError,
  type HistoryFrame,
  type HistoryPageFrame,
  type JoinFrame,
  type LeaveFrame,
  LIMITS,
  RoomClosedError,
  TooManyRoomsError,
} from '@viba-realtime/protocol';
import { confirmMqttSubscription, connectionExpiresAt, isMqttConnectionId } from './connections.js';
import type { Caller, CoreDeps } from './deps.js';
import { announcePresence } from './fanout.js';
import { fitPage } from './pages.js';
import type { RoomRecord } from './ports.js';
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
  if (room.closed) throw new RoomClosedError(frame.room);
  await assertMayEnter(deps, room, caller.sub);
  if (room.visibility === 'public') await store.addMember(frame.room, caller.sub);

  // An MQTT client id outlives its sessions, and IoT names no session in a request: a reconnect's join finds the
  // old session's subscription. Written again, it is this session's (later than the old session's end), so the
  // old session's late `disconnected` leaves it alone.
  const mqtt = isMqttConnectionId(caller.connectionId);
  let seq = room.lastSeq;
  if (!already || mqtt) {
    // A WebSocket subscription ends with the token: API Gateway keeps an idle connection open past it, and
    // fan-outs must not reach it (the connection is closed when it next acts). MQTT: IoT disconnects at expiry.
    const connectionEnd = connectionExpiresAt(caller.connectedAt, caller.connectionId);
    await store.subscribe(
      {
        room: frame.room,
        connectionId: caller.connectionId,
        sub: caller.sub,
        subscribedAt: deps.clock(),
        ...(mqtt ? {} : { tokenExp: caller.tokenExp }),
      },
      mqtt ? connectionEnd : Math.min(connectionEnd, caller.tokenExp),
    );
    if (mqtt) await confirmMqttSubscription(deps, frame.room, caller);
    // The ack's seq promises that every later message reaches this connection live, so it is read (consistently)
    // after the subscription is written: a send that took its seq between the read above and the subscription
    // fanned out without this connection, and the earlier read would have promised it (found by bench/soak.ts).
    seq = (await store.getRoom(frame.room))?.lastSeq ?? seq;
  }
  if (!already) await announcePresence(deps, frame.room, caller.sub, 'joined', caller.connectionId);
  return {
    type: 'ack',
    action: 'join',
    ...(frame.id === undefined ? {} : { ref: frame.id }),
    room: frame.room,
    seq,
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
  if (room.closed) throw new RoomClosedError(frame.room);
  await assertMayEnter(deps, room, caller.sub);
  const forward = frame.body?.after !== undefined;
  const page = await deps.store.listMessages(frame.room, {
    ...(forward ? { after: frame.body?.after } : {}),
    ...(frame.body?.before === undefined ? {} : { before: frame.body.before }),
    limit: frame.body?.limit ?? LIMITS.historyPageDefault,
  });
  const { messages, cut } = fitInBudget(page.messages.map(toChatFrame), forward, LIMITS.historyPageMaxBytes);
  const next = cut ? cursorAt(messages, forward) : page.next;
  return {
    type: 'history',
    ...ref,
    room: frame.room,
    messages,
    ...(next === undefined ? {} : { next }),
  };
}

/**
 * Keeps as many messages as fit in `budget` bytes, those nearest the cursor first: the oldest when paging
 * forward, the newest when paging backward. API Gateway drops a message over 128 KB, so a page of large
 * bodies is cut short and continued by its cursor instead.
 */
function fitInBudget(messages: ChatFrame[], forward: boolean, budget: number): { messages: ChatFrame[]; cut: boolean } {
  const { kept, cut } = fitPage(forward ? messages : [...messages].reverse(), budget);
  return { messages: forward ? kept : kept.reverse(), cut };
}

function cursorAt(messages: ChatFrame[], forward: boolean): HistoryPageFrame['next'] {
  const edge = forward ? messages[messages.length - 1] : messages[0];
  if (edge === undefined) return undefined;
  return forward ? { after: edge.seq } : { before: edge.seq };
}
