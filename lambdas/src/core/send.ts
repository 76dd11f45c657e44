/**
 * Sending a chat message: validate membership, de-duplicate by the sender's client id, take the next
 * per-room `seq`, store, fan out, acknowledge.
 *
 * There are no transactions (DynamoDB Local emulators lack them and they cost double), so the steps are
 * ordered to be safe on their own: the de-duplication claim comes first, so two deliveries of the same
 * client id can never both store a message; a claim left behind by a crashed request is taken over after
 * `LIMITS.dedupeClaimStaleMs`. A crash between taking a seq and storing the message leaves a gap in seq,
 * never a duplicate: clients treat seq as ordered, not dense, once history shows the gap is real.
 */
import {
  type AckFrame,
  type ChatFrame,
  ConflictError,
  LIMITS,
  NotJoinedError,
  type SendFrame,
} from '@viba-realtime/protocol';
import type { Caller, CoreDeps } from './deps.js';
import { fanOutToRoom } from './fanout.js';
import { newMessageId } from './ids.js';
import type { DedupeRecord, StoredMessage } from './ports.js';

/** How often and how long a duplicate waits for the in-flight original before answering `conflict`. */
const IN_FLIGHT_POLLS = 20;
const IN_FLIGHT_POLL_MS = 100;

export function toChatFrame(message: StoredMessage): ChatFrame {
  return {
    type: 'chat',
    id: message.id,
    room: message.room,
    from: message.from,
    seq: message.seq,
    ts: message.ts,
    body: message.body,
    ref: message.ref,
  };
}

function duplicateAck(frame: SendFrame, record: DedupeRecord & { seq: number; ts: number }): AckFrame {
  return {
    type: 'ack',
    action: 'send',
    ref: frame.id,
    room: frame.room,
    id: record.messageId,
    seq: record.seq,
    ts: record.ts,
    duplicate: true,
  };
}

function isComplete(record: DedupeRecord): record is DedupeRecord & { seq: number; ts: number } {
  return record.seq !== undefined && record.ts !== undefined;
}

export async function send(deps: CoreDeps, caller: Caller, frame: SendFrame): Promise<AckFrame> {
  const { store, clock } = deps;
  if (!(await store.isSubscribed(frame.room, caller.connectionId))) throw new NotJoinedError(frame.room);

  const messageId = newMessageId(clock());
  let claim = await store.claimDedupe(frame.room, caller.sub, frame.id, messageId, clock());
  for (let poll = 0; !claim.claimed; poll++) {
    const existing = claim.existing;
    if (isComplete(existing)) return duplicateAck(frame, existing);
    const now = clock();
    const staleBefore = now - LIMITS.dedupeClaimStaleMs;
    if (existing.claimedAt < staleBefore) {
      if (await store.takeOverStaleClaim(frame.room, caller.sub, frame.id, staleBefore, messageId, now)) break;
    }
    if (poll >= IN_FLIGHT_POLLS) throw new ConflictError(`Message "${frame.id}" is still being processed.`);
    await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_POLL_MS));
    claim = await store.claimDedupe(frame.room, caller.sub, frame.id, messageId, clock());
  }

  const seq = await store.nextSeq(frame.room);
  const message: StoredMessage = {
    id: messageId,
    room: frame.room,
    // The sender is whoever the token says, never a field of the frame.
    from: caller.sub,
    seq,
    ts: clock(),
    body: frame.body,
    ref: frame.id,
  };
  await store.putMessage(message);
  await store.completeDedupe(frame.room, caller.sub, frame.id, { seq, ts: message.ts });

  const result = await fanOutToRoom(deps, frame.room, toChatFrame(message), { exclude: caller.connectionId });
  deps.log.info('message sent', { room: frame.room, seq, from: caller.sub, ...result });
  return { type: 'ack', action: 'send', ref: frame.id, room: frame.room, id: message.id, seq, ts: message.ts };
}
