/**
 * The token sweep: closes the WebSocket connections whose token has expired. API Gateway knows nothing of a
 * connection's token and keeps an idle one open until its 10-minute idle timeout or 2-hour cut; a request on it
 * is refused (`ws-routes`) and a fan-out closes it instead of posting (`deliverTo`), and this, run every minute by
 * the `token-sweeper` function, closes the ones that neither send nor are sent to. MQTT needs none of it: IoT
 * cuts a connection at the authorizer's `disconnectAfterInSeconds`, which is never past the token's `exp`.
 */
import { AUDIENCE_SHARDS, LIMITS } from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import type { CoreDeps } from './deps.js';
import { closeExpired } from './fanout.js';

/** What one sweep did. */
export interface SweepOutcome {
  /** Connections told `token_expired` and closed. */
  closed: number;
  /** Connections found gone already (no `$disconnect` ran for them) and removed from the store. */
  gone: number;
  /** Connections whose close failed; the next sweep finds them again. */
  failed: number;
  /** True when the sweep stopped at its per-run limit: the rest wait for the next run. */
  limited: boolean;
}

/**
 * Closes up to `max` WebSocket connections whose token has expired, a fair share from each audience shard so
 * that a backlog in one shard does not starve the others. Never throws for a failed close (it is counted and
 * logged); throws when the store cannot be read, so the scheduler reports the run failed.
 */
export async function sweepExpiredTokens(deps: CoreDeps, options: { max?: number } = {}): Promise<SweepOutcome> {
  const max = options.max ?? LIMITS.tokenSweepMaxPerRun;
  const perShard = Math.max(1, Math.ceil(max / AUDIENCE_SHARDS));
  const nowSeconds = Math.floor(deps.clock() / 1000);
  // One more than the share, to tell a shard with more left from one that had exactly its share.
  const shards = await Promise.all(
    Array.from({ length: AUDIENCE_SHARDS }, (_, shard) =>
      deps.store.listExpiredConnections(shard, nowSeconds, perShard + 1),
    ),
  );
  const targets = shards.flatMap((found) => found.slice(0, perShard)).slice(0, max);
  const outcome: SweepOutcome = {
    closed: 0,
    gone: 0,
    failed: 0,
    limited: shards.some((found) => found.length > perShard),
  };
  const settled = await mapWithConcurrency(targets, LIMITS.deliveryConcurrency, (target) => closeExpired(deps, target));
  settled.forEach((result, i) => {
    if (result.status === 'fulfilled') {
      outcome[result.value === 'expired' ? 'closed' : 'gone'] += 1;
    } else {
      outcome.failed += 1;
      deps.log.error('could not close a connection with an expired token; the next sweep retries', {
        connectionId: targets[i]?.connectionId,
        error: result.reason,
      });
    }
  });
  // Every minute: quiet unless it did something, so an idle service does not log 1,440 lines a day.
  if (targets.length > 0) deps.log.info('token sweep', { ...outcome });
  else deps.log.debug('token sweep: no expired tokens');
  return outcome;
}
