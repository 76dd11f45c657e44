/**
 * {@link FanoutQueue} on Amazon SQS: batches become messages (JSON), sent with SendMessageBatch in groups
 * that respect SQS's limits (10 entries and 256 KiB per call). The `fanout-worker` handler drains the queue.
 */
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type FanoutBatch, FanoutEnqueueError, type FanoutQueue } from '../core/ports.js';
import type { Logger } from '../log.js';

/** SQS's limits for one SendMessageBatch call: 10 entries, and 256 KiB, the historical message size limit
 * (new queues accept 1 MiB since 2025; the smaller bound keeps batches valid on any queue). */
const SQS_MAX_BATCH_ENTRIES = 10;
const SQS_MAX_BATCH_BYTES = 256 * 1024;

export interface SqsFanoutQueueOptions {
  queueUrl: string;
  region: string;
  /** The emulator's SQS endpoint; in AWS the SDK derives it from the region. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  log: Logger;
}

export class SqsFanoutQueue implements FanoutQueue {
  readonly client: SQSClient;
  readonly #queueUrl: string;
  readonly #log: Logger;

  constructor(options: SqsFanoutQueueOptions) {
    this.client = new SQSClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    this.#queueUrl = options.queueUrl;
    this.#log = options.log;
  }

  /** Sends every batch; throws {@link FanoutEnqueueError} naming the ones SQS refused (the others are queued),
   * or the SDK's error if a call failed outright (which batches were taken is then unknown). */
  async enqueue(batches: readonly FanoutBatch[]): Promise<void> {
    const failed: FanoutEnqueueError['failed'] = [];
    for (const group of groupForSqs(batches)) {
      const { Failed } = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.#queueUrl,
          Entries: group.map(({ batch, body }, i) => ({ Id: `b${i}`, MessageBody: body, ...idAttribute(batch) })),
        }),
      );
      for (const entry of Failed ?? []) {
        const index = Number(entry.Id?.slice(1));
        failed.push({ batchId: group[index]?.batch.batchId ?? '?', code: entry.Code, message: entry.Message });
      }
    }
    if (failed.length > 0) throw new FanoutEnqueueError(failed);
    this.#log.debug('fan-out batches queued', { batches: batches.length });
  }
}

function idAttribute(batch: FanoutBatch) {
  return { MessageAttributes: { batchId: { DataType: 'String', StringValue: batch.batchId } } };
}

/** Groups batches into SendMessageBatch calls of at most 10 entries and 256 KiB. */
function groupForSqs(batches: readonly FanoutBatch[]): { batch: FanoutBatch; body: string }[][] {
  const groups: { batch: FanoutBatch; body: string }[][] = [];
  let current: { batch: FanoutBatch; body: string }[] = [];
  let bytes = 0;
  for (const batch of batches) {
    // SQS refuses U+FFFE and U+FFFF in a message, which JSON.stringify leaves as they are: escape them.
    const body = JSON.stringify(batch).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
    const size = Buffer.byteLength(body) + 64;
    if (size > SQS_MAX_BATCH_BYTES)
      throw new Error(`Fan-out batch ${batch.batchId} is ${size} bytes, over SQS's limit.`);
    if (current.length === SQS_MAX_BATCH_ENTRIES || bytes + size > SQS_MAX_BATCH_BYTES) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ batch, body });
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
