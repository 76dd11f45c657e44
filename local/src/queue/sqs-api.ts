/**
 * SQS's API on the emulator's HTTP port, in the AWS JSON 1.0 protocol the v3 `SQSClient` speaks: a `POST`
 * with `x-amz-target: AmazonSQS.{Operation}` and a JSON body, answered with JSON. Served: `SendMessage`,
 * `SendMessageBatch`, `GetQueueUrl`, `GetQueueAttributes`, `ListQueues`. The other SQS operations answer
 * `UnsupportedOperation` (the event source mapping is the only consumer).
 *
 * Errors are SQS's: the status, `{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": ...}` and the
 * `x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender` header of a query-compatible service,
 * from which the SDK picks its exception class (`QueueDoesNotExist`, `TooManyEntriesInBatchRequest`, ...).
 * A request without an `Authorization` header is refused (403); signatures are not verified.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorLogger } from '../log.js';
import type { LocalSqsQueue, NewMessage, QueuedMessage } from './local-queue.js';
import {
  checkAttributes,
  checkBody,
  md5OfAttributes,
  messageSize,
  type SqsAttributeValue,
  SqsMessageError,
} from './sqs-messages.js';

/** The `x-amz-target` prefix of SQS's JSON protocol. */
export const SQS_TARGET_PREFIX = 'AmazonSQS.';

/** SendMessageBatch's entry limit. */
export const SQS_MAX_BATCH_ENTRIES = 10;

/** Longest SQS request body the emulator reads (the JSON of a full batch, escaped), bytes. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

const LOG_TAG = 'SQS';

/** SQS operations the emulator does not serve: answered `UnsupportedOperation`, not `UnknownOperation`. */
const OTHER_OPERATIONS = new Set([
  'AddPermission',
  'CancelMessageMoveTask',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'CreateQueue',
  'DeleteMessage',
  'DeleteMessageBatch',
  'DeleteQueue',
  'ListDeadLetterSourceQueues',
  'ListMessageMoveTasks',
  'ListQueueTags',
  'PurgeQueue',
  'ReceiveMessage',
  'RemovePermission',
  'SetQueueAttributes',
  'StartMessageMoveTask',
  'TagQueue',
  'UntagQueue',
]);

/** A refused request: HTTP status, the JSON `__type`, and the query-compatible error code (header). */
export class SqsApiError extends Error {
  override readonly name = 'SqsApiError';
  constructor(
    readonly status: number,
    readonly type: string,
    readonly queryCode: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const SQS = 'com.amazonaws.sqs#';
const CORAL = 'com.amazon.coral.service#';

/** SQS's errors, with the codes of its model (`awsQueryError`) and the texts SQS answers. */
export const sqsErrors = {
  nonExistentQueue: () =>
    new SqsApiError(
      400,
      `${SQS}QueueDoesNotExist`,
      'AWS.SimpleQueueService.NonExistentQueue',
      'The specified queue does not exist.',
    ),
  invalidAddress: (url: string) =>
    new SqsApiError(
      404,
      `${SQS}InvalidAddress`,
      'InvalidAddress',
      `The address ${url} is not valid for this endpoint.`,
    ),
  emptyBatch: () =>
    new SqsApiError(
      400,
      `${SQS}EmptyBatchRequest`,
      'AWS.SimpleQueueService.EmptyBatchRequest',
      'There should be at least one SendMessageBatchRequestEntry in the request.',
    ),
  tooManyEntries: (sent: number) =>
    new SqsApiError(
      400,
      `${SQS}TooManyEntriesInBatchRequest`,
      'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are ${SQS_MAX_BATCH_ENTRIES}. You have sent ${sent}.`,
    ),
  invalidBatchEntryId: () =>
    new SqsApiError(
      400,
      `${SQS}InvalidBatchEntryId`,
      'AWS.SimpleQueueService.InvalidBatchEntryId',
      'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
    ),
  idsNotDistinct: (id: string) =>
    new SqsApiError(
      400,
      `${SQS}BatchEntryIdsNotDistinct`,
      'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
      `Id ${id} repeated.`,
    ),
  batchTooLong: (max: number, sent: number) =>
    new SqsApiError(
      400,
      `${SQS}BatchRequestTooLong`,
      'AWS.SimpleQueueService.BatchRequestTooLong',
      `Batch requests cannot be longer than ${max} bytes. You have sent ${sent} bytes.`,
    ),
  messageTooLong: (max: number) =>
    sqsErrors.invalidParameterValue(
      `One or more parameters are invalid. Reason: Message must be shorter than ${max} bytes.`,
    ),
  invalidParameterValue: (message: string) =>
    new SqsApiError(400, `${CORAL}InvalidParameterValueException`, 'InvalidParameterValue', message),
  missingParameter: (message: string) =>
    new SqsApiError(400, `${CORAL}MissingParameterException`, 'MissingParameter', message),
  invalidMessageContents: (message: string) =>
    new SqsApiError(400, `${SQS}InvalidMessageContents`, 'InvalidMessageContents', message),
  invalidAttributeName: (name: string) =>
    new SqsApiError(400, `${SQS}InvalidAttributeName`, 'InvalidAttributeName', `Unknown Attribute ${name}.`),
  unsupported: (operation: string) =>
    new SqsApiError(
      400,
      `${SQS}UnsupportedOperation`,
      'AWS.SimpleQueueService.UnsupportedOperation',
      `The emulator does not serve ${operation}: its queue is drained by the event source mapping of the fan-out worker.`,
    ),
  unknownOperation: (target: string) =>
    new SqsApiError(400, `${CORAL}UnknownOperationException`, undefined, `Unknown operation ${target}.`),
  serialization: (message: string) => new SqsApiError(400, `${CORAL}SerializationException`, undefined, message),
  missingAuthentication: () =>
    new SqsApiError(
      403,
      `${CORAL}MissingAuthenticationTokenException`,
      'MissingAuthenticationToken',
      'Request is missing Authentication Token',
    ),
  requestTooLarge: () => new SqsApiError(413, `${CORAL}RequestEntityTooLargeException`, undefined, 'Request too large'),
};

function fromMessageError(error: SqsMessageError): SqsApiError {
  if (error.code === 'InvalidMessageContents') return sqsErrors.invalidMessageContents(error.message);
  if (error.code === 'MissingParameter') return sqsErrors.missingParameter(error.message);
  return sqsErrors.invalidParameterValue(error.message);
}

/** The queues of one emulator, by the path of their URL (`/{accountId}/{name}`). */
export class LocalSqs {
  readonly #queues = new Map<string, LocalSqsQueue>();

  add(queue: LocalSqsQueue): LocalSqsQueue {
    this.#queues.set(queue.path, queue);
    return queue;
  }

  /** The queue a `QueueUrl` names; any host is accepted, the path decides. @throws {SqsApiError} */
  byUrl(url: unknown): LocalSqsQueue {
    if (typeof url !== 'string' || url === '')
      throw sqsErrors.missingParameter('The request must contain the parameter QueueUrl.');
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      throw sqsErrors.invalidAddress(url);
    }
    const queue = this.#queues.get(path.replace(/\/+$/, ''));
    if (queue === undefined) throw sqsErrors.nonExistentQueue();
    return queue;
  }

  byName(name: string, accountId?: string): LocalSqsQueue | undefined {
    return [...this.#queues.values()].find(
      (q) => q.name === name && (accountId === undefined || q.accountId === accountId),
    );
  }

  all(): LocalSqsQueue[] {
    return [...this.#queues.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown, queryCode?: string): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomUUID(),
    ...(queryCode === undefined ? {} : { 'x-amzn-query-error': `${queryCode};Sender` }),
  });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BYTES) throw sqsErrors.requestTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES) throw sqsErrors.requestTooLarge();
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw sqsErrors.serialization('The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw sqsErrors.serialization('The request body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

/** The access key id of a SigV4 `Authorization` header (the emulator's `SenderId`). */
function accessKeyId(authorization: string): string {
  return /Credential=([^/,\s]+)/.exec(authorization)?.[1] ?? 'anonymous';
}

function delaySeconds(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 900)
    throw sqsErrors.invalidParameterValue(
      `Value ${String(value)} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.`,
    );
  return value;
}

/** `MessageSystemAttributes`: SQS takes `AWSTraceHeader` (a String) only. */
function traceHeader(value: unknown): { header: string | undefined; md5: string | undefined } {
  if (value === undefined || value === null) return { header: undefined, md5: undefined };
  const map = value as Record<string, Partial<SqsAttributeValue>>;
  const names = Object.keys(map);
  const trace = map.AWSTraceHeader;
  if (names.some((n) => n !== 'AWSTraceHeader'))
    throw sqsErrors.invalidParameterValue(
      `Message system attribute name '${names.find((n) => n !== 'AWSTraceHeader')}' is invalid.`,
    );
  if (trace === undefined) return { header: undefined, md5: undefined };
  if (trace.DataType !== 'String' || typeof trace.StringValue !== 'string' || trace.StringValue === '')
    throw sqsErrors.invalidParameterValue("Message system attribute 'AWSTraceHeader' must be a non-empty String.");
  return {
    header: trace.StringValue,
    md5: md5OfAttributes({ AWSTraceHeader: { DataType: 'String', StringValue: trace.StringValue } }),
  };
}

/** Checks one message (body, attributes, delay, system attributes) into what the queue takes. @throws {SqsApiError} */
function checkMessage(
  input: Record<string, unknown>,
  senderId: string,
  maxBytes: number,
): { message: NewMessage; md5OfSystemAttributes: string | undefined } {
  try {
    const body = checkBody(input.MessageBody);
    const attributes = checkAttributes(input.MessageAttributes);
    if (messageSize(body, attributes) > maxBytes) throw sqsErrors.messageTooLong(maxBytes);
    const delay = delaySeconds(input.DelaySeconds);
    const trace = traceHeader(input.MessageSystemAttributes);
    return {
      message: {
        body,
        attributes,
        delaySeconds: delay,
        senderId,
        ...(trace.header === undefined ? {} : { traceHeader: trace.header }),
      },
      md5OfSystemAttributes: trace.md5,
    };
  } catch (error) {
    if (error instanceof SqsMessageError) throw fromMessageError(error);
    throw error;
  }
}

function sentFields(queued: QueuedMessage, md5OfSystemAttributes: string | undefined) {
  return {
    MessageId: queued.messageId,
    MD5OfMessageBody: queued.md5OfBody,
    ...(queued.md5OfMessageAttributes === undefined ? {} : { MD5OfMessageAttributes: queued.md5OfMessageAttributes }),
    ...(md5OfSystemAttributes === undefined ? {} : { MD5OfMessageSystemAttributes: md5OfSystemAttributes }),
  };
}

/** A size for the batch check that never throws: attributes are checked per entry afterwards. */
function roughSize(entry: Record<string, unknown>): number {
  const body = typeof entry.MessageBody === 'string' ? entry.MessageBody : '';
  let attributes: Record<string, SqsAttributeValue> = {};
  try {
    attributes = checkAttributes(entry.MessageAttributes);
  } catch {
    // Refused per entry below.
  }
  return messageSize(body, attributes);
}

function sendMessage(queue: LocalSqsQueue, input: Record<string, unknown>, senderId: string) {
  const { message, md5OfSystemAttributes } = checkMessage(input, senderId, queue.settings.maxMessageBytes);
  return sentFields(queue.send(message), md5OfSystemAttributes);
}

function sendMessageBatch(queue: LocalSqsQueue, input: Record<string, unknown>, senderId: string) {
  const entries = input.Entries;
  if (!Array.isArray(entries) || entries.length === 0) throw sqsErrors.emptyBatch();
  if (entries.length > SQS_MAX_BATCH_ENTRIES) throw sqsErrors.tooManyEntries(entries.length);
  const seen = new Set<string>();
  for (const entry of entries as Record<string, unknown>[]) {
    const id = entry?.Id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(id)) throw sqsErrors.invalidBatchEntryId();
    if (seen.has(id)) throw sqsErrors.idsNotDistinct(id);
    seen.add(id);
  }
  const max = queue.settings.maxMessageBytes;
  const total = (entries as Record<string, unknown>[]).reduce((sum, entry) => sum + roughSize(entry), 0);
  if (total > max) throw sqsErrors.batchTooLong(max, total);

  const Successful: Record<string, unknown>[] = [];
  const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
  for (const entry of entries as Record<string, unknown>[]) {
    const Id = entry.Id as string;
    try {
      const { message, md5OfSystemAttributes } = checkMessage(entry, senderId, max);
      Successful.push({ Id, ...sentFields(queue.send(message), md5OfSystemAttributes) });
    } catch (error) {
      if (!(error instanceof SqsApiError)) throw error;
      // Per-entry refusals are reported in Failed with the query error code, the call itself succeeds.
      Failed.push({ Id, SenderFault: true, Code: error.queryCode ?? error.type, Message: error.message });
    }
  }
  return { Successful, Failed };
}

const QUEUE_ATTRIBUTES = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'DelaySeconds',
  'LastModifiedTimestamp',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'QueueArn',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'SqsManagedSseEnabled',
  'VisibilityTimeout',
] as const;

function queueAttributes(queue: LocalSqsQueue, requested: unknown): Record<string, string> {
  if (requested === undefined || requested === null) return {};
  if (!Array.isArray(requested)) throw sqsErrors.invalidParameterValue('AttributeNames must be a list.');
  const { visible, notVisible, delayed } = queue.counts();
  const created = String(Math.floor(queue.createdAt / 1000));
  const all: Record<(typeof QUEUE_ATTRIBUTES)[number], string> = {
    ApproximateNumberOfMessages: String(visible),
    ApproximateNumberOfMessagesNotVisible: String(notVisible),
    ApproximateNumberOfMessagesDelayed: String(delayed),
    CreatedTimestamp: created,
    DelaySeconds: '0',
    LastModifiedTimestamp: created,
    MaximumMessageSize: String(queue.settings.maxMessageBytes),
    MessageRetentionPeriod: '345600',
    QueueArn: queue.arn,
    ReceiveMessageWaitTimeSeconds: '0',
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: queue.deadLetterArn,
      maxReceiveCount: queue.settings.maxReceiveCount,
    }),
    SqsManagedSseEnabled: 'true',
    VisibilityTimeout: String(Math.ceil(queue.settings.visibilityTimeoutMs / 1000)),
  };
  const names = requested.includes('All') ? QUEUE_ATTRIBUTES : (requested as string[]);
  const out: Record<string, string> = {};
  for (const name of names) {
    if (!(QUEUE_ATTRIBUTES as readonly string[]).includes(name)) throw sqsErrors.invalidAttributeName(String(name));
    out[name] = all[name as (typeof QUEUE_ATTRIBUTES)[number]];
  }
  return out;
}

/**
 * Serves an SQS JSON request (`x-amz-target: AmazonSQS.*`, any path) and returns true; returns false (touching
 * nothing) for any other request. The queue URLs of `GetQueueUrl` / `ListQueues` use the request's `Host`.
 */
export async function handleSqsRequest(
  sqs: LocalSqs,
  logger: EmulatorLogger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const target = req.headers['x-amz-target'];
  if (typeof target !== 'string' || !target.startsWith(SQS_TARGET_PREFIX)) return false;
  const operation = target.slice(SQS_TARGET_PREFIX.length);
  const origin = `http://${req.headers.host ?? '127.0.0.1'}`;
  try {
    if (req.method !== 'POST') throw sqsErrors.unknownOperation(`${req.method} ${target}`);
    const authorization = req.headers.authorization;
    if (!authorization) throw sqsErrors.missingAuthentication();
    const input = await readJson(req);
    const senderId = accessKeyId(authorization);
    let output: unknown;
    switch (operation) {
      case 'SendMessage': {
        const queue = sqs.byUrl(input.QueueUrl);
        output = sendMessage(queue, input, senderId);
        logger.line('debug', LOG_TAG, `SendMessage ${queue.name} ${(output as { MessageId: string }).MessageId}`);
        break;
      }
      case 'SendMessageBatch': {
        const queue = sqs.byUrl(input.QueueUrl);
        const result = sendMessageBatch(queue, input, senderId);
        output = result;
        logger.line(
          result.Failed.length > 0 ? 'warn' : 'debug',
          LOG_TAG,
          `SendMessageBatch ${queue.name} ${result.Successful.length} sent${result.Failed.length > 0 ? `, ${result.Failed.length} failed: ${result.Failed.map((f) => f.Code).join(', ')}` : ''}`,
        );
        break;
      }
      case 'GetQueueUrl': {
        const name = input.QueueName;
        if (typeof name !== 'string' || name === '')
          throw sqsErrors.missingParameter('The request must contain the parameter QueueName.');
        const owner = typeof input.QueueOwnerAWSAccountId === 'string' ? input.QueueOwnerAWSAccountId : undefined;
        const queue = sqs.byName(name, owner);
        if (queue === undefined) throw sqsErrors.nonExistentQueue();
        output = { QueueUrl: `${origin}${queue.path}` };
        break;
      }
      case 'GetQueueAttributes': {
        output = { Attributes: queueAttributes(sqs.byUrl(input.QueueUrl), input.AttributeNames) };
        break;
      }
      case 'ListQueues': {
        const prefix = typeof input.QueueNamePrefix === 'string' ? input.QueueNamePrefix : '';
        output = {
          QueueUrls: sqs
            .all()
            .filter((q) => q.name.startsWith(prefix))
            .map((q) => `${origin}${q.path}`),
        };
        break;
      }
      default:
        throw OTHER_OPERATIONS.has(operation) ? sqsErrors.unsupported(operation) : sqsErrors.unknownOperation(target);
    }
    sendJson(res, 200, output);
  } catch (error) {
    if (!(error instanceof SqsApiError)) throw error;
    req.resume();
    logger.line('warn', LOG_TAG, `${operation} ${error.status} ${error.queryCode ?? error.type}: ${error.message}`);
    sendJson(res, error.status, { __type: error.type, message: error.message }, error.queryCode);
  }
  return true;
}
