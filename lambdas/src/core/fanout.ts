/**
 * Fan-out: one frame to every connection subscribed to a room. Posts run with bounded concurrency; a
 * connection that API Gateway reports gone (410) is removed from the store, so a client that vanished
 * without a close frame is cleaned up at the next message instead of being posted to forever. A WebSocket
 * connection whose token has expired gets `token_expired` and is closed instead of the frame: API Gateway keeps
 * an idle connection open past its token, and a token's lifetime bounds its connection's.
 */
import {
  type ErrorFrame,
  LIMITS,
  type PresenceFrame,
  type ServerFrame,
  TokenExpiredError,
  timeId,
} from '@viba-realtime/protocol';
// A cycle (batches run through deliverTo), safe in ESM: neither module uses the other's exports at load time.
import { enqueueOrRun, splitIntoBatches } from './batches.js';
import { mapWithConcurrency } from './concurrency.js';
import type { CoreDeps } from './deps.js';
import { randomSuffix } from './ids.js';
import type { DeliveryTarget, SubscriptionRecord } from './ports.js';

export interface FanOutResult {
  /** Connections the frame was handed to. */
  delivered: number;
  /** Connections found gone and removed. */
  gone: number;
  /** Connections that still failed after retries (kept; they may recover). */
  failed: number;
  /** WebSocket connections whose token had expired: told `token_expired` and closed, not given the frame. */
  expired: number;
}

/** An empty {@link FanOutResult}. */
export function noFanOut(): FanOutResult {
  return { delivered: 0, gone: 0, failed: 0, expired: 0 };
}

/** Whether a target's token has expired at `nowMs` (the same rule as a request's: `exp` is the first second
 * the token is no longer good). Targets without `tokenExp` (MQTT: IoT cuts those itself) never expire here. */
export function isTokenExpired(target: DeliveryTarget, nowMs: number): boolean {
  return target.tokenExp !== undefined && target.tokenExp <= Math.floor(nowMs / 1000);
}

/** The frame a connection gets before it is closed for its expired token (no `ref`: it answers no request). */
export function tokenExpiredFrame(tokenExp: number): ErrorFrame {
  const error = new TokenExpiredError(tokenExp);
  return {
    type: 'error',
    code: error.code,
    message: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/**
 * A room's subscriptions as delivery targets, without `exclude` (the sender's connection): only what a delivery
 * needs, since a queued batch carries them; `tokenExp` is checked when the posts run.
 */
export function subscriptionTargets(subscriptions: readonly SubscriptionRecord[], exclude?: string): DeliveryTarget[] {
  return subscriptions
    .filter((s) => s.connectionId !== exclude)
    .map(({ connectionId, sub, tokenExp }) => ({ connectionId, sub, ...(tokenExp === undefined ? {} : { tokenExp }) }));
}

/**
 * One frame to a room's subscriptions, read by the caller (which must know whether the read failed, nothing
 * posted yet, or the posts ran): this never throws, a failed post is counted and logged. A room of more than
 * `LIMITS.chatFanoutInlineMax` connections gets it through the fan-out queue, as a chat message does; the result
 * then counts only what this invocation posted (batches the queue refused).
 */
export async function fanOutToSubscriptions(
  deps: CoreDeps,
  room: string,
  frame: ServerFrame,
  subscriptions: readonly SubscriptionRecord[],
  options: { exclude?: string } = {},
): Promise<FanOutResult> {
  const targets = subscriptionTargets(subscriptions, options.exclude);
  if (targets.length > LIMITS.chatFanoutInlineMax && deps.queue !== undefined) {
    const batchPrefix = timeId(`${frame.type[0] ?? 'f'}_`, deps.clock(), randomSuffix());
    const queued = await enqueueOrRun({ ...deps, queue: deps.queue }, splitIntoBatches(batchPrefix, frame, targets), {
      room,
      type: frame.type,
    });
    deps.log.info('room fan-out queued', { room, type: frame.type, connections: targets.length, ...queued });
    return { ...noFanOut(), delivered: queued.deliveredHere };
  }
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
  const result = noFanOut();
  const failed: DeliveryTarget[] = [];
  const now = deps.clock();
  const outcomes = await mapWithConcurrency(targets, LIMITS.deliveryConcurrency, (target) =>
    isTokenExpired(target, now) ? closeExpired(deps, target) : deliverOne(deps, frame, target),
  );
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
  if (result.expired > 0)
    deps.log.info('closed connections with expired tokens', { ...context, count: result.expired });
  return { result, failed };
}

async function deliverOne(deps: CoreDeps, frame: ServerFrame, target: DeliveryTarget): Promise<keyof FanOutResult> {
  // Only the connection and user reach the delivery: RoutingDelivery merges MQTT targets by them.
  const outcome = await deps.delivery.post({ connectionId: target.connectionId, sub: target.sub }, frame);
  if (outcome === 'gone') await removeGone(deps, target);
  return outcome;
}

/**
 * Tells a connection whose token expired why it is closed, then closes it (API Gateway then runs `$disconnect`,
 * which removes it). One found gone is removed here, as a fan-out's 410 does. The SDK reconnects at once with a
 * fresh token on `token_expired` and catches up from the store, so the frame it was not given is not lost.
 */
export async function closeExpired(deps: CoreDeps, target: DeliveryTarget): Promise<'expired' | 'gone'> {
  const posted = await deps.delivery.post(
    { connectionId: target.connectionId, sub: target.sub },
    tokenExpiredFrame(target.tokenExp ?? 0),
  );
  if (posted === 'gone') {
    await removeGone(deps, target);
    return 'gone';
  }
  // Closed even when the courtesy frame failed: the close is what matters.
  await deps.delivery.close(target.connectionId);
  return 'expired';
}

/** The client vanished without `$disconnect` (API Gateway runs it best-effort): clean up as it would. */
async function removeGone(deps: CoreDeps, target: DeliveryTarget): Promise<void> {
  const rooms = await deps.store.deleteConnection(target.connectionId);
  for (const other of rooms) await announcePresence(deps, other, target.sub, 'left', target.connectionId);
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
  if (!announce) return noFanOut();
  const frame: PresenceFrame = { type: 'presence', room, user, state, ts: deps.clock() };
  return fanOutToSubscriptions(deps, room, frame, subscriptions, { exclude: connectionId });
}

function earlier(a: SubscriptionRecord, b: SubscriptionRecord): boolean {
  const at = a.subscribedAt ?? 0;
  const bt = b.subscribedAt ?? 0;
  return at !== bt ? at < bt : a.connectionId < b.connectionId;
}
