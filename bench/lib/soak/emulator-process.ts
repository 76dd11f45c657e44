/**
 * The emulator under soak, in a child process of its own: its heap, RSS, CPU time and active handles are then
 * the emulator's alone, not mixed with the 2,000 clients of the load generator. The child runs with
 * `--expose-gc`, so the parent can ask for memory after a full collection. It is driven over Node's IPC
 * channel: mint tokens, sample, drop every connection (a server-side reconnect storm), settle, close. Its
 * stdout and stderr (the emulator's log lines and the handlers' JSON logs, at `warn` and above) are handed to
 * the parent line by line.
 *
 * @example
 * const emulator = await EmulatorProcess.start({ store: 'disk', onLine: console.log });
 * const [token] = await emulator.mint(['alice'], 3600);
 * const sample = await emulator.sample({ gc: true });
 * await emulator.close();
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { withDeadline } from '../process.js';

const ROLE = 'VIBA_SOAK_EMULATOR';
const CALL_DEADLINE_MS = 120_000;

/** One reading of the emulator process. */
export interface EmulatorSample {
  /** `performance.timeOrigin + performance.now()` of the child, epoch ms. */
  at: number;
  /** Whether a full GC ran just before (then the heap is live objects only). */
  gc: boolean;
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  /** `process.getActiveResourcesInfo()` counted by type: what keeps the event loop alive. */
  resources: Record<string, number>;
  /** User + system CPU time of the process since it started, ms. */
  cpuMs: number;
  /** Event-loop delay since the previous non-GC sample, ms. */
  loopDelayMs: { p50: number; p99: number; max: number };
  /** Open connections as the emulator sees them. */
  connections: { websocket: number; mqtt: number };
}

/** Where the emulator listens and what a publisher needs, as the child reports it when ready. */
export interface EmulatorEndpoints {
  url: string;
  mqttUrl: string;
  mqttWsUrl: string;
  dynamodbEndpoint: string;
  tableName: string;
  connectionsEndpoint: string;
  iotDataEndpoint: string;
  fanoutQueueUrl: string | undefined;
  sqsEndpoint: string;
}

type Request =
  | { type: 'mint'; subs: string[]; ttlSeconds: number }
  | { type: 'sample'; gc: boolean }
  | { type: 'snapshot'; file: string }
  | { type: 'drop' }
  | { type: 'connections' }
  | { type: 'settle' }
  | { type: 'close' };

type Answer =
  | { id: number; type: 'mint'; tokens: string[] }
  | { id: number; type: 'sample'; sample: EmulatorSample }
  | { id: number; type: 'snapshot'; file: string }
  | { id: number; type: 'drop'; websocket: number; mqtt: number }
  | { id: number; type: 'connections'; websocket: [connectionId: string, user: string][] }
  | { id: number; type: 'settle' }
  | { id: number; type: 'close' }
  | { id: number; type: 'failed'; message: string };

type FromChild = Answer | ({ type: 'ready' } & EmulatorEndpoints);

/** Options of {@link EmulatorProcess.start}. */
export interface EmulatorProcessOptions {
  /** `disk`: DynamoDB data in a temporary directory (removed on close); `memory`: in the heap. */
  store: 'disk' | 'memory';
  /** Every line the child prints (emulator log lines, handler JSON logs, warnings). */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Writes a V8 CPU profile of the whole child run into this directory when it exits. */
  cpuProfileDir?: string;
}

/** The parent's handle on the emulator child process. */
export class EmulatorProcess {
  readonly endpoints: EmulatorEndpoints;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  readonly #dataDir: string | undefined;
  readonly exited: Promise<number | null>;
  #nextId = 1;

  private constructor(child: ChildProcess, endpoints: EmulatorEndpoints, dataDir: string | undefined) {
    this.#child = child;
    this.endpoints = endpoints;
    this.#dataDir = dataDir;
    child.on('message', (raw) => {
      const message = raw as FromChild;
      if (!('id' in message)) return;
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.type === 'failed') pending?.reject(new Error(`emulator child: ${message.message}`));
      else pending?.resolve(message);
    });
    // Errors of the IPC channel reach the calls through their send callbacks and the 'exit' below.
    child.on('error', () => {});
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        for (const p of this.#pending.values()) p.reject(new Error(`emulator child exited (${code})`));
        this.#pending.clear();
        resolve(code);
      });
    });
  }

  /** Starts the emulator in a child process and resolves once it listens. */
  static async start(options: EmulatorProcessOptions): Promise<EmulatorProcess> {
    const file = fileURLToPath(import.meta.url);
    const dataDir = options.store === 'disk' ? mkdtempSync(join(tmpdir(), 'viba-soak-')) : undefined;
    const child = fork(file, [], {
      // tsx resolves from the repository root, where it is installed.
      cwd: join(dirname(file), '..', '..', '..'),
      execArgv: [
        '--import',
        'tsx',
        '--expose-gc',
        ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : []),
      ],
      env: {
        ...process.env,
        [ROLE]: '1',
        ...(dataDir ? { [`${ROLE}_DATA_DIR`]: dataDir } : {}),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (source) createInterface({ input: source }).on('line', (line) => options.onLine(line, stream));
    }
    const ready = new Promise<FromChild>((resolve, reject) => {
      child.once('message', (m) => resolve(m as FromChild));
      child.once('exit', (code) => reject(new Error(`emulator child exited before ready (${code})`)));
      child.once('error', reject);
    });
    const message = await withDeadline(ready, 60_000, 'starting the emulator child').catch((error: unknown) => {
      child.kill();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      throw error;
    });
    if (message.type !== 'ready') throw new Error(`unexpected first message ${message.type}`);
    const { type: _type, ...endpoints } = message;
    return new EmulatorProcess(child, endpoints, dataDir);
  }

  #call<T extends Answer['type']>(request: Request): Promise<Extract<Answer, { type: T }>> {
    const id = this.#nextId++;
    if (!this.#child.connected) return Promise.reject(new Error(`emulator child is gone (${request.type})`));
    const answer = new Promise<Answer>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // With a callback, a failed send rejects this call instead of emitting 'error' on the child.
    this.#child.send({ ...request, id }, (error) => {
      if (!error) return;
      this.#pending.get(id)?.reject(error);
      this.#pending.delete(id);
    });
    return withDeadline(answer, CALL_DEADLINE_MS, `emulator child: ${request.type}`) as Promise<
      Extract<Answer, { type: T }>
    >;
  }

  /** ID tokens of the dev issuer for these subs, valid `ttlSeconds`. */
  async mint(subs: string[], ttlSeconds: number): Promise<string[]> {
    return (await this.#call<'mint'>({ type: 'mint', subs, ttlSeconds })).tokens;
  }

  /** Reads memory, handles, CPU and open connections; `gc` runs a full collection first. */
  async sample(options: { gc: boolean }): Promise<EmulatorSample> {
    return (await this.#call<'sample'>({ type: 'sample', gc: options.gc })).sample;
  }

  /** Writes a V8 heap snapshot of the child (after a full GC) to `file`; resolves with its path. */
  async heapSnapshot(file: string): Promise<string> {
    return (await this.#call<'snapshot'>({ type: 'snapshot', file })).file;
  }

  /** Closes every open connection from the server side at once; resolves with how many it closed. */
  async drop(): Promise<{ websocket: number; mqtt: number }> {
    const { websocket, mqtt } = await this.#call<'drop'>({ type: 'drop' });
    return { websocket, mqtt };
  }

  /** The open WebSocket connections (API Gateway connection id, user). */
  async websocketConnections(): Promise<[connectionId: string, user: string][]> {
    return (await this.#call<'connections'>({ type: 'connections' })).websocket;
  }

  /** Resolves once no Lambda invocation, lifecycle hook, half-closed connection or queued batch is left. */
  async settle(): Promise<void> {
    await this.#call<'settle'>({ type: 'settle' });
  }

  /** Closes the emulator and waits for the child to exit (killing it after 30 s); removes its data. */
  async close(): Promise<void> {
    try {
      if (this.#child.exitCode === null && this.#child.connected) {
        await this.#call<'close'>({ type: 'close' }).catch(() => undefined);
        await withDeadline(this.exited, 30_000, 'emulator child exit').catch(() => this.#child.kill('SIGKILL'));
      }
    } finally {
      if (this.#dataDir) rmSync(this.#dataDir, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The child.

function countByType(types: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of types) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

async function runChild(): Promise<void> {
  const { startEmulator } = await import('@viba-realtime/local');
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the soak emulator child needs --expose-gc');
  const dataDir = process.env[`${ROLE}_DATA_DIR`];
  const emulator = await startEmulator({
    host: '127.0.0.1',
    port: 0,
    // Warnings and errors only: every line the soak sees is one to explain. A diagnostic run may ask for more
    // (`VIBA_SOAK_EMULATOR_LOG_LEVEL=debug`; its lines are then counted as unexpected).
    logLevel: (process.env.VIBA_SOAK_EMULATOR_LOG_LEVEL as 'debug' | 'info' | 'warn' | undefined) ?? 'warn',
    ...(dataDir ? { dataDir } : {}),
  });
  const { mqttUrl, mqttWsUrl, iotDataEndpoint } = emulator;
  if (!mqttUrl || !mqttWsUrl || !iotDataEndpoint) throw new Error('the soak needs the IoT Core emulation');
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const send = (message: FromChild) => process.send?.(message);

  const sample = (withGc: boolean): EmulatorSample => {
    if (withGc) {
      // Twice: the first pass can leave objects that only a second one finds unreachable (weak refs, finalizers).
      gc();
      gc();
    }
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    const loopDelayMs = {
      p50: loop.percentile(50) / 1e6,
      p99: loop.percentile(99) / 1e6,
      max: loop.max / 1e6,
    };
    // A GC pause is not the load's; only the periodic samples start a new delay window.
    if (!withGc) loop.reset();
    return {
      at: performance.timeOrigin + performance.now(),
      gc: withGc,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      rss: memory.rss,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      resources: countByType(process.getActiveResourcesInfo()),
      cpuMs: (cpu.user + cpu.system) / 1000,
      loopDelayMs,
      connections: {
        websocket: emulator.gateway.connectionIds().length,
        mqtt: emulator.broker?.clients().length ?? 0,
      },
    };
  };

  const handle = async (request: Request & { id: number }): Promise<Answer> => {
    const { id } = request;
    switch (request.type) {
      case 'mint':
        return {
          id,
          type: 'mint',
          tokens: request.subs.map((sub) =>
            emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: request.ttlSeconds }),
          ),
        };
      case 'sample':
        return { id, type: 'sample', sample: sample(request.gc) };
      case 'snapshot':
        gc();
        return { id, type: 'snapshot', file: writeHeapSnapshot(request.file) };
      case 'drop': {
        // What `DELETE @connections/{id}` and IoT's `DeleteConnection` do, for everyone in the same tick.
        const websocket = emulator.gateway.connectionIds();
        for (const connectionId of websocket) emulator.gateway.disconnect(connectionId);
        const mqtt = emulator.broker?.clients() ?? [];
        for (const client of mqtt) void client.disconnect(undefined, 'API_INITIATED_DISCONNECT');
        return { id, type: 'drop', websocket: websocket.length, mqtt: mqtt.length };
      }
      case 'connections':
        return {
          id,
          type: 'connections',
          websocket: emulator.gateway.connectionIds().map((c) => [c, emulator.gateway.userOf(c)]),
        };
      case 'settle':
        // The broker's hooks include the lifecycle events' rule invocations only once published, so both
        // are awaited until neither has anything in flight.
        for (let round = 0; round < 3; round++) {
          await emulator.gateway.settled();
          await emulator.broker?.settled();
          await emulator.fanoutQueue?.idle();
        }
        return { id, type: 'settle' };
      case 'close':
        loop.disable();
        await emulator.close();
        return { id, type: 'close' };
    }
  };

  process.on('message', (raw) => {
    const request = raw as Request & { id: number };
    handle(request).then(
      (answer) => {
        send(answer);
        if (request.type === 'close') process.disconnect();
      },
      (error: unknown) => send({ id: request.id, type: 'failed', message: String(error) }),
    );
  });
  // The parent went away (killed, crashed): do not outlive it.
  process.on('disconnect', () => {
    void emulator.close().finally(() => process.exit(0));
  });
  send({
    type: 'ready',
    url: emulator.url,
    mqttUrl,
    mqttWsUrl,
    dynamodbEndpoint: emulator.dynamodbEndpoint,
    tableName: emulator.tableName,
    connectionsEndpoint: emulator.connectionsEndpoint,
    iotDataEndpoint,
    fanoutQueueUrl: emulator.fanoutQueueUrl,
    sqsEndpoint: emulator.sqsEndpoint,
  });
}

const entry = process.argv[1];
if (process.env[ROLE] === '1' && entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  await runChild();
}
