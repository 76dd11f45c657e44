/**
 * Fan-out: one frame to every connection subscribed to a room. Posts run with bounded concurrency; a
 * connection that API Gateway reports gone (410) is removed from the store, so a client that vanished
 * without a close frame is cleaned up at the next message instead of being posted to forever.
 */
import { LIMITS, type PresenceFrame, type ServerFrame } from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import type { CoreDeps } from './deps.js';
import type { DeliveryTarget, SubscriptionRecord } from './ports.js';

export interface FanOutResult {
  /** Connections the frame was handed to. */
  delivered: number;
  /** Connections found gone and removed. */
  gone: number;
  /** Connections that still failed after retries (kept; they may recover). */
  failed: number;
}

/**
 * One frame to a room's subscriptions, read by the caller (which must know whether the read failed, nothing
 * posted yet, or the posts ran): this never throws, a failed post is counted and logged.
 */
export async function fanOutToSubscriptions(
  deps: CoreDeps,
  room: string,
  frame: ServerFrame,
  subscriptions: readonly SubscriptionRecord[],
  options: { exclude?: string } = {},
): Promise<FanOutResult> {
  const targets = subscriptions.filter((s) => s.connectionId !== options.exclude);
  const { result } = await deliverTo(deps, frame, targets, { room });
  return result;
}

/**
 * Delivers one frame to `targets` with bounded concurrency: a target found gone (410) is removed with its
 * subscriptions and its rooms are told it left; a failed post (after the delivery's retries) is counted and
 * logged, never thrown. Returns the counts and the targets that failed, in input order.
 */
export async function deliverTo(
  deps: CoreDeps,
  frame: ServerFrame,
  targets: readonly DeliveryTarget[],
  context: Record<string, unknown> = {},
): Promise<{ result: FanOutResult; failed: DeliveryTarget[] }> {
  const result: FanOutResult = { delivered: 0, gone: 0, failed: 0 };
  const failed: DeliveryTarget[] = [];
  const outcomes = await mapWithConcurrency(targets, LIMITS.deliveryConcurrency, async (target) => {
    const outcome = await deps.delivery.post({ connectionId: target.connectionId, sub: target.sub }, frame);
    if (outcome === 'gone') {
      // The client vanished without $disconnect (API Gateway runs it best-effort): clean up as it would.
      const rooms = await deps.store.deleteConnection(target.connectionId);
      for (const other of rooms) await announcePresence(deps, other, target.sub, 'left', target.connectionId);
    }
    return outcome;
  });
  outcomes.forEach((outcome, i) => {
    const target = targets[i] as DeliveryTarget;
    if (outcome.status === 'fulfilled') {
      result[outcome.value] += 1;
      if (outcome.value === 'failed') failed.push(target);
    } else {
      // A failed post must not fail the others nor the sender's request; it is logged with its cause.
      result.failed += 1;
      failed.push(target);
      deps.log.error('fan-out post failed', { ...context, connectionId: target.connectionId, error: outcome.reason });
    }
  });
  deps.log.debug('fan-out', { ...context, type: frame.type, targets: targets.length, ...result });
  return { result, failed };
}

/**
 * Tells a room's other connections that `user` joined or left. Presence is per user, not per connection:
 * call it after the connection's own subscription was added or removed.
 * - `joined` is announced by the user's earliest subscription in the room (by time, then connection id),
 *   so of two connections joining at once exactly one announces, and a later one stays quiet;
 * - `left` is announced when no subscription of the user remains. Two last connections leaving at once
 *   may both announce it; a repeated presence state is harmless to clients.
 */
export async function announcePresence(
  deps: CoreDeps,
  room: string,
  user: string,
  state: PresenceFrame['state'],
  connectionId: string,
): Promise<FanOutResult> {
  const subscriptions = await deps.store.listRoomSubscriptions(room);
  const mine = subscriptions.filter((s) => s.sub === user);
  const first = mine.reduce<SubscriptionRecord | undefined>(
    (a, b) => (a === undefined || earlier(b, a) ? b : a),
    undefined,
  );
  const announce = state === 'joined' ? first?.connectionId === connectionId : mine.length === 0;
  if (!announce) return { delivered: 0, gone: 0, failed: 0 };
  const frame: PresenceFrame = { type: 'presence', room, user, state, ts: deps.clock() };
  return fanOutToSubscriptions(deps, room, frame, subscriptions, { exclude: connectionId });
}

function earlier(a: SubscriptionRecord, b: SubscriptionRecord): boolean {
  const at = a.subscribedAt ?? 0;
  const bt = b.subscribedAt ?? 0;
  return at !== bt ? at < bt : a.connectionId < b.connectionId;
}
