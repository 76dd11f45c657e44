/**
 * Fan-out: one frame to every connection subscribed to a room. Posts run with bounded concurrency; a
 * connection that API Gateway reports gone (410) is removed from the store, so a client that vanished
 * without a close frame is cleaned up at the next message instead of being posted to forever.
 */
import { LIMITS, type PresenceFrame, type ServerFrame } from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import type { CoreDeps } from './deps.js';
import type { SubscriptionRecord } from './ports.js';

export interface FanOutResult {
  /** Connections the frame was handed to. */
  delivered: number;
  /** Connections found gone and removed. */
  gone: number;
  /** Connections that still failed after retries (kept; they may recover). */
  failed: number;
}

export async function fanOutToRoom(
  deps: CoreDeps,
  room: string,
  frame: ServerFrame,
  options: { exclude?: string } = {},
): Promise<FanOutResult> {
  const subscriptions = await deps.store.listRoomSubscriptions(room);
  return deliver(
    deps,
    room,
    frame,
    subscriptions.filter((s) => s.connectionId !== options.exclude),
  );
}

async function deliver(
  deps: CoreDeps,
  room: string,
  frame: ServerFrame,
  targets: readonly SubscriptionRecord[],
): Promise<FanOutResult> {
  const result: FanOutResult = { delivered: 0, gone: 0, failed: 0 };
  const outcomes = await mapWithConcurrency(targets, LIMITS.deliveryConcurrency, async (target) => {
    const outcome = await deps.delivery.post(target.connectionId, frame);
    if (outcome === 'gone') await deps.store.deleteConnection(target.connectionId);
    return outcome;
  });
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') {
      result[outcome.value] += 1;
    } else {
      // A failed post must not fail the others nor the sender's request; it is logged with its cause.
      result.failed += 1;
      deps.log.error('fan-out post failed', { room, connectionId: targets[i]?.connectionId, error: outcome.reason });
    }
  });
  deps.log.debug('fan-out', { room, type: frame.type, targets: targets.length, ...result });
  return result;
}

/**
 * Tells a room's other connections that `user` joined or left. Presence is per user, not per connection:
 * call it after the connection's own subscription was added or removed, and nothing is announced while
 * another connection of the same user is (still, or already) in the room.
 */
export async function announcePresence(
  deps: CoreDeps,
  room: string,
  user: string,
  state: PresenceFrame['state'],
  connectionId: string,
): Promise<FanOutResult> {
  const others = (await deps.store.listRoomSubscriptions(room)).filter((s) => s.connectionId !== connectionId);
  if (others.some((s) => s.sub === user)) return { delivered: 0, gone: 0, failed: 0 };
  const frame: PresenceFrame = { type: 'presence', room, user, state, ts: deps.clock() };
  return deliver(deps, room, frame, others);
}
