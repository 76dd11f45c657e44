/**
 * The fan-out worker's core: delivers one batch of a large fan-out (announcements past
 * `LIMITS.fanoutInlineMax`, chat in rooms past `LIMITS.chatFanoutInlineMax`) exactly once per target, although queues deliver messages at least once and workers can die mid-batch:
 * - a batch is claimed before it runs (conditional write): a second copy of the same queue message finds it
 *   running or done and does nothing;
 * - progress is checkpointed after every `LIMITS.deliveryConcurrency` targets: a worker that takes over a
 *   dead worker's batch (claim older than `LIMITS.fanoutClaimStaleMs`) starts after the checkpoint, so at most
 *   the one slice in flight when the worker died can reach its targets twice (clients drop duplicates by id);
 * - targets that still fail after the delivery's own retries are re-queued as a new, smaller batch
 *   (`{batchId}/{attempt}`), up to `LIMITS.fanoutMaxAttempts`, and only then given up, with an error log
 *   naming how many; targets already reached are never in the re-queued batch;
 * - a worker that fails (the table or the queue refuses a write after the SDK's retries) gives its claim up
 *   with the progress it made, even past a checkpoint that failed to be written, before the queue retries the
 *   message: the retry takes the batch over at once and posts to no target twice. Kept claimed, the retry
 *   would find it "running" and skip it until the claim is stale (in AWS the queue's visibility timeout, 6 x the
 *   worker's, outlasts that, but any shorter one, as the emulator's, would drop the batch), and then post the
 *   slice whose checkpoint failed again. Only a worker that dies (times out, crashes) cannot do this: the slice
 *   in flight then is the one that can reach its targets twice.
 */
import { LIMITS } from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import { isMqttConnectionId } from './connections.js';
import type { CoreDeps } from './deps.js';
import { deliverTo, type FanOutResult, noFanOut } from './fanout.js';
import { type DeliveryTarget, type FanoutBatch, FanoutEnqueueError, type FanoutQueue } from './ports.js';

/**
 * Slices a fan-out's targets into first-attempt batches of up to `LIMITS.fanoutBatchSize`, with ids
 * `{messageId}.{index}` (stable, so a repeated enqueue of the same slice is recognised by the worker's claim).
 * A user's MQTT targets stay in one batch: MQTT delivers once per user and frame (`RoutingDelivery`), and each
 * batch's frame is its own object once queued, so a user split over two batches would be published to twice.
 */
export function splitIntoBatches(
  messageId: string,
  frame: FanoutBatch['frame'],
  targets: readonly DeliveryTarget[],
): FanoutBatch[] {
  const units = new Map<string, DeliveryTarget[]>();
  for (const target of targets) {
    const key = isMqttConnectionId(target.connectionId) ? `mqtt user ${target.sub}` : target.connectionId;
    const unit = units.get(key);
    if (unit) unit.push(target);
    else units.set(key, [target]);
  }
  const batches: FanoutBatch[] = [];
  let current: DeliveryTarget[] = [];
  const flush = () => {
    if (current.length === 0) return;
    batches.push({ batchId: `${messageId}.${batches.length}`, frame, targets: current, attempt: 1 });
    current = [];
  };
  for (const unit of units.values()) {
    if (current.length + unit.length > LIMITS.fanoutBatchSize) flush();
    current.push(...unit);
  }
  flush();
  return batches;
}

/** Batches a fan-out runs at once in its own invocation when the queue refused them. */
const FALLBACK_BATCH_CONCURRENCY = 2;

/** What {@link enqueueOrRun} did. */
export interface EnqueueOutcome {
  /** Batches the queue took (workers deliver them). */
  queued: number;
  /** Batches this invocation ran because the queue refused them. */
  ranHere: number;
  /** Connections those batches reached. */
  deliveredHere: number;
}

/**
 * Hands a fan-out's batches to the queue; if it refuses, runs the refused ones in this invocation instead (all
 * of them when the failure does not say which), so what was stored still reaches its audience live. Each batch is
 * claimed by its id before it runs, so one the queue took before failing runs once, here or in a worker. Never
 * throws: a batch that cannot run here either is logged, and its connections catch up from the store.
 */
export async function enqueueOrRun(
  deps: CoreDeps & { queue: FanoutQueue },
  batches: readonly FanoutBatch[],
  context: Record<string, unknown>,
): Promise<EnqueueOutcome> {
  try {
    await deps.queue.enqueue(batches);
    return { queued: batches.length, ranHere: 0, deliveredHere: 0 };
  } catch (error) {
    const refused = error instanceof FanoutEnqueueError ? new Set(error.failed.map((f) => f.batchId)) : undefined;
    const here = refused === undefined ? batches : batches.filter((b) => refused.has(b.batchId));
    deps.log.error('the fan-out queue refused batches: running them here', {
      ...context,
      batches: batches.length,
      here: here.length,
      error,
    });
    // Without the queue, a batch's failed targets are given up (logged) rather than re-queued.
    const { queue: _refusing, ...inline } = deps;
    let deliveredHere = 0;
    const runs = await mapWithConcurrency(here, FALLBACK_BATCH_CONCURRENCY, (batch) => runFanoutBatch(inline, batch));
    runs.forEach((run, i) => {
      if (run.status === 'fulfilled') {
        if (run.value.state === 'done') deliveredHere += run.value.result.delivered;
      } else {
        deps.log.error('a fan-out batch could not run here either; its connections catch up from the store', {
          ...context,
          batchId: here[i]?.batchId,
          error: run.reason,
        });
      }
    });
    return { queued: batches.length - here.length, ranHere: here.length, deliveredHere };
  }
}

/** What a worker did with a batch. */
export type BatchOutcome =
  | { state: 'skipped'; reason: 'done' | 'running' }
  | {
      state: 'done';
      /** Targets skipped because a dead worker's checkpoint covered them. */
      resumedAt: number;
      result: FanOutResult;
      /** Failed targets re-queued in batch `requeued` (absent when none failed or attempts ran out). */
      requeued?: string;
      /** Failed targets given up after the last attempt. */
      givenUp: number;
    };

/** Runs one batch (see the module's description). Throws only when the store or the queue fails, so the
 * queue retries the message; delivery failures are handled here. */
export async function runFanoutBatch(deps: CoreDeps, batch: FanoutBatch): Promise<BatchOutcome> {
  const { store, log } = deps;
  const claim = await store.claimBatch(batch.batchId, deps.clock());
  if (!claim.claimed) {
    log.info('fan-out batch skipped', { batchId: batch.batchId, reason: claim.state });
    return { state: 'skipped', reason: claim.state };
  }
  const progress: Progress = { done: claim.doneCount, failed: [] };
  try {
    return await runClaimedBatch(deps, batch, progress);
  } catch (error) {
    if (progress.failed.length > 0) {
      // Below the released progress, so no retry reaches them; as after a takeover from a checkpoint.
      log.error('fan-out batch failed with connections still to retry: given up', {
        batchId: batch.batchId,
        connections: progress.failed.map((t) => t.connectionId).slice(0, 20),
        count: progress.failed.length,
      });
    }
    // Best effort: a table that refuses this too leaves the claim to go stale, as a dead worker's does.
    await store.releaseBatch(batch.batchId, progress.done).catch((releaseError: unknown) =>
      log.warn('could not release a failed fan-out batch; it is taken over once its claim is stale', {
        batchId: batch.batchId,
        error: releaseError,
      }),
    );
    throw error;
  }
}

/** How far a run got: targets below `done` were posted to, `failed` are those of them to re-queue. */
interface Progress {
  done: number;
  failed: DeliveryTarget[];
}

/** Delivers a claimed batch from `progress.done` on (moving it past each slice posted), re-queues what failed,
 * marks it done. */
async function runClaimedBatch(deps: CoreDeps, batch: FanoutBatch, progress: Progress): Promise<BatchOutcome> {
  const { store, log } = deps;
  const doneCount = progress.done;
  const total = noFanOut();
  const failed = progress.failed;
  const slice = LIMITS.deliveryConcurrency;
  for (let start = doneCount; start < batch.targets.length; start += slice) {
    const end = Math.min(start + slice, batch.targets.length);
    const { result, failed: sliceFailed } = await deliverTo(deps, batch.frame, batch.targets.slice(start, end), {
      batchId: batch.batchId,
    });
    total.delivered += result.delivered;
    total.gone += result.gone;
    total.failed += result.failed;
    total.expired += result.expired;
    failed.push(...sliceFailed);
    progress.done = end;
    await store.checkpointBatch(batch.batchId, end);
  }

  let requeued: string | undefined;
  let givenUp = 0;
  if (failed.length > 0) {
    if (batch.attempt < LIMITS.fanoutMaxAttempts && deps.queue !== undefined) {
      requeued = `${batch.batchId}/${batch.attempt + 1}`;
      await deps.queue.enqueue([
        { batchId: requeued, frame: batch.frame, targets: failed, attempt: batch.attempt + 1 },
      ]);
      // Theirs is the re-queued batch now, whatever happens to this one.
      progress.failed = [];
    } else {
      givenUp = failed.length;
      log.error('fan-out gave up on connections after every attempt', {
        batchId: batch.batchId,
        attempt: batch.attempt,
        connections: failed.map((t) => t.connectionId).slice(0, 20),
        count: givenUp,
      });
      progress.failed = [];
    }
  }
  await store.completeBatch(batch.batchId, deps.clock());
  log.info('fan-out batch done', {
    batchId: batch.batchId,
    attempt: batch.attempt,
    resumedAt: doneCount,
    ...total,
    ...(requeued === undefined ? {} : { requeued }),
    givenUp,
  });
  return { state: 'done', resumedAt: doneCount, result: total, ...(requeued ? { requeued } : {}), givenUp };
}
