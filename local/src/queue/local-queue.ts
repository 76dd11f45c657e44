/**
 * One standard SQS queue held in memory, with the Lambda event source mapping that drains it into a worker
 * function, as the CDK stack wires the fan-out queue to the `fanout-worker` Lambda:
 *
 * - a message is received by the mapping (up to `concurrency` invocations at once, `batchSize` records per
 *   event, here 1 as in the stack) and handed to the worker as an `SQSEvent` of Lambda's shape;
 * - `ReportBatchItemFailures`: a record named in `batchItemFailures` is retried, the others are deleted; a
 *   thrown worker or an invalid `itemIdentifier` fails the whole event, as Lambda treats them;
 * - a failed message becomes visible again after the visibility timeout, with `ApproximateReceiveCount`
 *   one higher at its next receive; once it has been received `maxReceiveCount` times, the receive that
 *   would exceed it moves it to the dead-letter queue instead (the redrive policy), which is logged at error
 *   level and kept in {@link LocalSqsQueue.deadLetters}.
 *
 * Standard queues give no order, and neither does this one (failed messages go to the back). Timers are real
 * (unref'd); timestamps come from the emulator's clock, like the handlers'.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LIMITS } from '@viba-realtime/protocol';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { errorText } from '../broker/connection.js';
import { buildLambdaContext } from '../gateway/events.js';
import type { EmulatorLogger } from '../log.js';
import type { Clock } from '../time.js';
import { md5OfAttributes, md5OfBody, type SqsAttributeValue } from './sqs-messages.js';

/** How the queue and its event source mapping behave. */
export interface QueueSettings {
  /** How long a failed message stays invisible before its next receive, ms. AWS's is the queue's
   * `VisibilityTimeout` (seconds, set by the stack); the emulator's is short so retries are seen quickly. */
  visibilityTimeoutMs: number;
  /** Receives before a message moves to the dead-letter queue (the redrive policy's `maxReceiveCount`). */
  maxReceiveCount: number;
  /** Most worker invocations at once (the event source's `maxConcurrency`). */
  concurrency: number;
  /** Records per event (the event source's `batchSize`). */
  batchSize: number;
  /** Largest message (body plus attributes) and largest SendMessageBatch, bytes (`MaximumMessageSize`). */
  maxMessageBytes: number;
}

/**
 * The defaults: the stack's `maxReceiveCount` (5) and one record per event; four workers, as the stack's
 * default `fanoutMaxConcurrency`; 256 KiB, the limit `SqsFanoutQueue` sizes its batches by (SQS's default for a
 * new queue is 1 MiB since 2025; a smaller emulator limit only makes local runs stricter); a 1 s visibility
 * timeout.
 */
export const QUEUE_DEFAULTS: Readonly<QueueSettings> = Object.freeze({
  visibilityTimeoutMs: 1_000,
  maxReceiveCount: 5,
  concurrency: 4,
  batchSize: 1,
  maxMessageBytes: 256 * 1024,
});

/** A worker Lambda as the event source mapping invokes it. */
export type SqsWorkerFunction = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse | undefined>;

/** A message SendMessage(Batch) accepted, already checked (see sqs-messages.ts). */
export interface NewMessage {
  body: string;
  attributes: Record<string, SqsAttributeValue>;
  /** `AWSTraceHeader`, the only message system attribute SQS takes. */
  traceHeader?: string;
  delaySeconds: number;
  /** The sender's id (`SenderId`); the emulator uses the request's access key id. */
  senderId: string;
}

/** A message held by the queue. */
export interface QueuedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, SqsAttributeValue>>;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes: string | undefined;
  readonly sentTimestamp: number;
  readonly senderId: string;
  readonly traceHeader: string | undefined;
  /** Receives so far (`ApproximateReceiveCount` of the latest). */
  receiveCount: number;
  firstReceiveTimestamp: number | undefined;
  /** Why the last receive failed: the worker's error, or that it reported the record in `batchItemFailures`. */
  lastError: string | undefined;
}

/** A message the redrive policy moved to the dead-letter queue. */
export interface DeadLetter {
  messageId: string;
  body: string;
  messageAttributes: Record<string, SqsAttributeValue>;
  receiveCount: number;
  sentTimestamp: number;
  /** Emulator clock, ms. */
  deadLetteredAt: number;
  lastError: string | undefined;
}

/** What the queue has done since it started. */
export interface QueueStats {
  /** Messages accepted by SendMessage / SendMessageBatch. */
  sent: number;
  /** Receives by the event source mapping (one per record handed to the worker). */
  received: number;
  /** Messages the worker processed (deleted from the queue). */
  deleted: number;
  /** Receives that failed (thrown worker or `batchItemFailures`). */
  failed: number;
  deadLettered: number;
  /** Messages still queued when the queue closed. */
  dropped: number;
}

/** Options of {@link LocalSqsQueue}. */
export interface LocalSqsQueueOptions {
  name: string;
  accountId: string;
  region: string;
  clock: Clock;
  logger: EmulatorLogger;
  settings?: Partial<QueueSettings>;
  /** The worker's function name in its invocation context. @default `${name}-worker` */
  functionName?: string;
}

type Waiting = { timer: NodeJS.Timeout; kind: 'delayed' | 'invisible' };

const LOG_TAG = 'SQS';

/** A standard queue with its dead-letter queue and the event source mapping that drains it. */
export class LocalSqsQueue {
  readonly name: string;
  readonly accountId: string;
  readonly region: string;
  /** `arn:aws:sqs:{region}:{account}:{name}`, the records' `eventSourceARN`. */
  readonly arn: string;
  readonly settings: Readonly<QueueSettings>;
  /** Messages moved to the dead-letter queue, oldest first. */
  readonly deadLetters: DeadLetter[] = [];
  readonly stats: QueueStats = { sent: 0, received: 0, deleted: 0, failed: 0, deadLettered: 0, dropped: 0 };
  /** Epoch ms of creation (`CreatedTimestamp`). */
  readonly createdAt: number;

  readonly #clock: Clock;
  readonly #logger: EmulatorLogger;
  readonly #functionName: string;
  #worker: SqsWorkerFunction | undefined;
  readonly #ready: QueuedMessage[] = [];
  readonly #waiting = new Map<QueuedMessage, Waiting>();
  readonly #inFlight = new Set<Promise<void>>();
  #inFlightMessages = 0;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #idleWaiters: (() => void)[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: LocalSqsQueueOptions) {
    this.name = options.name;
    this.accountId = options.accountId;
    this.region = options.region;
    this.arn = `arn:aws:sqs:${options.region}:${options.accountId}:${options.name}`;
    this.settings = Object.freeze({ ...QUEUE_DEFAULTS, ...stripUndefined(options.settings ?? {}) });
    checkSettings(this.settings);
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#functionName = options.functionName ?? `${options.name}-worker`;
    this.createdAt = options.clock();
  }

  /** `/{accountId}/{name}`: the path of the queue's URL. */
  get path(): string {
    return `/${this.accountId}/${this.name}`;
  }

  /** The dead-letter queue's ARN (in `RedrivePolicy`). */
  get deadLetterArn(): string {
    return `${this.arn}-dlq`;
  }

  /** Connects the worker; messages sent before wait for it. */
  attach(worker: SqsWorkerFunction): void {
    this.#worker = worker;
    this.#schedulePump();
  }

  /** Enqueues one accepted message and returns it (ids and digests for the answer). */
  send(message: NewMessage): QueuedMessage {
    const queued: QueuedMessage = {
      messageId: randomUUID(),
      body: message.body,
      attributes: message.attributes,
      md5OfBody: md5OfBody(message.body),
      md5OfMessageAttributes: md5OfAttributes(message.attributes),
      sentTimestamp: this.#clock(),
      senderId: message.senderId,
      traceHeader: message.traceHeader,
      receiveCount: 0,
      firstReceiveTimestamp: undefined,
      lastError: undefined,
    };
    this.stats.sent++;
    if (this.#closing) {
      // A worker finishing during shutdown may still re-queue: accepted, as SQS would, and dropped.
      this.stats.dropped++;
      this.#logger.line('warn', LOG_TAG, `${this.name} is closing: message ${queued.messageId} dropped`);
      return queued;
    }
    if (message.delaySeconds > 0) this.#hold(queued, message.delaySeconds * 1000, 'delayed');
    else this.#ready.push(queued);
    this.#schedulePump();
    return queued;
  }

  /** `ApproximateNumberOfMessages`, `...NotVisible` (in flight or waiting out a visibility timeout), `...Delayed`. */
  counts(): { visible: number; notVisible: number; delayed: number } {
    let invisible = 0;
    let delayed = 0;
    for (const { kind } of this.#waiting.values()) {
      if (kind === 'delayed') delayed++;
      else invisible++;
    }
    return { visible: this.#ready.length, notVisible: invisible + this.#inFlightMessages, delayed };
  }

  /** Resolves once nothing is queued, delayed, waiting to be retried or in flight (or the queue closed). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops receiving, waits for the invocations in flight (their re-queues and failures are kept, then
   * dropped), and drops what is left with a warning: at shutdown the connections it would reach are gone.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    if (this.#pumpScheduled) clearImmediate(this.#pumpScheduled);
    this.#pumpScheduled = undefined;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    for (const { timer } of this.#waiting.values()) clearTimeout(timer);
    const dropped = this.#ready.length + this.#waiting.size;
    this.#ready.length = 0;
    this.#waiting.clear();
    this.stats.dropped += dropped;
    if (dropped > 0)
      this.#logger.line('warn', LOG_TAG, `${this.name} closed: ${dropped} message(s) dropped undelivered`);
    this.#settleIdle();
  }

  #isIdle(): boolean {
    return this.#closing
      ? this.#inFlight.size === 0
      : this.#ready.length === 0 && this.#waiting.size === 0 && this.#inFlight.size === 0;
  }

  #settleIdle(): void {
    if (!this.#isIdle()) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #hold(message: QueuedMessage, ms: number, kind: Waiting['kind']): void {
    const timer = setTimeout(() => {
      this.#waiting.delete(message);
      this.#ready.push(message);
      this.#schedulePump();
    }, ms);
    timer.unref();
    this.#waiting.set(message, { timer, kind });
  }

  /** Receives on the next turn of the event loop, so SendMessage answers before its message is worked on. */
  #schedulePump(): void {
    if (this.#pumpScheduled || this.#closing) return;
    this.#pumpScheduled = setImmediate(() => {
      this.#pumpScheduled = undefined;
      this.#pump();
    });
  }

  #pump(): void {
    const worker = this.#worker;
    if (this.#closing || worker === undefined) return;
    while (this.#inFlight.size < this.settings.concurrency && this.#ready.length > 0) {
      const batch: QueuedMessage[] = [];
      while (batch.length < this.settings.batchSize && this.#ready.length > 0) {
        const message = this.#ready.shift() as QueuedMessage;
        // The redrive policy acts at the receive that would exceed maxReceiveCount.
        if (message.receiveCount >= this.settings.maxReceiveCount) {
          this.#deadLetter(message);
          continue;
        }
        message.receiveCount++;
        message.firstReceiveTimestamp ??= this.#clock();
        batch.push(message);
      }
      if (batch.length === 0) continue;
      this.stats.received += batch.length;
      this.#inFlightMessages += batch.length;
      const run: Promise<void> = this.#invoke(worker, batch).finally(() => {
        this.#inFlightMessages -= batch.length;
        this.#inFlight.delete(run);
        this.#schedulePump();
        this.#settleIdle();
      });
      this.#inFlight.add(run);
    }
    this.#settleIdle();
  }

  async #invoke(worker: SqsWorkerFunction, batch: QueuedMessage[]): Promise<void> {
    const records = batch.map((message) => this.#record(message));
    const context = buildLambdaContext(
      this.#functionName,
      { apiId: '', stage: '', region: this.region, accountId: this.accountId },
      LIMITS.fanoutClaimStaleMs / 2,
    );
    const started = performance.now();
    let failed: Set<QueuedMessage>;
    let why: string;
    try {
      const response = await worker({ Records: records }, context);
      ({ failed, why } = failuresOf(response, batch));
    } catch (error) {
      failed = new Set(batch);
      why = errorText(error);
    }
    const ms = Math.round(performance.now() - started);
    for (const message of batch) {
      if (failed.has(message)) {
        this.#retry(message, why);
        continue;
      }
      this.stats.deleted++;
      this.#logger.line('debug', LOG_TAG, `${this.name} ${message.messageId} processed ${ms}ms`);
    }
  }

  #retry(message: QueuedMessage, why: string): void {
    message.lastError = why;
    this.stats.failed++;
    if (this.#closing) {
      // Kept until close() drops what is left, counted there.
      this.#ready.push(message);
      this.#logger.line('warn', LOG_TAG, `${this.name} ${message.messageId} failed while closing (${why})`);
      return;
    }
    const { visibilityTimeoutMs, maxReceiveCount } = this.settings;
    const next =
      message.receiveCount >= maxReceiveCount ? 'then to the dead-letter queue' : `visible in ${visibilityTimeoutMs}ms`;
    this.#logger.line(
      'warn',
      LOG_TAG,
      `${this.name} ${message.messageId} failed, receive ${message.receiveCount}/${maxReceiveCount} (${why}); ${next}`,
    );
    this.#hold(message, visibilityTimeoutMs, 'invisible');
  }

  #deadLetter(message: QueuedMessage): void {
    this.stats.deadLettered++;
    this.deadLetters.push({
      messageId: message.messageId,
      body: message.body,
      messageAttributes: { ...message.attributes },
      receiveCount: message.receiveCount,
      sentTimestamp: message.sentTimestamp,
      deadLetteredAt: this.#clock(),
      lastError: message.lastError,
    });
    this.#logger.line(
      'error',
      LOG_TAG,
      `${this.name} ${message.messageId} moved to the dead-letter queue after ${message.receiveCount} receives (last: ${message.lastError ?? '?'})`,
    );
  }

  /** One record of Lambda's SQS event. */
  #record(message: QueuedMessage): SQSRecord {
    const messageAttributes: SQSRecord['messageAttributes'] = {};
    for (const [name, attribute] of Object.entries(message.attributes)) {
      messageAttributes[name] = {
        ...(attribute.BinaryValue === undefined
          ? { stringValue: attribute.StringValue as string }
          : { binaryValue: attribute.BinaryValue }),
        stringListValues: [],
        binaryListValues: [],
        dataType: attribute.DataType,
      };
    }
    return {
      messageId: message.messageId,
      // A fresh handle per receive, as SQS gives.
      receiptHandle: `AQEB${randomBytes(96).toString('base64')}`,
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentTimestamp),
        SenderId: message.senderId,
        ApproximateFirstReceiveTimestamp: String(message.firstReceiveTimestamp),
        ...(message.traceHeader === undefined ? {} : { AWSTraceHeader: message.traceHeader }),
      },
      messageAttributes,
      md5OfBody: message.md5OfBody,
      ...(message.md5OfMessageAttributes === undefined
        ? {}
        : { md5OfMessageAttributes: message.md5OfMessageAttributes }),
      eventSource: 'aws:sqs',
      eventSourceARN: this.arn,
      awsRegion: this.region,
    };
  }
}

/**
 * Which records of an event failed, as Lambda reads a worker's answer with `ReportBatchItemFailures`: no
 * answer, no list or an empty list is complete success; an `itemIdentifier` that is missing, empty or not a
 * message id of the event fails the whole event.
 */
export function failuresOf(
  response: unknown,
  batch: readonly QueuedMessage[],
): { failed: Set<QueuedMessage>; why: string } {
  const why = 'reported in batchItemFailures';
  if (response === undefined || response === null || typeof response !== 'object') return { failed: new Set(), why };
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return { failed: new Set(), why };
  if (!Array.isArray(list)) return { failed: new Set(batch), why: 'batchItemFailures is not a list' };
  const failed = new Set<QueuedMessage>();
  for (const item of list) {
    const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const message = typeof id === 'string' && id !== '' ? batch.find((m) => m.messageId === id) : undefined;
    if (message === undefined)
      return { failed: new Set(batch), why: `invalid itemIdentifier ${JSON.stringify(id)}: the whole event failed` };
    failed.add(message);
  }
  return { failed, why };
}

function checkSettings(settings: QueueSettings): void {
  const whole = (name: keyof QueueSettings, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = settings[name];
    if (!Number.isInteger(value) || value < min || value > max)
      throw new RangeError(`queue ${name} must be a whole number from ${min} to ${max}, got ${value}.`);
  };
  whole('visibilityTimeoutMs', 0, 12 * 3600 * 1000);
  whole('maxReceiveCount', 1, 1000);
  whole('concurrency', 1, 1000);
  whole('batchSize', 1, 10_000);
  whole('maxMessageBytes', 1024, 1024 * 1024);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
