/**
 * Sending a chat message: validate membership, de-duplicate by the sender's client id, take the next
 * per-room `seq`, store, fan out, acknowledge.
 *
 * There are no transactions (dynalite lacks them and they cost double), so the steps are ordered to be
 * safe on their own. A de-duplication record per (room, sender, client id) moves claimed -> reserved
 * (seq taken) -> stored, and only the request holding the record's current message id may move it on:
 * - a duplicate arriving while the original is in flight waits for it and answers the same ack;
 * - a claim not stored after `LIMITS.dedupeClaimStaleMs` (longer than any request can live) is taken over
 *   by a retry; if a seq was already reserved, the retry stores the same id at the same seq, so a crash
 *   at any step can neither store a message twice nor lose an acknowledged one;
 * - a crash after taking a seq but before reserving it leaves a gap in seq, never a duplicate;
 * - a request that fails (rather than dies) before its fan-out, e.g. on a throttled or failing table after the
 *   SDK's retries, releases its claim before answering `internal`: the client's resend with the same id takes it
 *   over at once and finishes the job, storing the message once and delivering it once, instead of being
 *   answered `conflict` until the claim is stale.
 *
 * The fan-out runs in this invocation for rooms of up to `LIMITS.chatFanoutInlineMax` connections; a larger room
 * gets the message through the fan-out queue (see batches.ts), and the ack follows the enqueue. Should the queue
 * refuse, the refused batches run in this invocation after all (`enqueueOrRun`): the message is stored, and from
 * then on it must reach its room.
 */
import {
  type AckFrame,
  type ChatFrame,
  ConflictError,
  LIMITS,
  NotJoinedError,
  RoomClosedError,
  type SendFrame,
  UnknownRoomError,
} from '@viba-realtime/protocol';
import { enqueueOrRun, splitIntoBatches } from './batches.js';
import type { Caller, CoreDeps } from './deps.js';
import { deliverTo, subscriptionTargets } from './fanout.js';
import { newMessageId } from './ids.js';
import type { DedupeRecord, StoredMessage, SubscriptionRecord } from './ports.js';

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

function isStored(record: DedupeRecord): record is DedupeRecord & { seq: number; ts: number } {
  return record.stored === true && record.seq !== undefined && record.ts !== undefined;
}

export async function send(deps: CoreDeps, caller: Caller, frame: SendFrame): Promise<AckFrame> {
  if (!(await deps.store.isSubscribed(frame.room, caller.connectionId))) {
    // Only on this rare path is the room read: a closed room has no subscriptions left.
    if ((await deps.store.getRoom(frame.room))?.closed) throw new RoomClosedError(frame.room);
    throw new NotJoinedError(frame.room);
  }
  return storeAndFanOut(deps, { sub: caller.sub, connectionId: caller.connectionId }, frame);
}

/**
 * A chat message from the app's backend (the publisher's `sendToRoom`): to a room that exists and is open,
 * from `from` (a user the backend speaks for) or `backend`; idempotent per (room, from, id) like a client's
 * send, and delivered to every connection in the room.
 * @throws {UnknownRoomError} no such room; {@link RoomClosedError} the room is closed
 */
export async function sendAsBackend(deps: CoreDeps, from: string, frame: SendFrame): Promise<AckFrame> {
  const room = await deps.store.getRoom(frame.room);
  if (room === undefined) throw new UnknownRoomError(frame.room);
  if (room.closed) throw new RoomClosedError(frame.room);
  return storeAndFanOut(deps, { sub: from }, frame);
}

/** Who a message is from: a user (and the connection it came on, which the fan-out skips). */
interface Sender {
  sub: string;
  connectionId?: string;
}

async function storeAndFanOut(deps: CoreDeps, caller: Sender, frame: SendFrame): Promise<AckFrame> {
  const held = await holdClaim(deps, caller, frame);
  if ('duplicate' in held) return held.duplicate;

  let message: StoredMessage;
  let subscriptions: SubscriptionRecord[];
  try {
    message = await storeOnce(deps, caller, frame, held);
    // Read before any post, so a failure here means nobody has the message yet and the resend may deliver it.
    subscriptions = await deps.store.listRoomSubscriptions(frame.room);
  } catch (error) {
    await releaseClaim(deps, caller, frame, held);
    throw error;
  }
  const { seq } = message;

  const chat = toChatFrame(message);
  const targets = subscriptionTargets(subscriptions, caller.connectionId);
  if (targets.length > LIMITS.chatFanoutInlineMax) {
    if (deps.queue !== undefined) {
      // Never throws either: a batch the queue refuses runs here (the message is stored, it must reach the room).
      const queued = await enqueueOrRun({ ...deps, queue: deps.queue }, splitIntoBatches(message.id, chat, targets), {
        room: frame.room,
        seq,
      });
      deps.log.info('message sent', {
        room: frame.room,
        seq,
        from: caller.sub,
        connections: targets.length,
        ...queued,
      });
      return ack(frame, message);
    }
    deps.log.warn('large room delivered inline: no fan-out queue configured', {
      room: frame.room,
      connections: targets.length,
    });
  }
  // Never throws: from the first post on, the request must succeed, or a resend would deliver the message again.
  const { result } = await deliverTo(deps, chat, targets, { room: frame.room });
  deps.log.info('message sent', { room: frame.room, seq, from: caller.sub, ...result });
  return ack(frame, message);
}

function ack(frame: SendFrame, message: StoredMessage): AckFrame {
  return {
    type: 'ack',
    action: 'send',
    ref: frame.id,
    room: frame.room,
    id: message.id,
    seq: message.seq,
    ts: message.ts,
  };
}

/** Stores the held claim's message (or finds it stored by the request it took over) and marks the claim stored. */
async function storeOnce(deps: CoreDeps, caller: Sender, frame: SendFrame, held: HeldClaim): Promise<StoredMessage> {
  const { store, clock } = deps;
  let message: StoredMessage | undefined;
  if (held.seq !== undefined) {
    // Taken over with a seq reserved but never marked stored: the message is either already there, or
    // its seq is abandoned for good. Storing it there now would put it behind later seqs that clients
    // have already read past, so it gets a fresh seq instead.
    message = await store.abandonSeq(frame.room, held.seq);
    if (message !== undefined && message.id !== held.messageId) {
      throw new Error(`Seq ${held.seq} of room "${frame.room}" holds message ${message.id}, not ${held.messageId}.`);
    }
  }
  if (message === undefined) {
    const seq = await store.nextSeq(frame.room);
    const ts = clock();
    if (!(await store.reserveSeq(frame.room, caller.sub, frame.id, held.messageId, { seq, ts }, held.seq))) {
      // A retry took the claim over meanwhile; it stores the message. This seq stays a gap.
      throw new ConflictError(`Message "${frame.id}" was taken over by a retry.`);
    }
    message = {
      id: held.messageId,
      room: frame.room,
      // The sender is whoever the token says, never a field of the frame.
      from: caller.sub,
      seq,
      ts,
      body: frame.body,
      ref: frame.id,
    };
    await store.putMessage(message);
  }
  if (!(await store.markStored(frame.room, caller.sub, frame.id, held.messageId))) {
    // Only a takeover between our put and this mark gets here; the message is stored once either way.
    deps.log.warn('claim changed hands after the message was stored', { room: frame.room, clientId: frame.id });
  }
  return message;
}

/**
 * Gives the claim up after a failure before the fan-out (see the module's description). Best effort: if the table
 * refuses this too, the claim is taken over once it is stale, as after a crash.
 */
async function releaseClaim(deps: CoreDeps, caller: Sender, frame: SendFrame, held: HeldClaim): Promise<void> {
  try {
    await deps.store.releaseClaim(frame.room, caller.sub, frame.id, held.messageId, held.claimedAt);
  } catch (error) {
    deps.log.warn('could not release the claim of a failed send; a resend takes it over once it is stale', {
      room: frame.room,
      clientId: frame.id,
      error,
    });
  }
}

/** The de-duplication record this request holds: its message id, when it was claimed, any seq reserved. */
type HeldClaim = Pick<DedupeRecord, 'messageId' | 'claimedAt' | 'seq' | 'ts'>;

/** The claim this request now holds, or the ack of the message already stored. */
type ClaimOutcome = HeldClaim | { duplicate: AckFrame };

/** Claims the client id for this request: a new claim, a takeover of a dead one, or the stored duplicate. */
async function holdClaim(deps: CoreDeps, caller: Sender, frame: SendFrame): Promise<ClaimOutcome> {
  const { store, clock } = deps;
  const mine = newMessageId(clock());
  for (let poll = 0; ; poll++) {
    const claimedAt = clock();
    const claim = await store.claimDedupe(frame.room, caller.sub, frame.id, mine, claimedAt);
    if (claim.claimed) return { messageId: mine, claimedAt };
    const existing = claim.existing;
    if (isStored(existing)) return { duplicate: duplicateAck(frame, existing) };
    const now = clock();
    if (existing.claimedAt < now - LIMITS.dedupeClaimStaleMs) {
      // A reserved seq keeps its message id, so a message found stored under it is recognised as this one.
      const messageId = existing.seq === undefined ? mine : existing.messageId;
      if (await store.takeOverClaim(frame.room, caller.sub, frame.id, existing, messageId, now)) {
        return {
          messageId,
          claimedAt: now,
          ...(existing.seq === undefined ? {} : { seq: existing.seq, ts: existing.ts }),
        };
      }
      // Another retry took it over first: look again, after a pause like any other wait.
    } else if (poll >= IN_FLIGHT_POLLS) {
      throw new ConflictError(`Message "${frame.id}" is still being processed.`);
    }
    await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_POLL_MS));
  }
}
