/**
 * The emulator's SQS (the fan-out queue) against the real `SQSClient`: SendMessage and SendMessageBatch
 * accepted with the digests the SDK checks, SQS's refusals raised as the SDK's exception classes; the event
 * source mapping handing messages to the worker in Lambda's event shape, redelivering what fails with a higher
 * `ApproximateReceiveCount`, moving a message to the dead letters after `maxReceiveCount` receives, bounding
 * concurrency, and closing with the emulator; and the real `fanout-worker` handler delivering a batch queued by
 * the real `SqsFanoutQueue` to a WebSocket client.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BatchEntryIdsNotDistinct,
  BatchRequestTooLong,
  EmptyBatchRequest,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  InvalidBatchEntryId,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
  TooManyEntriesInBatchRequest,
  UnsupportedOperation,
} from '@aws-sdk/client-sqs';
import { createLogger, type FanoutBatch, SqsFanoutQueue } from '@viba-realtime/lambdas';
import {
  banner,
  type Emulator,
  md5OfAttributes,
  md5OfBody,
  type SqsWorkerFunction,
  startEmulator,
} from '@viba-realtime/local';
import { ENV } from '@viba-realtime/protocol';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const NOW = Date.UTC(2026, 0, 1);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Resolves after `n` calls of the returned function, with their arguments. */
function collector<T>(n: number): { push: (value: T) => void; all: Promise<T[]> } {
  const got: T[] = [];
  let resolve: (values: T[]) => void = () => {};
  const all = new Promise<T[]>((r) => {
    resolve = r;
  });
  return {
    push(value) {
      got.push(value);
      if (got.length === n) resolve([...got]);
    },
    all,
  };
}

describe('SQS API and event source mapping (stub worker)', () => {
  let emulator: Emulator;
  let sqs: SQSClient;
  let queueUrl: string;
  const lines: string[] = [];
  /** What the stub worker does with each event; reset after each test. */
  let work: (event: SQSEvent) => Promise<SQSBatchResponse | undefined> = async () => undefined;
  const worker: SqsWorkerFunction = (event) => work(event);

  beforeAll(async () => {
    emulator = await startEmulator({
      port: 0,
      iot: false,
      clock: () => NOW,
      logLevel: 'warn',
      log: (line) => lines.push(line),
      fanoutQueue: { visibilityTimeoutMs: 0, concurrency: 4 },
      fanoutWorker: worker,
    });
    if (!emulator.fanoutQueueUrl) throw new Error('no fan-out queue');
    queueUrl = emulator.fanoutQueueUrl;
    sqs = new SQSClient({ region: 'us-east-1', endpoint: emulator.sqsEndpoint, credentials });
  });

  afterEach(async () => {
    await emulator.fanoutQueue?.idle();
    work = async () => undefined;
    lines.length = 0;
  });

  afterAll(async () => {
    sqs.destroy();
    await emulator.close();
  });

  it('gives the handlers the queue URL and the SQS endpoint, as the stack gives them the queue', () => {
    expect(queueUrl).toBe(`${emulator.httpUrl}/000000000000/viba-realtime-fanout`);
    expect(emulator.env[ENV.fanoutQueueUrl]).toBe(queueUrl);
    expect(emulator.env[ENV.sqsEndpoint]).toBe(emulator.httpUrl);
    expect(banner(emulator, { host: '127.0.0.1', dataDir: undefined, externalDb: false })).toContain(
      `Fan-out queue  ${queueUrl}`,
    );
  });

  it('accepts SendMessage with the body and attribute digests, and hands the worker a Lambda SQS event', async () => {
    const events = collector<SQSEvent>(1);
    work = async (event) => {
      events.push(event);
      return { batchItemFailures: [] };
    };
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: '{"hello":"wörld"}',
        MessageAttributes: {
          batchId: { DataType: 'String', StringValue: 'm_1.0' },
          attempt: { DataType: 'Number', StringValue: '1' },
        },
      }),
    );
    // The SDK already compared MD5OfMessageBody with its own digest (it throws on a mismatch).
    expect(sent.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.MD5OfMessageBody).toBe(md5OfBody('{"hello":"wörld"}'));
    expect(sent.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);

    const [event] = await events.all;
    expect(event?.Records).toHaveLength(1);
    const record = event?.Records[0] as SQSRecord;
    expect(record).toEqual({
      messageId: sent.MessageId,
      receiptHandle: expect.stringMatching(/^AQEB[A-Za-z0-9+/=]+$/),
      body: '{"hello":"wörld"}',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(NOW),
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: String(NOW),
      },
      messageAttributes: {
        batchId: { stringValue: 'm_1.0', stringListValues: [], binaryListValues: [], dataType: 'String' },
        attempt: { stringValue: '1', stringListValues: [], binaryListValues: [], dataType: 'Number' },
      },
      md5OfBody: sent.MD5OfMessageBody,
      md5OfMessageAttributes: sent.MD5OfMessageAttributes,
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:viba-realtime-fanout',
      awsRegion: 'us-east-1',
    });
    await emulator.fanoutQueue?.idle();
    expect(emulator.fanoutQueue?.stats).toMatchObject({ deleted: expect.any(Number), deadLettered: 0 });
  });

  it('accepts SendMessageBatch and reports an entry SQS refuses in Failed', async () => {
    const records = collector<SQSRecord>(2);
    work = async (event) => {
      for (const record of event.Records) records.push(record);
      return undefined;
    };
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: 'b0', MessageBody: 'zero' },
          { Id: 'b1', MessageBody: 'one', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } },
          { Id: 'b2', MessageBody: 'nul \u0000 is not allowed' },
        ],
      }),
    );
    expect(result.Successful?.map((s) => s.Id)).toEqual(['b0', 'b1']);
    expect(result.Successful?.[1]?.MD5OfMessageAttributes).toBe(
      md5OfAttributes({ k: { DataType: 'String', StringValue: 'v' } }),
    );
    expect(result.Failed).toEqual([
      { Id: 'b2', SenderFault: true, Code: 'InvalidMessageContents', Message: expect.stringContaining("'#x0'") },
    ]);
    expect((await records.all).map((r) => r.body).sort()).toEqual(['one', 'zero']);
  });

  it("raises SQS's refusals as the SDK's exception classes", async () => {
    const refusal = (input: Partial<ConstructorParameters<typeof SendMessageBatchCommand>[0]>) =>
      sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: [], ...input })).catch((e: unknown) => e);
    const entry = (i: number, body = 'x') => ({ Id: `e${i}`, MessageBody: body });

    const missing = await sqs
      .send(new SendMessageCommand({ QueueUrl: `${emulator.httpUrl}/000000000000/nope`, MessageBody: 'x' }))
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(QueueDoesNotExist);
    expect(missing).toMatchObject({
      $metadata: { httpStatusCode: 400 },
      Code: 'AWS.SimpleQueueService.NonExistentQueue',
      message: 'The specified queue does not exist.',
    });
    expect(await refusal({ Entries: Array.from({ length: 11 }, (_, i) => entry(i)) })).toBeInstanceOf(
      TooManyEntriesInBatchRequest,
    );
    expect(await refusal({ Entries: [] })).toBeInstanceOf(EmptyBatchRequest);
    expect(await refusal({ Entries: [entry(1), entry(1)] })).toBeInstanceOf(BatchEntryIdsNotDistinct);
    expect(await refusal({ Entries: [{ Id: 'not ok!', MessageBody: 'x' }] })).toBeInstanceOf(InvalidBatchEntryId);
    const tooLong = await refusal({ Entries: [entry(1, 'a'.repeat(150_000)), entry(2, 'b'.repeat(150_000))] });
    expect(tooLong).toBeInstanceOf(BatchRequestTooLong);
    expect((tooLong as Error).message).toBe(
      'Batch requests cannot be longer than 262144 bytes. You have sent 300000 bytes.',
    );

    // Not in SQS's model: the SDK raises its base class with SQS's code as the name.
    const big = await sqs
      .send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x'.repeat(256 * 1024 + 1) }))
      .catch((e: unknown) => e);
    expect(big).toBeInstanceOf(SQSServiceException);
    expect(big).toMatchObject({
      name: 'InvalidParameterValue',
      message: 'One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.',
    });
    // Exactly at the limit, body and attribute (name + type + value) counted together, is accepted.
    const attribute = { a: { DataType: 'String', StringValue: 'v' } };
    await expect(
      sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: 'x'.repeat(256 * 1024 - 8),
          MessageAttributes: attribute,
        }),
      ),
    ).resolves.toMatchObject({ MessageId: expect.any(String) });

    const receive = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl })).catch((e: unknown) => e);
    expect(receive).toBeInstanceOf(UnsupportedOperation);
    expect(lines.some((l) => /SQS\s+SendMessage 400 AWS\.SimpleQueueService\.NonExistentQueue/.test(l))).toBe(true);
  });

  it('refuses an unsigned request with 403, as AWS does', async () => {
    const response = await fetch(emulator.sqsEndpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AmazonSQS.SendMessage', 'content-type': 'application/x-amz-json-1.0' },
      body: JSON.stringify({ QueueUrl: queueUrl, MessageBody: 'x' }),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ __type: expect.stringContaining('MissingAuthenticationToken') });
  });

  it('answers GetQueueUrl and GetQueueAttributes', async () => {
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: 'viba-realtime-fanout' }))).QueueUrl).toBe(queueUrl);
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: 'other' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }),
    );
    expect(Attributes).toMatchObject({
      QueueArn: 'arn:aws:sqs:us-east-1:000000000000:viba-realtime-fanout',
      MaximumMessageSize: '262144',
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:viba-realtime-fanout-dlq',
        maxReceiveCount: 5,
      }),
      ApproximateNumberOfMessages: '0',
    });
  });

  it('redelivers a record reported in batchItemFailures with ApproximateReceiveCount + 1', async () => {
    const receives = collector<SQSRecord>(2);
    work = async (event) => {
      const record = event.Records[0] as SQSRecord;
      receives.push(record);
      return record.attributes.ApproximateReceiveCount === '1'
        ? { batchItemFailures: [{ itemIdentifier: record.messageId }] }
        : { batchItemFailures: [] };
    };
    const before = { ...emulator.fanoutQueue?.stats };
    const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'retry me' }));
    const [first, second] = await receives.all;
    expect([first?.messageId, second?.messageId]).toEqual([MessageId, MessageId]);
    expect(second?.attributes.ApproximateReceiveCount).toBe('2');
    expect(second?.receiptHandle).not.toBe(first?.receiptHandle);
    await emulator.fanoutQueue?.idle();
    expect(emulator.fanoutQueue?.stats).toMatchObject({
      sent: (before.sent ?? 0) + 1,
      received: (before.received ?? 0) + 2,
      failed: (before.failed ?? 0) + 1,
      deleted: (before.deleted ?? 0) + 1,
    });
    expect(lines.some((l) => l.includes(`${MessageId} failed, receive 1/5 (reported in batchItemFailures)`))).toBe(
      true,
    );
  });

  it('redelivers the whole event when the worker throws or names an unknown itemIdentifier', async () => {
    const receives = collector<string>(3);
    work = async (event) => {
      const record = event.Records[0] as SQSRecord;
      receives.push(record.attributes.ApproximateReceiveCount);
      if (record.attributes.ApproximateReceiveCount === '1') throw new Error('DynamoDB is down');
      if (record.attributes.ApproximateReceiveCount === '2') return { batchItemFailures: [{ itemIdentifier: 'x' }] };
      return undefined;
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'flaky' }));
    expect(await receives.all).toEqual(['1', '2', '3']);
  });

  it('moves a message to the dead letters after 5 receives, logged at error level', async () => {
    const counts: string[] = [];
    work = async (event) => {
      const record = event.Records[0] as SQSRecord;
      counts.push(record.attributes.ApproximateReceiveCount);
      return { batchItemFailures: [{ itemIdentifier: record.messageId }] };
    };
    const deadBefore = emulator.fanoutQueue?.deadLetters.length ?? 0;
    const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'poison' }));
    await emulator.fanoutQueue?.idle();
    expect(counts).toEqual(['1', '2', '3', '4', '5']);
    expect(emulator.fanoutQueue?.deadLetters.slice(deadBefore)).toEqual([
      {
        messageId: MessageId,
        body: 'poison',
        messageAttributes: {},
        receiveCount: 5,
        sentTimestamp: NOW,
        deadLetteredAt: NOW,
        lastError: 'reported in batchItemFailures',
      },
    ]);
    expect(lines.filter((l) => l.includes('moved to the dead-letter queue'))).toEqual([
      expect.stringMatching(
        new RegExp(`SQS\\s+viba-realtime-fanout ${MessageId} moved to the dead-letter queue after 5 receives`),
      ),
    ]);
  });

  it('runs at most `concurrency` worker invocations at once', async () => {
    let active = 0;
    let most = 0;
    let started = 0;
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    work = async () => {
      active++;
      started++;
      most = Math.max(most, active);
      if (started === 4) open();
      await gate;
      active--;
      return undefined;
    };
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `c${i}`, MessageBody: `m${i}` })),
      }),
    );
    await emulator.fanoutQueue?.idle();
    expect(started).toBe(10);
    expect(most).toBe(4);
  });
});

describe('the MD5 digests', () => {
  it('computes MD5OfMessageAttributes as SQS specifies (published examples)', () => {
    expect(md5OfAttributes({ SellerName: { DataType: 'String', StringValue: 'Example Store' } })).toBe(
      'cd28f3b68aeee4b2eac9c66f2f694b58',
    );
    expect(
      md5OfAttributes({
        ordinal: { DataType: 'Number', StringValue: '1' },
        category: { DataType: 'String', StringValue: 'test' },
      }),
    ).toBe('d21ae90c49061e927f57df5f5d72be1f');
    expect(md5OfAttributes({})).toBeUndefined();
  });

  it('are checked by the SDK: a wrong MD5OfMessageBody fails the send', async () => {
    const liar = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ MessageId: 'x', MD5OfMessageBody: '00000000000000000000000000000000' }));
      });
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    const client = new SQSClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`,
      credentials,
    });
    try {
      await expect(
        client.send(new SendMessageCommand({ QueueUrl: 'http://x/000000000000/q', MessageBody: 'hi' })),
      ).rejects.toThrow('InvalidChecksumError');
    } finally {
      client.destroy();
      liar.closeAllConnections();
      await new Promise<void>((resolve) => liar.close(() => resolve()));
    }
  });
});

describe('the real fan-out worker', () => {
  let emulator: Emulator;

  beforeAll(async () => {
    emulator = await startEmulator({
      port: 0,
      iot: false,
      logLevel: 'silent',
      fanoutQueue: { visibilityTimeoutMs: 0 },
    });
  });

  afterAll(async () => {
    await emulator.close();
  });

  it('delivers a batch queued by SqsFanoutQueue to its WebSocket target, once per batch id', async () => {
    const { idToken } = emulator.issuer.mintPair({ sub: 'alice' });
    const ws = new WebSocket(`${emulator.url}?token=${idToken}`);
    const frames: Record<string, unknown>[] = [];
    const firstFrame = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        frames.push(JSON.parse(String(data)) as Record<string, unknown>);
        resolve();
      });
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    try {
      const [connectionId] = emulator.gateway.connectionIds();
      if (!connectionId || !emulator.fanoutQueueUrl) throw new Error('not connected');
      // Configured as a backend would be: the queue URL and the endpoint, nothing emulator-specific.
      const queue = new SqsFanoutQueue({
        queueUrl: emulator.fanoutQueueUrl,
        region: 'us-east-1',
        endpoint: emulator.sqsEndpoint,
        credentials,
        log: createLogger('silent'),
      });
      const frame = { type: 'announcement', id: 'a_1', ts: 1, body: { text: 'hello everyone' } };
      const batch = { batchId: 'a_1.0', frame, targets: [{ connectionId, sub: 'alice' }], attempt: 1 };
      await queue.enqueue([batch as unknown as FanoutBatch]);
      await firstFrame;
      expect(frames).toEqual([frame]);

      // The same batch again (SQS delivers at least once; a retried request re-queues): the worker's claim
      // finds it done and posts nothing.
      await queue.enqueue([batch as unknown as FanoutBatch]);
      await emulator.fanoutQueue?.idle();
      expect(emulator.fanoutQueue?.stats).toMatchObject({ sent: 2, received: 2, deleted: 2, failed: 0 });
      // A round trip on the same connection: a second post would have arrived before its answer.
      const pong = new Promise<void>((resolve) => ws.on('message', () => resolve()));
      ws.send(JSON.stringify({ action: 'ping', id: 'p1' }));
      await pong;
      expect(frames.filter((f) => f.type === 'announcement')).toHaveLength(1);
      queue.client.destroy();
    } finally {
      ws.close();
      await emulator.gateway.settled();
    }
  });

  it('refuses, as SQS does, a message with a character SQS does not allow (U+FFFF)', async () => {
    const client = new SQSClient({ region: 'us-east-1', endpoint: emulator.sqsEndpoint, credentials });
    try {
      const refused = await client
        .send(new SendMessageCommand({ QueueUrl: emulator.fanoutQueueUrl, MessageBody: 'odd \uFFFF text' }))
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ name: 'InvalidMessageContents' });
    } finally {
      client.destroy();
    }
  });

  it('SqsFanoutQueue escapes U+FFFE/U+FFFF in a batch (JSON keeps the text), so SQS takes it', async () => {
    const queue = new SqsFanoutQueue({
      queueUrl: emulator.fanoutQueueUrl as string,
      region: 'us-east-1',
      endpoint: emulator.sqsEndpoint,
      credentials,
      log: createLogger('silent'),
    });
    try {
      // JSON.stringify escapes control characters and lone surrogates, but not the noncharacters U+FFFE/U+FFFF.
      const frame = { type: 'announcement', id: 'a_2', ts: 1, body: { text: 'odd \uFFFF\uFFFE text' } };
      const batch = { batchId: 'a_2.0', frame, targets: [{ connectionId: 'x', sub: 'alice' }], attempt: 1 };
      const sent = emulator.fanoutQueue?.stats.sent ?? 0;
      await expect(queue.enqueue([batch as unknown as FanoutBatch])).resolves.toBeUndefined();
      expect(emulator.fanoutQueue?.stats.sent).toBe(sent + 1);
      expect(JSON.parse(JSON.stringify(batch)).frame.body.text).toBe('odd \uFFFF\uFFFE text');
    } finally {
      queue.client.destroy();
    }
  });

  it('runs without a queue when asked: no queue URL in the handlers environment', async () => {
    const plain = await startEmulator({ port: 0, iot: false, logLevel: 'silent', fanoutQueue: false });
    try {
      expect([plain.fanoutQueue, plain.fanoutQueueUrl, plain.env[ENV.fanoutQueueUrl]]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    } finally {
      await plain.close();
    }
  });
});

describe('close()', () => {
  it('waits for the invocations in flight and drops what is still queued, with a warning', async () => {
    const lines: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const firstStarted = collector<void>(1);
    const emulator = await startEmulator({
      port: 0,
      iot: false,
      logLevel: 'warn',
      log: (line) => lines.push(line),
      fanoutQueue: { concurrency: 1 },
      fanoutWorker: async () => {
        firstStarted.push();
        await gate;
        return undefined;
      },
    });
    const sqs = new SQSClient({ region: 'us-east-1', endpoint: emulator.sqsEndpoint, credentials });
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: emulator.fanoutQueueUrl,
        Entries: [0, 1, 2].map((i) => ({ Id: `d${i}`, MessageBody: `m${i}` })),
      }),
    );
    sqs.destroy();
    await firstStarted.all;
    const closing = emulator.close();
    release();
    await closing;
    expect(emulator.fanoutQueue?.stats).toMatchObject({ sent: 3, received: 1, deleted: 1, dropped: 2 });
    expect(lines.some((l) => l.includes('viba-realtime-fanout closed: 2 message(s) dropped undelivered'))).toBe(true);
    await expect(emulator.fanoutQueue?.idle()).resolves.toBeUndefined();
  });
});
