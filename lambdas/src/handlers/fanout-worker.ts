/**
 * The fan-out worker: the SQS-triggered Lambda that delivers the batches large fan-outs are split into (see
 * `core/batches.ts`). One batch per message; the event source mapping reports partial failures, so a
 * message whose batch could not run (store or queue unavailable) is retried alone and, after the queue's
 * `maxReceiveCount`, moved to the dead-letter queue. A message that is not a batch is logged and dropped:
 * retrying it could never succeed.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { runFanoutBatch } from '../core/batches.js';
import type { CoreDeps } from '../core/deps.js';
import type { Clock, FanoutBatch } from '../core/ports.js';
import type { HandlerEnv } from './events.js';
import { createRuntime } from './iot-runtime.js';

function isBatch(value: unknown): value is FanoutBatch {
  const b = value as Partial<FanoutBatch> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.batchId === 'string' &&
    typeof b.frame === 'object' &&
    b.frame !== null &&
    Array.isArray(b.targets) &&
    b.targets.every((t) => typeof t?.connectionId === 'string' && typeof t?.sub === 'string') &&
    Number.isSafeInteger(b.attempt)
  );
}

/** Builds the worker from an environment (`VIBA_CONNECTIONS_ENDPOINT`, the table; `VIBA_IOT_ENDPOINT` and
 * `VIBA_FANOUT_QUEUE_URL` when configured). The emulator may inject a clock. */
export function createFanoutWorkerHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const runtime = createRuntime(env, 'fanout-worker', deps);
  const { store, delivery, clock, log, queue, iot } = runtime;

  return async (event: SQSEvent, _context?: Context): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event?.Records ?? []) {
      let batch: unknown;
      try {
        batch = JSON.parse(record.body);
      } catch {
        batch = undefined;
      }
      if (!isBatch(batch)) {
        log.error('fan-out message is not a batch: dropped', { messageId: record.messageId });
        continue;
      }
      const core: CoreDeps = {
        store,
        delivery,
        clock,
        log: log.child({ batchId: batch.batchId }),
        ...(queue ? { queue } : {}),
        ...(iot ? { topics: iot } : {}),
      };
      try {
        await runFanoutBatch(core, batch);
      } catch (error) {
        core.log.error('fan-out batch failed; the queue will retry it', { error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  };
}

let cached: ReturnType<typeof createFanoutWorkerHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
  cached ??= createFanoutWorkerHandler(process.env);
  return cached(event, context);
};
