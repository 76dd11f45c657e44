/**
 * Fake AWS endpoints for in-process benchmarks of the real core: the emulator's DynamoDB server (dynalite)
 * plus one HTTP server that answers, like AWS would on success,
 * - API Gateway's `@connections` posts (`POST /local/@connections/{id}`: 200),
 * - IoT Core's data-plane Publish (`POST /topics/{topic}`: 200),
 * - SQS's SendMessageBatch (AWS JSON 1.0, `x-amz-target: AmazonSQS.SendMessageBatch`: every entry sent, with
 *   the MD5 of its body that the SDK checks),
 * and records what it was sent: counts, metered units (32 KB per `@connections` post; 5 KB per IoT publish,
 * both as the HTTPS request and as the PUBLISH a subscriber receives; 64 KB per SQS request), which frame
 * reached which connection or topic (for exactly-once checks), and the SQS message bodies (so a benchmark
 * can run the fan-out worker on them).
 *
 * Everything runs in a child process, so `process.cpuUsage()` of the benchmark is the code under test alone
 * (SDK clients, core, JSON), not the servers'. The same approach as `bench/delivery-cost.ts`, with IoT and
 * SQS added.
 *
 * @example
 * const aws = await FakeAws.start({ tableName: 'viba-bench' });
 * // ... point a DynamoDbStore at aws.dynamodbEndpoint, ConnectionsDelivery at aws.connectionsEndpoint,
 * // IotDelivery at aws.iotEndpoint, SqsFanoutQueue at aws.sqsEndpoint / aws.queueUrl
 * const seen = await aws.report(); // and clears it
 * await aws.close();
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { withDeadline } from './process.js';

const ROLE = 'VIBA_BENCH_FAKE_AWS';
const STEP_DEADLINE_MS = 300_000;
const APIGW_UNIT = 32 * 1024;
const IOT_UNIT = 5 * 1024;
const SQS_UNIT = 64 * 1024;

/** What the fake endpoints saw since the last report. */
export interface FakeAwsReport {
  connections: {
    posts: number;
    bytes: number;
    /** 32 KB units, per post. */
    units: number;
    /** `connectionId|frameKey` -> posts (see {@link frameKeyOf}). */
    pairs: Map<string, number>;
  };
  iot: {
    publishes: number;
    /** Payload bytes. */
    bytes: number;
    /** 5 KB units of the HTTPS requests (their body). */
    requestUnits: number;
    /** 5 KB units of the PUBLISH each subscriber receives (payload + topic + content type). */
    deliveryUnits: number;
    /** `topic|frameKey` -> publishes. */
    pairs: Map<string, number>;
  };
  sqs: {
    /** SendMessageBatch calls. */
    calls: number;
    /** Messages sent, over all calls. */
    messages: number;
    bytes: number;
    /** 64 KB chunks, per call. */
    units: number;
    /** The message bodies, in order. */
    bodies: string[];
  };
}

/** How a frame is told apart in {@link FakeAwsReport} pairs: its `id`, else type, user and state (presence). */
export function frameKeyOf(frame: unknown): string {
  if (typeof frame !== 'object' || frame === null) return '?';
  const f = frame as Record<string, unknown>;
  if (typeof f.id === 'string') return f.id;
  return `${String(f.type)}:${String(f.user ?? '')}:${String(f.state ?? '')}`;
}

type Request = { type: 'report' } | { type: 'close' };
type ToChild = Request & { id: number };
type SerializedReport = Omit<FakeAwsReport, 'connections' | 'iot'> & {
  connections: Omit<FakeAwsReport['connections'], 'pairs'> & { pairs: [string, number][] };
  iot: Omit<FakeAwsReport['iot'], 'pairs'> & { pairs: [string, number][] };
};
type FromChild =
  | { type: 'ready'; dynamodbEndpoint: string; base: string }
  | { id: number; type: 'ok' }
  | { id: number; type: 'report'; report: SerializedReport };

function emptyReport(): SerializedReport {
  return {
    connections: { posts: 0, bytes: 0, units: 0, pairs: [] },
    iot: { publishes: 0, bytes: 0, requestUnits: 0, deliveryUnits: 0, pairs: [] },
    sqs: { calls: 0, messages: 0, bytes: 0, units: 0, bodies: [] },
  };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** The child process: dynalite and the fake endpoints. */
async function runChild(): Promise<void> {
  const { startLocalDynamoDb } = await import('@viba-realtime/local');
  const tableName = process.env[`${ROLE}_TABLE`] ?? 'viba-bench';
  // The sweeper's Scan would add load at random times; nothing in a benchmark expires.
  const db = await startLocalDynamoDb({ tableName, sweepIntervalMs: 3_600_000 });
  let report = emptyReport();
  let connectionPairs = new Map<string, number>();
  let topicPairs = new Map<string, number>();

  const answer = (res: ServerResponse, status: number, body?: unknown, contentType = 'application/json') => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
      ...(body === undefined ? {} : { 'content-type': contentType }),
    });
    res.end(text);
  };

  const handle = (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const post = /^\/local\/@connections\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'POST' && post) {
      report.connections.posts += 1;
      report.connections.bytes += body.length;
      report.connections.units += Math.max(1, Math.ceil(body.length / APIGW_UNIT));
      bump(connectionPairs, `${decodeURIComponent(post[1] as string)}|${frameKeyOf(parseJson(body))}`);
      answer(res, 200);
      return;
    }
    if (req.method === 'POST' && url.pathname.startsWith('/topics/')) {
      const topic = decodeURIComponent(url.pathname.slice('/topics/'.length));
      const contentType = url.searchParams.get('contentType') ?? '';
      report.iot.publishes += 1;
      report.iot.bytes += body.length;
      report.iot.requestUnits += Math.max(1, Math.ceil(body.length / IOT_UNIT));
      const delivered = body.length + Buffer.byteLength(topic) + Buffer.byteLength(contentType);
      report.iot.deliveryUnits += Math.max(1, Math.ceil(delivered / IOT_UNIT));
      bump(topicPairs, `${topic}|${frameKeyOf(parseJson(body))}`);
      answer(res, 200);
      return;
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method === 'POST' && target === 'AmazonSQS.SendMessageBatch') {
      const input = parseJson(body) as { Entries?: { Id: string; MessageBody: string }[] } | undefined;
      const entries = input?.Entries ?? [];
      report.sqs.calls += 1;
      report.sqs.messages += entries.length;
      report.sqs.bytes += body.length;
      report.sqs.units += Math.max(1, Math.ceil(body.length / SQS_UNIT));
      report.sqs.bodies.push(...entries.map((e) => e.MessageBody));
      answer(
        res,
        200,
        {
          Successful: entries.map((e) => ({
            Id: e.Id,
            MessageId: randomUUID(),
            MD5OfMessageBody: createHash('md5').update(e.MessageBody, 'utf8').digest('hex'),
          })),
          Failed: [],
        },
        'application/x-amz-json-1.0',
      );
      return;
    }
    answer(res, 404, { message: `fake AWS: nothing at ${req.method} ${url.pathname} ${target}` });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const reply = (message: FromChild) => process.send?.(message);
  process.on('message', (raw) => {
    const message = raw as ToChild;
    if (message.type === 'report') {
      report.connections.pairs = [...connectionPairs];
      report.iot.pairs = [...topicPairs];
      reply({ id: message.id, type: 'report', report });
      report = emptyReport();
      connectionPairs = new Map();
      topicPairs = new Map();
    } else {
      server.closeAllConnections();
      server.close();
      void db.close().finally(() => {
        reply({ id: message.id, type: 'ok' });
        process.disconnect?.();
      });
    }
  });
  reply({ type: 'ready', dynamodbEndpoint: db.endpoint, base: `http://127.0.0.1:${port}` });
}

/** The benchmark's handle on the child process. */
export class FakeAws {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (m: FromChild) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  /** The DynamoDB endpoint (dynalite, with the table created). */
  readonly dynamodbEndpoint: string;
  /** `@connections` base URL (stage `local`), for `ConnectionsDelivery`. */
  readonly connectionsEndpoint: string;
  /** IoT data endpoint, for `IotDelivery`. */
  readonly iotEndpoint: string;
  /** SQS endpoint, for `SqsFanoutQueue`, and a queue URL on it. */
  readonly sqsEndpoint: string;
  readonly queueUrl: string;

  private constructor(child: ChildProcess, dynamodbEndpoint: string, base: string) {
    this.#child = child;
    this.dynamodbEndpoint = dynamodbEndpoint;
    this.connectionsEndpoint = `${base}/local`;
    this.iotEndpoint = base;
    this.sqsEndpoint = base;
    this.queueUrl = `${base}/000000000000/viba-bench-fanout`;
    child.on('message', (raw) => {
      const message = raw as FromChild;
      if (!('id' in message)) return;
      this.#pending.get(message.id)?.resolve(message);
      this.#pending.delete(message.id);
    });
    child.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`fake AWS exited (${code})`));
      this.#pending.clear();
    });
  }

  /** Starts dynalite (with `tableName` created) and the fake endpoints in a child process. */
  static async start(options: { tableName: string }): Promise<FakeAws> {
    const file = fileURLToPath(import.meta.url);
    const child = fork(file, [], {
      // tsx resolves from the repository root, where it is installed.
      cwd: join(dirname(file), '..', '..'),
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        [ROLE]: '1',
        [`${ROLE}_TABLE`]: options.tableName,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = new Promise<FromChild>((resolve, reject) => {
      child.once('message', (m) => resolve(m as FromChild));
      child.once('exit', (code) => reject(new Error(`fake AWS exited before ready (${code})`)));
      child.once('error', reject);
    });
    const message = await withDeadline(ready, 60_000, 'starting fake AWS').catch((error: unknown) => {
      child.kill();
      throw error;
    });
    if (message.type !== 'ready') throw new Error(`unexpected first message ${message.type}`);
    return new FakeAws(child, message.dynamodbEndpoint, message.base);
  }

  #call(message: Request): Promise<FromChild> {
    const id = this.#nextId++;
    const answer = new Promise<FromChild>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#child.send({ ...message, id });
    return withDeadline(answer, STEP_DEADLINE_MS, `fake AWS: ${message.type}`);
  }

  /** What the endpoints saw since the last report; clears it. */
  async report(): Promise<FakeAwsReport> {
    const message = await this.#call({ type: 'report' });
    if (message.type !== 'report') throw new Error('unexpected answer to report');
    const r = message.report;
    return {
      connections: { ...r.connections, pairs: new Map(r.connections.pairs) },
      iot: { ...r.iot, pairs: new Map(r.iot.pairs) },
      sqs: r.sqs,
    };
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || !this.#child.connected) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    await this.#call({ type: 'close' }).catch(() => undefined);
    await withDeadline(exited, 10_000, 'fake AWS exit').catch(() => this.#child.kill());
  }
}

const entry = process.argv[1];
if (process.env[ROLE] === '1' && entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  await runChild();
}
